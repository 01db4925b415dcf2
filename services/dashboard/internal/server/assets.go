package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// asset is one file of the app, read once at construction.
type asset struct {
	name        string // path in the app files, such as "js/main.js"
	body        []byte
	etag        string // strong: the quoted hex SHA-256 of body
	contentType string
	html        bool // gets the Content-Security-Policy
}

// loadAssets reads every file of files, keyed by its URL path ("/" + its
// name).
func loadAssets(files fs.FS) (map[string]*asset, error) {
	assets := map[string]*asset{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // a symlink or device in a directory FS: not part of the app
		}
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := contentType(name)
		assets["/"+name] = &asset{
			name:        name,
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:]) + `"`,
			contentType: ct,
			html:        strings.HasPrefix(ct, "text/html"),
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("app files: %w", err)
	}
	return assets, nil
}

// contentTypes maps file extensions to Content-Type. A fixed table rather
// than mime.TypeByExtension, which reads the host's mime.types and so
// could answer differently on another machine.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
}

// contentType is the Content-Type of the file name; an unknown extension
// is application/octet-stream (and, with nosniff, never run or rendered).
func contentType(name string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return ct
	}
	return "application/octet-stream"
}

// serveAsset answers a GET or HEAD of a. The URLs are not versioned, so a
// browser revalidates every time (no-cache) and gets 304 when its
// If-None-Match still matches: cheap, and a new deployment is seen at
// once. http.ServeContent answers If-None-Match, HEAD and Range from the
// ETag set here; a zero modtime sends no Last-Modified.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	if a.html {
		h.Set("Content-Security-Policy", s.csp)
	}
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
