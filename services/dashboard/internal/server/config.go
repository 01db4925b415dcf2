package server

import (
	"encoding/json"
	"net/http"
)

// configDoc is /config.json: what the app needs to know before it can do
// anything. It holds no secret: the page is public.
type configDoc struct {
	// EdgeURL is the edge WebSocket URL, absolute or a path the app
	// resolves against its location.
	EdgeURL string `json:"edgeUrl"`
	// ClientURL is where the app imports client.js from.
	ClientURL string `json:"clientUrl"`
	// APIURL is the task API's base URL, without a trailing slash.
	APIURL string `json:"apiUrl"`
	// Dev says the login page and /dev/token are available.
	Dev bool `json:"dev"`
	// LoginURL is where "log in again" goes in production; empty: none.
	LoginURL string `json:"loginUrl"`
	// Version is the dashboard's version.
	Version string `json:"version"`
}

func (d configDoc) encode() []byte {
	b, _ := json.Marshal(d) // strings and a bool always encode
	return append(b, '\n')
}

// serveConfig answers /config.json. no-store: a browser must not keep a
// configuration that a redeployment has changed.
func (s *Server) serveConfig(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(s.config)
}
