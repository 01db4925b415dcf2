package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// Options configures an API. Store, NC and Verifier are required; every
// other zero field selects its default.
type Options struct {
	// Store keeps the tasks and publishes their events.
	Store *taskstore.Store
	// NC publishes job.cancel.<executionId> (core NATS) and revocations
	// (ctl.revoke, to the REVOCATIONS stream, which must exist: the
	// service ensures it at start).
	NC *nats.Conn
	// Verifier checks bearer tokens.
	Verifier *auth.Verifier
	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed
	// to call the API (CORS); "*" allows any. Default:
	// DefaultAllowedOrigins.
	AllowedOrigins []string
	// ExecCommands are the allow-list names an exec run may name; a run
	// naming another is refused with 400. They must match the workers'
	// --exec-allow names. Default: DefaultExecCommands; empty slice (not
	// nil): no exec runs.
	ExecCommands []string
	// MaxBodyBytes bounds request bodies. Default 64 KiB.
	MaxBodyBytes int64
	// RequestTimeout bounds the NATS work of one request. Default 10s.
	RequestTimeout time.Duration
	// OpenAPI is the document served at /openapi.json. Default: none (404).
	OpenAPI []byte
	// Log receives request failures. Default: none.
	Log zerolog.Logger
	// Registerer receives the HTTP metrics. Default: none.
	Registerer prometheus.Registerer
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
var (
	DefaultAllowedOrigins = []string{"http://localhost:8082"}
	// DefaultExecCommands matches the worker's default allow-list.
	DefaultExecCommands = []string{"echo-ok", "fail", "sleep"}
)

// Default limits of Options.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultRequestTimeout = 10 * time.Second
)

// API serves the task API. Immutable after New; safe for concurrent use.
type API struct {
	store    *taskstore.Store
	nc       *nats.Conn
	js       jetstream.JetStream // revocations
	verifier *auth.Verifier
	origins  []string
	anyOrig  bool
	execCmds []string
	maxBody  int64
	timeout  time.Duration
	openapi  []byte
	log      zerolog.Logger
	now      func() time.Time
	m        *metrics
	mux      *http.ServeMux
}

// route is one endpoint; the table is also what the OpenAPI test compares
// the document with.
type route struct {
	method, pattern string
	handler         func(http.ResponseWriter, *http.Request)
}

func (a *API) routes() []route {
	const tasks = "/v1/projects/{projectId}/tasks"
	const task = tasks + "/{taskId}"
	return []route{
		{http.MethodPost, tasks, a.createTask},
		{http.MethodGet, tasks, a.listTasks},
		{http.MethodGet, task, a.getTask},
		{http.MethodPatch, task, a.patchTask},
		{http.MethodDelete, task, a.deleteTask},
		{http.MethodPost, task + "/run", a.runTask},
		{http.MethodPost, task + "/cancel", a.cancelTask},
		{http.MethodDelete, "/v1/projects/{projectId}/members/{userId}", a.removeMember},
		{http.MethodGet, "/openapi.json", a.serveOpenAPI},
	}
}

// New returns the API for o.
func New(o Options) (*API, error) {
	if o.Store == nil || o.NC == nil || o.Verifier == nil {
		return nil, errors.New("api: Store, NC and Verifier are required")
	}
	if o.AllowedOrigins == nil {
		o.AllowedOrigins = DefaultAllowedOrigins
	}
	if o.ExecCommands == nil {
		o.ExecCommands = DefaultExecCommands
	}
	for _, c := range o.ExecCommands {
		if !taskstore.ValidID(c) {
			return nil, errors.New("api: exec command name " + strconv.Quote(c) + ": want 1-64 characters of A-Z a-z 0-9 _ -")
		}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	js, err := jetstream.New(o.NC)
	if err != nil {
		return nil, fmt.Errorf("api: jetstream: %w", err)
	}
	a := &API{
		store:    o.Store,
		nc:       o.NC,
		js:       js,
		verifier: o.Verifier,
		anyOrig:  slices.Contains(o.AllowedOrigins, "*"),
		execCmds: slices.Clone(o.ExecCommands),
		maxBody:  o.MaxBodyBytes,
		timeout:  o.RequestTimeout,
		openapi:  o.OpenAPI,
		log:      o.Log,
		now:      o.Now,
		m:        newMetrics(o.Registerer),
		mux:      http.NewServeMux(),
	}
	for _, orig := range o.AllowedOrigins {
		a.origins = append(a.origins, strings.TrimRight(strings.ToLower(orig), "/"))
	}
	for _, rt := range a.routes() {
		a.mux.Handle(rt.method+" "+rt.pattern, a.instrument(rt.method+" "+rt.pattern, rt.handler))
	}
	return a, nil
}

// ServeHTTP serves one request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.cors(w, r) {
		return
	}
	if h, pattern := a.mux.Handler(r); pattern == "" {
		// The mux's own 404 or 405 (with Allow), answered in JSON.
		c := &capture{header: http.Header{}}
		h.ServeHTTP(c, r)
		if allow := c.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if c.status == http.StatusMethodNotAllowed {
			writeError(w, &Error{Status: c.status, Code: CodeMethodNotAllowed, Message: "method not allowed; see Allow"})
			return
		}
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint"})
		return
	}
	a.mux.ServeHTTP(w, r)
}

// capture records what the mux's fallback handlers write.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(code int)        { c.status = code }

// instrument counts and times a route's requests, and bounds its context.
func (a *API) instrument(name string, h func(http.ResponseWriter, *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
		defer cancel()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r.WithContext(ctx))
		a.m.requests.WithLabelValues(name, strconv.Itoa(sw.status)).Inc()
		a.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// cors sets the CORS headers of an allowed origin and answers preflight
// requests; it reports whether the request was answered.
func (a *API) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	w.Header().Add("Vary", "Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if !a.originAllowed(origin) {
		if preflight {
			writeError(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "origin not allowed"})
			return true
		}
		return false // no CORS headers: the browser withholds the answer
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "ETag, Location, Retry-After")
	if preflight {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Match")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

func (a *API) originAllowed(origin string) bool {
	return a.anyOrig || slices.Contains(a.origins, strings.ToLower(origin))
}

// authorize verifies the bearer token and checks perm and membership of
// project ("" for none). On failure it answers and returns nil.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, project, perm string) *auth.Claims {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventedge"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "a bearer token is required"})
		return nil
	}
	c, err := a.verifier.Verify(strings.TrimSpace(token))
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventedge", error="invalid_token"`)
		writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error()})
		return nil
	}
	if !c.Has(perm) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "permission " + perm + " is required"})
		return nil
	}
	if project != "" && !c.MemberOf(project) {
		writeError(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: "not a member of project " + project})
		return nil
	}
	return c
}

func (a *API) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	if a.openapi == nil {
		writeError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no OpenAPI document"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(a.openapi)
}
