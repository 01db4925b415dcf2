module github.com/eventedge/eventedge/scripts/configdocs

go 1.26.8
