// Package server is the edge node's public HTTP surface: the WebSocket
// endpoint /v1/ws. It checks the origin, takes a bearer token from the
// upgrade request, accepts the connection and runs a session for it, and on
// Shutdown closes every session with 1012 and waits for them.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Options configures the WebSocket endpoint. Zero fields take defaults.
type Options struct {
	// AllowedOrigins are host patterns (path.Match syntax, e.g.
	// "dash.example.com" or "*.example.com", or with a scheme,
	// "https://dash.example.com") whose pages may open connections. The
	// request's own host is always allowed; requests without an Origin
	// header (non-browser clients) are allowed. Default: same host only.
	// A single "*" allows every origin (development only).
	AllowedOrigins []string
	// ReadLimit is the largest client frame in bytes; a larger one closes
	// the connection with 1009. Default 64 KiB.
	ReadLimit int64
}

// DefaultReadLimit is Options.ReadLimit's default.
const DefaultReadLimit = 64 << 10

// Server serves /v1/ws. Safe for concurrent use.
type Server struct {
	// static after construction
	env    *session.Env
	opts   Options
	accept websocket.AcceptOptions
	log    zerolog.Logger
	base   context.Context // parent of every session; never cancelled by a request
	mux    *http.ServeMux

	mu       sync.Mutex
	sessions map[*session.Session]struct{} // guarded by mu
	closing  bool                          // guarded by mu
	wg       sync.WaitGroup                // running sessions
}

// New returns a Server running sessions with env.
func New(env *session.Env, opts Options) *Server {
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	s := &Server{
		env:      env,
		opts:     opts,
		log:      env.Log,
		base:     context.Background(),
		sessions: make(map[*session.Session]struct{}),
	}
	if len(opts.AllowedOrigins) == 1 && opts.AllowedOrigins[0] == "*" {
		s.accept.InsecureSkipVerify = true
	} else {
		s.accept.OriginPatterns = opts.AllowedOrigins
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/ws", s.serveWS)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Handle registers an extra handler on the public listener (for example the
// browser client).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closing {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "edge node is shutting down; reconnect to another node", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()

	token := bearerToken(r)
	conn, err := websocket.Accept(w, r, &s.accept)
	if err != nil {
		// Accept has written the HTTP error (e.g. 403 for a foreign origin).
		s.env.Metrics.AuthFailures.WithLabelValues("handshake").Inc()
		s.log.Info().Err(err).Str("remote", r.RemoteAddr).Str("origin", r.Header.Get("Origin")).Msg("handshake refused")
		return
	}
	conn.SetReadLimit(s.opts.ReadLimit)
	sess := session.New(s.env, conn, session.Info{
		ID:          newID(),
		RemoteAddr:  r.RemoteAddr,
		UserAgent:   r.UserAgent(),
		HeaderToken: token,
	})

	s.mu.Lock()
	if s.closing { // Shutdown began during the handshake
		s.mu.Unlock()
		_ = conn.Close(protocol.ReasonServiceRestart.Code, protocol.ReasonServiceRestart.Text)
		return
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()

	s.env.Metrics.Connections.Inc()
	s.env.Metrics.ConnectionsOpen.Inc()
	reason := sess.Run(s.base)
	s.env.Metrics.Connections.Dec()
	s.env.Metrics.Closes.WithLabelValues(reason.Label).Inc()

	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Sessions returns the number of open sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Shutdown refuses new connections, closes every session with 1012
// (service restart) and waits for them to end or ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	open := make([]*session.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		open = append(open, sess)
	}
	s.mu.Unlock()
	for _, sess := range open {
		sess.Close(protocol.ReasonServiceRestart)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
