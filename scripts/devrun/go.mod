module github.com/eventedge/eventedge/scripts/devrun

go 1.26.8

require github.com/eventedge/eventedge/services/edge v0.0.0

require github.com/coder/websocket v1.8.15 // indirect

replace github.com/eventedge/eventedge/services/edge => ../../services/edge

replace github.com/eventedge/eventedge/proto => ../../proto
