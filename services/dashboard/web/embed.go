// Package web holds the dashboard's browser app: plain HTML, CSS and ES
// modules in static/, served as they are (there is no build step). The
// files are embedded in the binary at build time; internal/server serves
// them.
package web

import (
	"embed"
	"io/fs"
)

// Static is the app as embedded: every file under static/ (names starting
// with "." or "_" are left out by go:embed). Files uses static/ as the root.
//
//go:embed static
var Static embed.FS

// Files returns the app's files with static/ as the root, so index.html is
// "index.html" and the app's modules are "js/…". Safe for concurrent use.
func Files() fs.FS {
	sub, err := fs.Sub(Static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, and "static"
		// is a constant.
		panic("web: " + err.Error())
	}
	return sub
}
