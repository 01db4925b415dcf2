// Package node assembles an edge node from its parts — the NATS broker (or
// an embedded NATS server), the room hub, the WebSocket server and the admin
// listener — and runs its lifecycle: Start binds and serves, Shutdown stops
// in order (readiness off, public listener closed, clients closed with
// 1012 in batches spread over the drain duration, hub closed, NATS drained,
// embedded server stopped, admin listener closed). The admin listener
// serves /metrics, /healthz, /readyz and the admin API (package admin),
// whose drain request the node's owner answers by calling Shutdown
// (DrainRequested).
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/admin"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/broker"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
	"github.com/eventedge/eventedge/services/edge/internal/revocation"
	"github.com/eventedge/eventedge/services/edge/internal/server"
	"github.com/eventedge/eventedge/services/edge/internal/session"
	"github.com/eventedge/eventedge/services/edge/internal/webclient"
)

// Options configures a node. Zero fields take the defaults of the
// component they belong to.
type Options struct {
	// Name identifies the node to clients (welcome) and in logs. Default:
	// the host name.
	Name string
	// Addr is the public listener (WebSocket). Default ":8080".
	Addr string
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz and the
	// admin API, /v1/admin/, see package admin).
	// Default ":9090".
	AdminAddr string
	// NATSURL is the NATS server to use. Empty: start an embedded server.
	NATSURL string
	// Embedded configures the embedded NATS server used when NATSURL is
	// empty.
	Embedded broker.EmbeddedOptions
	// Stream configures the EVENTS stream the node ensures.
	Stream events.StreamConfig
	// StreamCheckInterval is how often the node re-checks the stream (for
	// readiness, and to notice it was recreated). Default 5s.
	StreamCheckInterval time.Duration
	// Auth configures token verification. A key is required.
	Auth auth.Options
	// Server configures the WebSocket endpoint.
	Server server.Options
	// Session configures each connection.
	Session session.Options
	// Hub configures the fan-out.
	Hub hub.Options
	// History configures the node's reads of the EVENTS stream for
	// resumes (their checks and replays): how many requests it has in
	// flight at once. The live path's reads are not bounded by it.
	History history.Options
	// Positions configures the store of acknowledged device positions.
	Positions positions.Options
	// Policy is the room policy (from the file given by --room-policy).
	// Default: policy.None().
	Policy *policy.Policy
	// RevocationTTL is how long revocations (published on ctl.revoke,
	// stored in the REVOCATIONS stream) are kept, refusing the revoked
	// rooms to older tokens: the node's List and the stream's max age.
	// Default 24h (0); else at least 1s.
	RevocationTTL time.Duration
	// StatsInterval is how often the node publishes its stats on
	// ctl.edge.stats for the system monitor. Default 5s.
	StatsInterval time.Duration
	// SocketSendBuffer, when positive, sets SO_SNDBUF (bytes) of client
	// connections, turning off the kernel's autotuning: a smaller buffer
	// bounds the memory a stalled client holds in the kernel and makes the
	// slow-consumer limit act sooner. Default 0: the kernel decides.
	SocketSendBuffer int
	// AdminPprof serves the Go runtime's profiles (net/http/pprof) at
	// /debug/pprof/ on the admin listener. Default off.
	AdminPprof bool
	// ShutdownTimeout bounds Shutdown's wait for clients to close. Default,
	// and minimum: DrainDuration + 10s (a lower value is raised to it).
	ShutdownTimeout time.Duration
	// DrainDuration is how long Shutdown spreads the closing of clients
	// (1012) over, so they reconnect to other nodes as a steady stream
	// rather than a wave. Default 20s; negative closes them all at once.
	DrainDuration time.Duration
	// LowPriorityBudget is the node's budget for low-priority events
	// (events/s, burst the same), shared by every client: beyond it they
	// are held or dropped. Default 50,000.
	LowPriorityBudget float64
}

// Defaults of Options.
const (
	DefaultDrainDuration     = 20 * time.Second
	DefaultLowPriorityBudget = 50000
)

// Node is one edge node.
type Node struct {
	// static after New
	opts     Options
	log      zerolog.Logger
	registry *prometheus.Registry
	m        *metrics.Metrics
	verifier *auth.Verifier

	// set by Start
	embedded  *natsserver.Server
	broker    *broker.Broker
	hub       *hub.Hub
	hubReady  atomic.Pointer[hub.Hub] // for the reconnect callback, set once the hub exists
	positions *positions.Store
	revoked   *revocation.List
	stats     *nodestats.Publisher
	flushers  []*session.Flusher // one per processor
	merges    *session.Merges    // coalesced progress encodings shared by the sessions; closed by Shutdown
	follower  *revocation.Follower
	ws        *server.Server
	public    *http.Server
	admin     *http.Server
	publicLn  net.Listener
	adminLn   net.Listener
	serveWG   sync.WaitGroup // the two Serve goroutines
	serveErr  chan error
	draining  atomic.Bool
	shutdown  sync.Once

	// An admin's drain request (POST /v1/admin/drain): drainReq is closed
	// once, by the first, whose admin drainBy names.
	drainReq  chan struct{}
	drainOnce sync.Once
	drainBy   atomic.Pointer[string]
	shutdownE error
}

// New validates opts and returns a node ready to Start.
func New(opts Options, log zerolog.Logger) (*Node, error) {
	if opts.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("node name: %w", err)
		}
		opts.Name = h
	}
	if opts.Addr == "" {
		opts.Addr = ":8080"
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = ":9090"
	}
	if opts.DrainDuration == 0 {
		opts.DrainDuration = DefaultDrainDuration
	}
	// Shutdown must outlast the drain, with time for the last clients'
	// close handshakes and for NATS.
	if floor := max(opts.DrainDuration, 0) + 10*time.Second; opts.ShutdownTimeout < floor {
		opts.ShutdownTimeout = floor
	}
	if opts.LowPriorityBudget <= 0 {
		opts.LowPriorityBudget = DefaultLowPriorityBudget
	}
	if err := opts.Stream.Validate(); err != nil {
		return nil, err
	}
	if opts.History.MaxInFlight < 0 {
		return nil, fmt.Errorf("history reads in flight %d: must be positive (0: the default, %d)", opts.History.MaxInFlight, history.DefaultMaxInFlight)
	}
	if opts.RevocationTTL != 0 && opts.RevocationTTL < time.Second {
		return nil, fmt.Errorf("revocation TTL %s: must be at least 1s (0: the default, 24h)", opts.RevocationTTL)
	}
	v, err := auth.NewVerifier(opts.Auth)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Node{
		opts:     opts,
		log:      log.With().Str("node", opts.Name).Logger(),
		registry: reg,
		m:        metrics.New(reg),
		verifier: v,
		serveErr: make(chan error, 2),
		drainReq: make(chan struct{}),
	}, nil
}

// Start binds the listeners, connects to NATS (starting the embedded server
// first when configured) and serves in the background. On error, whatever
// was started is stopped.
func (n *Node) Start() (err error) {
	defer func() {
		if err != nil {
			if n.hub != nil {
				n.hub.Close()
			}
			if n.positions != nil {
				n.positions.Close()
			}
			if n.stats != nil {
				n.stats.Stop()
			}
			if n.follower != nil {
				n.follower.Close()
			}
			for _, f := range n.flushers {
				f.Close()
			}
			n.stopNATS()
		}
	}()
	url := n.opts.NATSURL
	if url == "" {
		if n.embedded, err = broker.StartEmbedded(n.opts.Embedded); err != nil {
			return err
		}
		url = n.embedded.ClientURL()
		n.log.Info().Str("url", url).Str("store", n.opts.Embedded.StoreDir).Msg("embedded NATS with JetStream started")
	}
	onReconnect := func() {
		if h := n.hubReady.Load(); h != nil {
			// On a goroutine of its own (it returns after its stream
			// lookups, or once the hub closes, which waits for it): NATS's
			// callback goroutine must not wait for them.
			go h.ResyncAll()
		}
	}
	onSlow := func(subject string) {
		if h := n.hubReady.Load(); h != nil {
			h.Resync(subject)
		}
	}
	onRecreated := func() {
		if h := n.hubReady.Load(); h != nil {
			h.ResetAll()
		}
	}
	n.broker, err = broker.Connect(broker.Options{
		URL: url, Name: "edge-" + n.opts.Name, Stream: n.opts.Stream, CheckInterval: n.opts.StreamCheckInterval,
		OnReconnect: onReconnect, OnSlowConsumer: onSlow, OnStreamRecreated: onRecreated,
	}, n.log, n.m)
	if err != nil {
		return err
	}
	if n.opts.Policy == nil {
		n.opts.Policy = policy.None()
	}
	hubOpts := n.opts.Hub
	historyOpts := n.opts.History
	historyOpts.Waiting = n.m.HistoryWaiting
	hubOpts.Policy = n.opts.Policy
	n.hub = hub.New(n.broker.NC, history.New(n.broker.JS, historyOpts), hubOpts, n.log, n.m)
	n.hubReady.Store(n.hub)
	n.positions = positions.Open(n.broker.JS, n.opts.Positions, n.log, n.m)
	n.revoked = revocation.New(n.opts.RevocationTTL)
	n.stats = nodestats.New(n.opts.Name, n.broker.NC, n.m, n.log, n.opts.StatsInterval)
	n.stats.Start()
	n.merges = &session.Merges{}
	n.flushers = make([]*session.Flusher, runtime.GOMAXPROCS(0))
	for i := range n.flushers {
		n.flushers[i] = session.NewFlusher()
		go n.flushers[i].Run()
	}
	env := &session.Env{
		Flushers:    n.flushers,
		Node:        n.opts.Name,
		Hub:         n.hub,
		Verifier:    n.verifier,
		Metrics:     n.m,
		Positions:   n.positions,
		Revocations: n.revoked,
		Policy:      n.opts.Policy,
		Merges:      n.merges,
		Log:         n.log,
		Options:     n.opts.Session.WithDefaults(),
		LowBudget:   rate.NewLimiter(rate.Limit(n.opts.LowPriorityBudget), max(int(n.opts.LowPriorityBudget), 1)),
	}
	n.ws = server.New(env, n.opts.Server)
	n.ws.Handle("GET /v1/client.js", webclient.Handler())
	n.follower = revocation.Follow(n.broker.JS, n.revoked, n.onRevoke, revocation.FollowOptions{
		Stream:        revoke.StreamConfig{MaxAge: n.opts.RevocationTTL, Replicas: n.opts.Stream.Replicas, MemoryStorage: n.opts.Stream.MemoryStorage},
		CheckInterval: n.opts.StreamCheckInterval,
		OnLoaded:      func() { n.m.RevocationsLoaded.Set(1) },
	}, n.log)

	// No TCP keepalive on client connections: the session's WebSocket
	// pings (Session.PingInterval, dropped after PingTimeout) and the
	// header and auth timeouts before them find a dead peer, and
	// keepalive would cost four setsockopt calls per accepted connection
	// (about 4 % of the node's CPU in a connect storm) and probe idle
	// connections between pings.
	lc := net.ListenConfig{KeepAlive: -1}
	if n.opts.SocketSendBuffer > 0 {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n.opts.SocketSendBuffer)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	if n.publicLn, err = lc.Listen(context.Background(), "tcp", n.opts.Addr); err != nil {
		return fmt.Errorf("listen %s: %w", n.opts.Addr, err)
	}
	if n.adminLn, err = net.Listen("tcp", n.opts.AdminAddr); err != nil {
		n.publicLn.Close()
		return fmt.Errorf("listen admin %s: %w", n.opts.AdminAddr, err)
	}
	n.public = n.ws.HTTPServer()
	n.admin = &http.Server{Handler: n.adminHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: adminIdleTimeout}
	n.serve(n.public, n.publicLn)
	n.serve(n.admin, n.adminLn)
	n.log.Info().Str("addr", n.publicLn.Addr().String()).Str("admin", n.adminLn.Addr().String()).Msg("edge node serving")
	return nil
}

// onRevoke applies a revocation read from the REVOCATIONS stream (the
// follower has already added it to n.revoked, so the rooms are refused to
// older tokens) to the user's connections on this node whose token is
// older than it. A replayed revocation (read at start, or after a
// disconnection) that hit no connection is logged at debug level only.
func (n *Node) onRevoke(m revoke.Message, rooms []room.Room, at time.Time, replay bool) {
	hit := n.ws.Revoke(m.UserID, rooms, at)
	n.m.Revocations.Inc()
	ev := n.log.Info()
	if replay && hit == 0 {
		ev = n.log.Debug()
	}
	ev.Str("user", m.UserID).Strs("rooms", m.Rooms).Time("at", at).Bool("replay", replay).Int("connections", hit).Msg("access revoked")
}

func (n *Node) serve(srv *http.Server, ln net.Listener) {
	n.serveWG.Add(1)
	go func() {
		defer n.serveWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
	}()
}

// Addr returns the public listener's address (after Start).
func (n *Node) Addr() net.Addr { return n.publicLn.Addr() }

// AdminAddr returns the admin listener's address (after Start).
func (n *Node) AdminAddr() net.Addr { return n.adminLn.Addr() }

// Embedded returns the embedded NATS server, nil when an external one is used.
func (n *Node) Embedded() *natsserver.Server { return n.embedded }

// Registry returns the node's metrics registry.
func (n *Node) Registry() *prometheus.Registry { return n.registry }

// Metrics returns the node's metrics.
func (n *Node) Metrics() *metrics.Metrics { return n.m }

// Verifier returns the node's token verifier.
func (n *Node) Verifier() *auth.Verifier { return n.verifier }

// Errors reports a listener that failed while serving.
func (n *Node) Errors() <-chan error { return n.serveErr }

// Ready returns nil when the node should receive new clients.
func (n *Node) Ready() error {
	if n.draining.Load() {
		return errors.New("draining")
	}
	if n.broker == nil || n.ws == nil || n.follower == nil {
		return errors.New("starting")
	}
	if err := n.broker.Ready(); err != nil {
		return err
	}
	if err := n.follower.Ready(); err != nil {
		return err // a revoked token must not get in before the revocation is known
	}
	return n.ws.Ready() // not ready when (nearly) full
}

func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{Registry: n.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := n.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/v1/admin/", admin.New(admin.Options{
		Verifier:    n.verifier,
		Revocations: n.revoked,
		Sessions:    n.ws,
		Rooms:       n.hub,
		Drain:       n.RequestDrain,
		Log:         n.log,
	}))
	if n.opts.AdminPprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// RequestDrain asks the node's owner to shut it down, as on SIGTERM, for
// the admin by (POST /v1/admin/drain): readiness turns off at once and
// DrainRequested fires. It reports whether this was the first request. The
// node does not shut itself down: Shutdown closes the admin listener last
// and waits for its requests, among them the one asking.
func (n *Node) RequestDrain(by string) (first bool) {
	n.drainOnce.Do(func() {
		first = true
		n.drainBy.Store(&by)
		n.draining.Store(true)
		close(n.drainReq)
	})
	return first
}

// DrainRequested is closed when an admin asked for a drain; the node's
// owner must then call Shutdown.
func (n *Node) DrainRequested() <-chan struct{} { return n.drainReq }

// DrainRequestedBy returns the admin who asked for the drain, "" when none
// did.
func (n *Node) DrainRequestedBy() string {
	if by := n.drainBy.Load(); by != nil {
		return *by
	}
	return ""
}

// Shutdown stops the node: readiness off, the public listener closed,
// clients closed with 1012 in batches spread over DrainDuration, the hub
// and NATS connection drained, the
// embedded server stopped, the admin listener closed last. It waits at most
// ShutdownTimeout for clients. Safe to call more than once.
func (n *Node) Shutdown() error {
	n.shutdown.Do(func() { n.shutdownE = n.doShutdown() })
	return n.shutdownE
}

func (n *Node) doShutdown() error {
	n.draining.Store(true)
	n.log.Info().Int("clients", n.ws.Sessions()).Dur("drain", n.opts.DrainDuration).Msg("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting; hijacked WebSocket connections are not affected.
	if err := n.public.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("public listener: %w", err))
	}
	if err := n.ws.Drain(ctx, n.opts.DrainDuration); err != nil {
		errs = append(errs, fmt.Errorf("close clients: %w", err))
	}
	for _, f := range n.flushers {
		f.Close() // sessions still open (drain timed out) start their writers directly
	}
	n.merges.Close() // its timer; sessions still open encode their own
	n.hub.Close()
	n.stats.Stop()
	n.positions.Close() // writes the last acknowledged positions
	if n.follower != nil {
		n.follower.Close()
	}
	n.stopNATS()
	if err := n.admin.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("admin listener: %w", err))
	}
	n.serveWG.Wait()
	n.log.Info().Msg("stopped")
	return errors.Join(errs...)
}

func (n *Node) stopNATS() {
	if n.broker != nil {
		n.broker.Close()
	}
	if n.embedded != nil {
		n.embedded.Shutdown()
		n.embedded.WaitForShutdown()
	}
}

// adminIdleTimeout closes an admin connection (a scraper's, a dashboard's
// keep-alive) that sent no request for this long, so idle ones do not
// pile up; Prometheus scrapes every 15–60 s and keeps its connection.
// A variable for the tests.
var adminIdleTimeout = 2 * time.Minute
