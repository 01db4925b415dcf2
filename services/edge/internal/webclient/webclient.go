// Package webclient serves the browser client of protocol v1: client.js, a
// dependency-free ES module (no build step) that connects to an edge node,
// reconnects with backoff, resumes every room from the last delivered seq
// and acknowledges positions. Edge nodes serve it at GET /v1/client.js;
// docs/client.md is its guide.
package webclient

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed client.js
var source []byte

// etag is a strong validator of source: its SHA-256, computed once.
var etag = func() string {
	sum := sha256.Sum256(source)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}()

// Handler serves client.js. The URL is not versioned, so caches keep it an
// hour and then revalidate with If-None-Match (304 when unchanged). Any
// origin may load it: it is public code, fetched without credentials, and a
// page on another origin needs CORS to import a module. Safe for concurrent
// use.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=3600, must-revalidate")
		h.Set("ETag", etag)
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers If-None-Match (304), HEAD and Range from the
		// ETag set above; a zero modtime sends no Last-Modified.
		http.ServeContent(w, r, "client.js", time.Time{}, bytes.NewReader(source))
	})
}
