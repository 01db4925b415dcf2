module github.com/eventedge/eventedge/scripts/devrun

go 1.26.8
