// Package admin is the edge node's operator API, served on the admin
// listener only (never on the public one, which serves clients):
//
//	GET  /v1/admin/connections                 the sessions, paginated, filtered by user or room
//	GET  /v1/admin/rooms                       the rooms, with subscribers and NATS state
//	POST /v1/admin/connections/{session}/close close one session with 4003 or 1012
//	POST /v1/admin/drain                       drain the node, as SIGTERM does
//
// Every request needs "Authorization: Bearer <jwt>", verified with the
// node's own verifier (the keys clients' tokens are checked with), whose
// permissions list "admin" itself: auth.Claims.Has treats admin as every
// permission, but the reverse must not hold, so the check is explicit. A
// missing, invalid or revoked token gets 401 with WWW-Authenticate:
// Bearer; a valid one without admin gets 403. Authentication comes before
// routing, so nothing, not even which paths exist, is answered to a caller
// without an admin token.
//
// Every response, errors included, is JSON with lowerCamelCase field names
// that are part of the API: fields may be added, never renamed. Errors are
// {"error":{"code":"…","message":"…"}}, the code one of those of Error.
//
// Pagination of connections: sessions are listed in the order of their
// ids (random, so a stable order unrelated to age). The cursor "next" is
// the last id of a page; the following page starts after it, so a walk
// never shows a session twice, even when sessions come and go meanwhile
// (those may or may not be shown). A cursor stays valid when its session
// closes. total is the number of sessions matching the filters now.
//
// Concurrency: the handler is safe for concurrent use and keeps no state
// of its own; it reads the sessions and rooms through their Snapshot
// methods, which take their locks briefly and never from the fan-out's
// side. Drain only asks: the node's owner shuts it down (it cannot be done
// inside a request, since shutting the admin listener down waits for its
// requests to finish).
package admin

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/revocation"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Sessions is the node's set of open sessions (a *server.Server).
type Sessions interface {
	// List returns the open sessions sorted by id.
	List() []*session.Session
	// Find returns the open session with id, nil when there is none.
	Find(id string) *session.Session
}

// Rooms is the node's room registry (a *hub.Hub).
type Rooms interface {
	// RoomSnapshots returns the rooms sorted by name, or only the one
	// named when name is not empty.
	RoomSnapshots(name string) []hub.RoomSnapshot
}

// Options configures the admin API. Every field without a stated default
// is required.
type Options struct {
	// Verifier checks the bearer tokens.
	Verifier *auth.Verifier
	// Revocations, when set, refuses admin tokens of a revoked user (401),
	// and every request with a valid token (503) until it is loaded.
	// Default nil: not checked.
	Revocations *revocation.List
	Sessions    Sessions
	Rooms       Rooms
	// Drain asks the node to drain and returns at once; it reports
	// whether this was the first request. by is the admin's subject.
	Drain func(by string) (first bool)
	// Log receives one line per action (close, drain) with the admin's
	// subject, and refused requests (403 at info, 401 at debug). Default:
	// the zero logger (nothing).
	Log zerolog.Logger
}

// Handler serves the admin API. Create it with New.
type Handler struct {
	// static after New
	opts Options
	mux  *http.ServeMux
}

// Path prefix of every route.
const prefix = "/v1/admin/"

// New returns the handler; mount it at /v1/admin/ of the admin listener.
func New(opts Options) *Handler {
	h := &Handler{opts: opts, mux: http.NewServeMux()}
	// Patterns without a method: a wrong method is answered in JSON (405)
	// by route, where ServeMux would answer in text.
	h.mux.HandleFunc(prefix+"connections", h.route(http.MethodGet, h.listConnections))
	h.mux.HandleFunc(prefix+"connections/{session}/close", h.route(http.MethodPost, h.closeConnection))
	h.mux.HandleFunc(prefix+"rooms", h.route(http.MethodGet, h.listRooms))
	h.mux.HandleFunc(prefix+"drain", h.route(http.MethodPost, h.drain))
	h.mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNotFound("no admin endpoint "+clip(r.URL.Path)))
	})
	return h
}

// ServeHTTP authenticates the request, then routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	claims, err := h.authenticate(r)
	if err != nil {
		// A valid token without admin is someone of ours trying: logged at
		// info. Anonymous failures at debug, so a scan does not flood the log.
		ev := h.opts.Log.Debug()
		if err.Status == http.StatusForbidden {
			ev = h.opts.Log.Info()
		}
		ev.Str("remote", r.RemoteAddr).Str("method", r.Method).Str("path", clip(r.URL.Path)).Str("error", err.Message).Msg("admin request refused")
		if err.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, err)
		return
	}
	h.mux.ServeHTTP(w, r.WithContext(withAdmin(r.Context(), claims.Subject)))
}

// authenticate returns the claims of an admin token, or the error to
// answer with.
func (h *Handler) authenticate(r *http.Request) (*auth.Claims, *Error) {
	token := bearerToken(r)
	if token == "" {
		return nil, errUnauthorized("missing bearer token: send Authorization: Bearer <jwt> with the admin permission")
	}
	claims, err := h.opts.Verifier.Verify(token)
	if err != nil {
		return nil, errUnauthorized("invalid token: " + err.Error())
	}
	if h.opts.Revocations != nil && !h.opts.Revocations.Loaded() {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the node has not read the stored revocations yet (see /readyz); retry"}
	}
	if h.opts.Revocations != nil && h.opts.Revocations.User(claims.Subject, claims.IssuedAt) {
		return nil, errUnauthorized("token revoked: get a new one")
	}
	if !slices.Contains(claims.Permissions, auth.PermAdmin) {
		return nil, errForbidden("the token of " + clip(claims.Subject) + " lacks the " + auth.PermAdmin + " permission")
	}
	return claims, nil
}

// route runs f for requests with method, and answers 405 otherwise.
func (h *Handler) route(method string, f func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			writeError(w, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: r.Method + " " + r.URL.Path + ": use " + method})
			return
		}
		f(w, r)
	}
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// writeJSON answers status with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")  // read by people with curl
	enc.SetEscapeHTML(false) // not HTML: keep <jwt> legible
	_ = enc.Encode(v)        // the client went away: nothing to do
}

// writeError answers with err.
func writeError(w http.ResponseWriter, err *Error) {
	if err.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventedge-admin"`)
	}
	writeJSON(w, err.Status, errorBody{Error: err})
}

// clip shortens what a caller sent before it is echoed in a message or a
// log line.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
