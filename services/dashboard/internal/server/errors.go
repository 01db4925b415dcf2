package server

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Errors of New.
var (
	errNoIndex       = errors.New("app files: index.html missing")
	errNoLogin       = errors.New("app files: login.html missing (needed in development mode)")
	errDevSecret     = errors.New("development mode needs a secret of at least 32 bytes")
	errSecretNotDev  = errors.New("a development secret is set but development mode is off")
	errDevTokenTTL   = errors.New("development token lifetime out of range 1m-24h")
	errEmptyURL      = errors.New("empty")
	errRootAPIPath   = errors.New(`"/" is the root path; for a task API on the dashboard's own origin give its absolute URL`)
	errEdgeURLSuffix = errors.New("path must end in " + edgePath)
)

// errorDoc is the body of every error of the JSON endpoints.
type errorDoc struct {
	Error string `json:"error"`
}

// writeJSONError answers {"error": msg} with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	body, _ := json.Marshal(errorDoc{Error: msg}) // a struct of one string always encodes
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeTextError answers a plain-text error with status, for the pages and
// files.
func writeTextError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(http.StatusText(status) + "\n"))
}
