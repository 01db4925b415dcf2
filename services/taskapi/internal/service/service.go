// Package service assembles the task API process: the NATS connection, the
// streams and bucket it needs, the HTTP API, the outbox sweeper and the
// admin listener, and runs their lifecycle.
//
// Start binds both listeners, serves the admin one at once (/healthz,
// /readyz, /metrics), connects to NATS and prepares JetStream (retrying
// until Options.StartTimeout), then serves the API and starts the sweeper.
// Shutdown stops in order: the sweeper, the API listener (in-flight
// requests finish), the admin listener, then NATS is drained.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/revoke"

	"github.com/eventedge/eventedge/services/taskapi/docs"
	"github.com/eventedge/eventedge/services/taskapi/internal/api"
	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// Options configures the service. Auth needs a key; every other zero field
// selects its default.
type Options struct {
	// Addr is the API listener. Default ":8081".
	Addr string
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz).
	// Default ":9091".
	AdminAddr string
	// NATSURL is the NATS server URL(s), comma separated. Default
	// "nats://127.0.0.1:4222".
	NATSURL string
	// Name is the NATS connection name. Default "taskapi".
	Name string
	// Auth configures token verification.
	Auth auth.Options
	// AllowedOrigins, ExecCommands and MaxBodyBytes: see api.Options.
	AllowedOrigins []string
	ExecCommands   []string
	MaxBodyBytes   int64
	// SweepInterval is the pause between outbox sweeps (one also runs at
	// start). Default 5s.
	SweepInterval time.Duration
	// StartTimeout bounds how long Start waits for NATS and JetStream.
	// Default 30s.
	StartTimeout time.Duration
	// ShutdownTimeout bounds Shutdown's wait for in-flight requests.
	// Default 10s.
	ShutdownTimeout time.Duration
	// Store configures the task store (Log and Registerer are the
	// service's).
	Store taskstore.Options
	// Events configures the EVENTS stream when the service has to create
	// it. An existing stream is left as it is: the edge owns its settings.
	Events events.StreamConfig
	// Jobs configures the JOBS stream, which the service ensures.
	Jobs jobs.StreamConfig
}

// Defaults of Options.
const (
	DefaultAddr            = ":8081"
	DefaultAdminAddr       = ":9091"
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultSweepInterval   = 5 * time.Second
	DefaultStartTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
)

// Service is one task API process.
type Service struct {
	// static after New
	opts     Options
	log      zerolog.Logger
	registry *prometheus.Registry
	verifier *auth.Verifier
	natsUp   prometheus.Gauge

	// set by Start, read-only afterwards
	nc       *nats.Conn
	store    *taskstore.Store
	public   *http.Server
	admin    *http.Server
	publicLn net.Listener
	adminLn  net.Listener

	// ready is set once the store is open: /readyz reads it.
	ready chan struct{}
	// stop cancels ctx, which stops the sweeper (and a sweep in progress);
	// wg waits for the serve goroutines and the sweeper, all started by
	// Start and waited for by Shutdown.
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
	shutOnce sync.Once
	shutErr  error
}

// New validates opts and returns a service ready to Start.
func New(opts Options, log zerolog.Logger) (*Service, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = DefaultAdminAddr
	}
	if opts.NATSURL == "" {
		opts.NATSURL = DefaultNATSURL
	}
	if opts.Name == "" {
		opts.Name = "taskapi"
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if err := opts.Events.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Jobs.Validate(); err != nil {
		return nil, err
	}
	v, err := auth.NewVerifier(opts.Auth)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventedge_taskapi_nats_connected", Help: "1 while connected to NATS."})
	reg.MustRegister(up)
	opts.Store.Log = log.With().Str("component", "taskstore").Logger()
	opts.Store.Registerer = reg
	ctx, stop := context.WithCancel(context.Background())
	return &Service{
		ctx:      ctx,
		stop:     stop,
		opts:     opts,
		log:      log,
		registry: reg,
		verifier: v,
		natsUp:   up,
		ready:    make(chan struct{}),
		errc:     make(chan error, 2),
	}, nil
}

// Start binds the listeners, connects to NATS, prepares JetStream and
// serves in the background. On error, whatever was started is stopped.
func (s *Service) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.Background())
		}
	}()
	if s.adminLn, err = net.Listen("tcp", s.opts.AdminAddr); err != nil {
		return fmt.Errorf("admin listener %s: %w", s.opts.AdminAddr, err)
	}
	if s.publicLn, err = net.Listen("tcp", s.opts.Addr); err != nil {
		return fmt.Errorf("api listener %s: %w", s.opts.Addr, err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	s.serve(s.admin, s.adminLn, "admin")

	if err := s.connect(ctx); err != nil {
		return err
	}
	a, err := api.New(api.Options{
		Store:          s.store,
		NC:             s.nc,
		Verifier:       s.verifier,
		AllowedOrigins: s.opts.AllowedOrigins,
		ExecCommands:   s.opts.ExecCommands,
		MaxBodyBytes:   s.opts.MaxBodyBytes,
		OpenAPI:        docs.OpenAPI,
		Log:            s.log.With().Str("component", "api").Logger(),
		Registerer:     s.registry,
	})
	if err != nil {
		return err
	}
	s.public = &http.Server{
		Handler:           a,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.serve(s.public, s.publicLn, "api")
	s.wg.Go(s.sweepLoop)
	close(s.ready)
	s.log.Info().Str("addr", s.publicLn.Addr().String()).Str("admin", s.adminLn.Addr().String()).
		Str("nats", s.nc.ConnectedUrlRedacted()).Msg("task API serving")
	return nil
}

// connect connects to NATS and prepares the streams and the bucket,
// retrying every second until StartTimeout.
func (s *Service) connect(ctx context.Context) error {
	nc, err := nats.Connect(s.opts.NATSURL,
		nats.Name(s.opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { s.natsUp.Set(1); s.log.Info().Msg("connected to NATS") }),
		nats.ReconnectHandler(func(*nats.Conn) { s.natsUp.Set(1); s.log.Info().Msg("reconnected to NATS") }),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			s.natsUp.Set(0)
			if !c.IsClosed() && !c.IsDraining() {
				s.log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", s.opts.NATSURL, err)
	}
	s.nc = nc
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	for {
		err := s.prepare(ctx)
		if err == nil {
			return nil
		}
		s.log.Warn().Err(err).Msg("NATS/JetStream not ready; retrying")
		select {
		case <-ctx.Done():
			return fmt.Errorf("prepare JetStream: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

// prepare ensures the JOBS stream, creates EVENTS and REVOCATIONS when
// missing (with their defaults: edge nodes own their settings) and opens
// the store.
func (s *Service) prepare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	created, err := events.EnsureStreamExists(ctx, js, s.opts.Events)
	if err != nil {
		return err
	}
	if created {
		s.log.Info().Msg("created the EVENTS stream (no edge had yet)")
	}
	created, err = revoke.EnsureStreamExists(ctx, js, revoke.StreamConfig{Replicas: s.opts.Events.Replicas, MemoryStorage: s.opts.Events.MemoryStorage})
	if err != nil {
		return err
	}
	if created {
		s.log.Info().Msg("created the REVOCATIONS stream (no edge had yet)")
	}
	if _, err := jobs.EnsureStream(ctx, js, s.opts.Jobs); err != nil {
		return err
	}
	st, err := taskstore.Open(ctx, js, s.opts.Store)
	if err != nil {
		return err
	}
	s.store = st
	return nil
}

// serve runs srv on ln in a goroutine owned by the service.
func (s *Service) serve(srv *http.Server, ln net.Listener, name string) {
	s.wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s server: %w", name, err)
		}
	})
}

// sweepLoop runs the outbox sweep at start and every SweepInterval until
// Shutdown, which also cancels a sweep in progress.
func (s *Service) sweepLoop() {
	ctx := s.ctx
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		res, err := s.store.Sweep(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Warn().Err(err).Int("pending", res.Pending).Int("repaired", res.Repaired).Msg("outbox sweep incomplete; retrying")
		case res.Repaired > 0:
			s.log.Info().Int("repaired", res.Repaired).Msg("outbox sweep published pending events")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Ready reports why the service cannot serve: not started, NATS
// disconnected, or the bucket missing.
func (s *Service) Ready(ctx context.Context) error {
	select {
	case <-s.ready:
	default:
		return errors.New("starting")
	}
	if !s.nc.IsConnected() {
		return errors.New("NATS disconnected")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.store.Check(ctx)
}

// Addr is the API listener's address (after Start).
func (s *Service) Addr() net.Addr { return s.publicLn.Addr() }

// AdminAddr is the admin listener's address (after Start).
func (s *Service) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Errors reports a listener that failed while serving.
func (s *Service) Errors() <-chan error { return s.errc }

// Shutdown stops the service: the sweeper, the API listener (waiting up to
// ctx or ShutdownTimeout for in-flight requests), the admin listener, then
// drains NATS. It is idempotent.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.stop()
		ctx, cancel := context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
		var errs []error
		for _, srv := range []*http.Server{s.public, s.admin} {
			if srv != nil {
				if err := srv.Shutdown(ctx); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, ln := range []net.Listener{s.publicLn, s.adminLn} {
			if ln != nil {
				_ = ln.Close() // a listener never served
			}
		}
		s.wg.Wait()
		if s.nc != nil {
			s.drain(ctx)
		}
		s.shutErr = errors.Join(errs...)
		s.log.Info().Msg("task API stopped")
	})
	return s.shutErr
}

// drain drains the NATS connection and waits until it is closed.
func (s *Service) drain(ctx context.Context) {
	closed := make(chan struct{})
	s.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := s.nc.Drain(); err != nil {
		s.nc.Close()
		return
	}
	select {
	case <-closed:
	case <-ctx.Done():
		s.nc.Close()
	}
}
