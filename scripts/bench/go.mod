module github.com/eventedge/eventedge/scripts/bench

go 1.26.8
