// Package server is the edge node's public HTTP surface: the WebSocket
// endpoint /v1/ws. It protects the node at the handshake (connection limits
// per node, client IP and user, answered with 503 or 429 and a computed
// Retry-After), checks the origin, takes a bearer token from the upgrade
// request, accepts the connection and runs a session for it. Drain closes
// every session with 1012 in batches spread over a duration and waits for
// them.
package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	stdlog "log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
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
	// MaxConns bounds the node's connections, counted from the accepted
	// upgrade (so before authentication) until the session ends. A
	// handshake beyond it gets 503 with a Retry-After. Default 10,000:
	// sized for a 2-core node, to be revisited from benchmarks.
	MaxConns int
	// MaxConnsPerUser bounds one user's connections (counted from their
	// authentication). Beyond it a handshake with a header token gets 429
	// with a Retry-After; a connection authenticating with an auth message
	// is closed with 4029. Default 100.
	MaxConnsPerUser int
	// MaxConnsPerIP bounds the connections from one client address, counted
	// like MaxConns; beyond it the handshake gets 429 with a Retry-After.
	// Default 1,000, so an office behind one NAT still fits.
	MaxConnsPerIP int
	// ReadyFill is the fraction of MaxConns at and above which Ready reports
	// the server not ready (so a load balancer sends new clients elsewhere
	// before the node refuses them). Default 0.9; 1 turns not ready only
	// when full.
	ReadyFill float64
	// TrustForwardedFor takes the client address from the first entry of
	// X-Forwarded-For instead of the connection's peer. Set it only behind
	// a proxy that overwrites the header, or clients choose their own
	// address. Default false.
	TrustForwardedFor bool
	// Compression negotiates permessage-deflate with clients that offer it
	// (RFC 7692), without context takeover: each compressed frame stands
	// alone, so a connection keeps no compression window between frames.
	// Default false: frames are sent uncompressed even when offered.
	Compression bool
	// CompressionThreshold is the smallest frame compressed when
	// Compression is on; smaller ones go uncompressed. Default 512 bytes.
	CompressionThreshold int
	// ReadHeaderTimeout bounds the time from a new TCP connection to the
	// end of its request headers (the WebSocket handshake): a client that
	// sends its headers slowly, or part of them and stalls, is disconnected
	// when it passes. It is the http.Server's (HTTPServer), so it applies
	// before any limit of this package counts the connection. Default 10s.
	ReadHeaderTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultReadLimit       = 64 << 10
	DefaultMaxConns        = 10000
	DefaultMaxConnsPerUser = 100
	DefaultMaxConnsPerIP   = 1000
	DefaultReadyFill       = 0.9
	// DefaultCompressionThreshold: frames below it are not worth
	// compressing (a single small event gains little and costs a deflate
	// run of its own).
	DefaultCompressionThreshold = 512
	DefaultReadHeaderTimeout    = 10 * time.Second
)

// Server serves /v1/ws. Safe for concurrent use.
type Server struct {
	// static after construction
	env    *session.Env // a copy of New's env, with Users set to lim
	opts   Options
	accept websocket.AcceptOptions // for a client that offers no subprotocol
	// acceptMode is accept with the subprotocol of each mode to answer
	// with, for a client that asked for it by name.
	acceptMode [2]websocket.AcceptOptions
	// byProtocol is eventedge_connections_by_protocol's gauge of each mode.
	byProtocol [2]prometheus.Gauge
	lim        *limiter
	log        zerolog.Logger
	base       context.Context // parent of every session; never cancelled by a request
	mux        *http.ServeMux

	mu sync.Mutex
	// sessions maps each running session to whether a drain has told it to
	// close.
	sessions map[*session.Session]bool // guarded by mu
	closing  bool                      // guarded by mu
	wg       sync.WaitGroup            // running handshakes and sessions
}

// New returns a Server running sessions with a copy of env whose Users is
// the server's connection limiter (env itself is not modified).
func New(env *session.Env, opts Options) *Server {
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = DefaultReadLimit
	}
	if opts.CompressionThreshold <= 0 {
		opts.CompressionThreshold = DefaultCompressionThreshold
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxConnsPerUser <= 0 {
		opts.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if opts.MaxConnsPerIP <= 0 {
		opts.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if opts.ReadyFill <= 0 {
		opts.ReadyFill = DefaultReadyFill
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	lim := newLimiter(opts, env.Metrics, time.Now, mrand.Float64)
	e := *env
	e.Users = lim
	s := &Server{
		env:      &e,
		opts:     opts,
		lim:      lim,
		log:      env.Log,
		base:     context.Background(),
		sessions: make(map[*session.Session]bool),
	}
	if opts.Compression {
		s.accept.CompressionMode = websocket.CompressionNoContextTakeover
		s.accept.CompressionThreshold = opts.CompressionThreshold
	}
	if len(opts.AllowedOrigins) == 1 && opts.AllowedOrigins[0] == "*" {
		s.accept.InsecureSkipVerify = true
	} else {
		s.accept.OriginPatterns = opts.AllowedOrigins
	}
	for _, m := range []protocol.Mode{protocol.JSON, protocol.Protobuf} {
		s.acceptMode[m] = s.accept
		s.acceptMode[m].Subprotocols = []string{m.Subprotocol()}
		s.byProtocol[m] = env.Metrics.ConnectionsByProtocol.WithLabelValues(m.String())
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /v1/ws", s.serveWS)
	return s
}

// ServeHTTP implements http.Handler. Every response but a successful
// upgrade closes its connection ("Connection: close"): the public listener
// serves WebSockets, and a kept-alive idle HTTP connection would be held
// without a deadline (net/http applies none between requests unless
// IdleTimeout or ReadTimeout is set) and without counting toward MaxConns.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	s.mux.ServeHTTP(w, r)
}

// HTTPServer returns an http.Server for s on the public listener: its
// header read timeout is ReadHeaderTimeout, and what net/http logs itself
// (a panic, an accept error) goes to the node's logger as one JSON line
// instead of to the standard library's logger.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ErrorLog:          stdlog.New(httpErrorLog{s.log}, "", 0),
	}
}

// httpErrorLog writes each line net/http logs as a warning of log.
type httpErrorLog struct{ log zerolog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	l.log.Warn().Str("component", "net/http").Msg(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Handle registers an extra handler on the public listener (for example the
// browser client).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// serveWS checks, in order: draining (503), the stored revocations read
// (503 starting), the subprotocol (400), node full (503), client IP at its
// limit (429), user at its limit when the token came in the header (429),
// origin (403, by Accept); then runs the session.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closing := s.closing
	if !closing {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closing {
		s.refuse(w, r, &refusal{http.StatusServiceUnavailable, rejectDraining,
			"edge node is shutting down; reconnect to another node", 1})
		return
	}
	handedOff := false // the session's goroutine took over the cleanup below
	defer func() {
		if !handedOff {
			s.wg.Done()
		}
	}()
	if rv := s.env.Revocations; rv != nil && !rv.Loaded() {
		s.refuse(w, r, &refusal{http.StatusServiceUnavailable, rejectStarting,
			"edge node is starting (stored revocations not read yet); retry", 1})
		return
	}

	// The wire format, by subprotocol: refused before anything is counted
	// against a limit when the client asks only for ones the node lacks.
	mode, answer, err := protocol.Negotiate(r.Header)
	if err != nil {
		s.env.Metrics.HandshakesRejected.WithLabelValues(rejectSubprotocol).Inc()
		http.Error(w, err.Error(), http.StatusBadRequest)
		s.log.Debug().Str("remote", r.RemoteAddr).Err(err).Msg("handshake refused")
		return
	}
	accept := &s.accept
	if answer != "" {
		accept = &s.acceptMode[mode]
	}

	ip := s.clientIP(r)
	if rf := s.lim.acquireConn(ip); rf != nil {
		s.refuse(w, r, rf)
		return
	}
	accepted := false
	defer func() {
		if !handedOff {
			s.lim.releaseConn(ip, accepted)
		}
	}()

	token := bearerToken(r)
	if token != "" {
		// Verified here only to learn the user. An invalid token goes on to
		// the session, which closes with 4001 as it always has; a valid one
		// takes its user slot in the session, once authenticated.
		if claims, err := s.env.Verifier.Verify(token); err == nil {
			if rf := s.lim.userRefusal(claims.Subject); rf != nil {
				s.refuse(w, r, rf)
				return
			}
		}
	}

	sw := &statusWriter{ResponseWriter: w}
	conn, err := websocket.Accept(sw, r, accept)
	if err != nil {
		// Accept has written the HTTP error: 403 for a foreign origin, 4xx
		// for a request that is not a WebSocket handshake.
		s.env.Metrics.AuthFailures.WithLabelValues("handshake").Inc()
		if sw.status == http.StatusForbidden {
			s.env.Metrics.HandshakesRejected.WithLabelValues(rejectOrigin).Inc()
		}
		s.log.Info().Err(err).Str("remote", r.RemoteAddr).Str("origin", r.Header.Get("Origin")).Msg("handshake refused")
		return
	}
	accepted = true
	conn.SetReadLimit(s.opts.ReadLimit)
	sess := session.New(s.env, conn, session.Info{
		ID:          newID(),
		RemoteAddr:  r.RemoteAddr,
		UserAgent:   r.UserAgent(),
		HeaderToken: token,
		Cork:        sw.cork,
		Mode:        mode,
	})

	s.mu.Lock()
	if s.closing { // Shutdown began during the handshake
		s.mu.Unlock()
		_ = conn.Close(protocol.ReasonServiceRestart.Code, protocol.ReasonServiceRestart.Text)
		return
	}
	s.sessions[sess] = false
	s.mu.Unlock()

	s.env.Metrics.Connections.Inc()
	s.env.Metrics.ConnectionsOpen.Inc()
	byProtocol := s.byProtocol[mode]
	byProtocol.Inc()
	// The session runs on a goroutine of its own and this handler returns:
	// a hijacked connection is no longer net/http's, and its goroutine for
	// the request — a stack grown by the handshake, the request, the
	// response and their buffers — is released instead of being held for
	// the life of the connection.
	handedOff = true
	go func() {
		defer s.wg.Done()
		defer s.lim.releaseConn(ip, true)
		reason := sess.Run(s.base)
		s.env.Metrics.Connections.Dec()
		byProtocol.Dec()
		s.env.Metrics.Closes.WithLabelValues(reason.Label).Inc()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
}

// refuse answers a handshake refused for capacity or a drain, and counts
// it. It is not logged (a flood would flood the log): the metric says it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, rf *refusal) {
	s.env.Metrics.HandshakesRejected.WithLabelValues(rf.reason).Inc()
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(rf.retryAfter))
	h.Set("Connection", "close") // a refused client does not keep a connection open
	http.Error(w, rf.text, rf.status)
	s.log.Debug().Str("remote", r.RemoteAddr).Str("reason", rf.reason).Int("retry_after", rf.retryAfter).Msg("handshake refused")
}

// clientIP is the address connection limits are counted by: the peer's,
// or with TrustForwardedFor the first of X-Forwarded-For when it is an IP.
// IPv4-mapped IPv6 addresses count as their IPv4 address.
func (s *Server) clientIP(r *http.Request) string {
	if s.opts.TrustForwardedFor {
		first, _, _ := strings.Cut(r.Header.Get("X-Forwarded-For"), ",")
		if a, err := netip.ParseAddr(strings.TrimSpace(first)); err == nil {
			return a.Unmap().String()
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// statusWriter records the status Accept answers a refused handshake with.
// Accept reaches the connection to hijack through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
	cork   *session.Cork // set by Hijack
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	if code != http.StatusSwitchingProtocols {
		// A refused handshake closes its connection like every other
		// response (ServeHTTP); Accept may have replaced that header.
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Buffer sizes of an accepted connection. net/http hands a hijacked
// connection over with 4 KiB read and write buffers, which the WebSocket
// library keeps for the life of the connection. Client messages are small
// (an auth message with its token is the largest; a larger read bypasses
// the buffer). Writes go through a session.Cork, which gathers each data
// frame in a pooled buffer while it is written: the library's write buffer
// in front of it only needs room for a frame header.
const (
	connReadBuffer  = 128
	connWriteBuffer = 32
)

// Hijack takes the connection over with smaller buffers (connReadBuffer,
// connWriteBuffer) than net/http's, and hands the WebSocket library a
// session.Cork around it (kept in w.cork for the session): writes gather
// through it, and its Close sends what is corked first. When net/http has already read bytes the
// client sent after its handshake, its reader (with them) is kept instead.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Writer.Buffered() > 0 { // net/http flushes the response before handing over; be sure
		if err := brw.Writer.Flush(); err != nil {
			_ = conn.Close()
			return nil, nil, err
		}
	}
	br := brw.Reader // bytes the client sent early are buffered in it: keep it (rare)
	if br.Buffered() == 0 {
		br = bufio.NewReaderSize(conn, connReadBuffer)
	}
	w.cork = session.NewCork(conn)
	return w.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
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

// Ready returns nil while the server takes new connections and holds
// fewer than ReadyFill of MaxConns.
func (s *Server) Ready() error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return errors.New("draining")
	}
	n, limit := s.lim.load()
	if fill := float64(n) / float64(limit); fill >= s.opts.ReadyFill {
		return fmt.Errorf("%d of %d connections in use (ready below %g%%)", n, limit, s.opts.ReadyFill*100)
	}
	return nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}
