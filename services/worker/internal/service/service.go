// Package service assembles the worker process: the NATS connection, the
// streams and the task store it needs, the job worker and the admin
// listener.
//
// Start binds the admin listener and serves it at once (/healthz,
// /readyz, /metrics), connects to NATS and prepares JetStream (retrying
// until Options.StartTimeout), then runs the worker. Shutdown stops the
// worker (no more fetches; running jobs finish within the worker's
// ShutdownGrace, or are requeued), then the admin listener, then drains
// NATS.
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

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/worker/internal/worker"
)

// Options configures the service. Every zero field selects its default.
type Options struct {
	// AdminAddr is the admin listener. Default ":9092".
	AdminAddr string
	// NATSURL is the NATS server URL(s). Default "nats://127.0.0.1:4222".
	NATSURL string
	// Worker configures the job worker; its Store, JS, NC, Log and
	// Registerer are the service's.
	Worker worker.Options
	// Store configures the task store (the bucket is created if missing).
	Store taskstore.Options
	// Events configures the EVENTS stream when the service has to create
	// it; an existing one is left as it is.
	Events events.StreamConfig
	// Jobs configures the JOBS stream, which the service ensures.
	Jobs jobs.StreamConfig
	// StartTimeout bounds how long Start waits for NATS and JetStream.
	// Default 30s.
	StartTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultAdminAddr    = ":9092"
	DefaultNATSURL      = "nats://127.0.0.1:4222"
	DefaultStartTimeout = 30 * time.Second
)

// Service is one worker process.
type Service struct {
	// static after New
	opts     Options
	log      zerolog.Logger
	registry *prometheus.Registry
	natsUp   prometheus.Gauge

	// set by Start, read-only afterwards
	nc      *nats.Conn
	js      jetstream.JetStream
	store   *taskstore.Store
	worker  *worker.Worker
	admin   *http.Server
	adminLn net.Listener
	ready   chan struct{} // closed once the worker runs

	// stop ends the worker's Run; wg waits for it and the admin server.
	ctx      context.Context
	stop     context.CancelFunc
	wg       sync.WaitGroup
	errc     chan error
	shutOnce sync.Once
	shutErr  error
}

// New validates opts and returns a service ready to Start.
func New(opts Options, log zerolog.Logger) (*Service, error) {
	if opts.AdminAddr == "" {
		opts.AdminAddr = DefaultAdminAddr
	}
	if opts.NATSURL == "" {
		opts.NATSURL = DefaultNATSURL
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if err := opts.Events.Validate(); err != nil {
		return nil, err
	}
	if err := opts.Jobs.Validate(); err != nil {
		return nil, err
	}
	if !worker.ValidName(opts.Worker.Name) {
		return nil, fmt.Errorf("worker name %q: want 1-64 printable ASCII characters without spaces", opts.Worker.Name)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "eventedge_worker_nats_connected", Help: "1 while connected to NATS."})
	reg.MustRegister(up)
	opts.Store.Log = log.With().Str("component", "taskstore").Logger()
	opts.Store.Registerer = reg
	opts.Worker.Log = log
	opts.Worker.Registerer = reg
	ctx, stop := context.WithCancel(context.Background())
	return &Service{opts: opts, log: log, registry: reg, natsUp: up, ready: make(chan struct{}), ctx: ctx, stop: stop, errc: make(chan error, 2)}, nil
}

// Start binds the admin listener, connects to NATS, prepares JetStream and
// runs the worker in the background. On error, whatever was started is
// stopped.
func (s *Service) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.Background())
		}
	}()
	if s.adminLn, err = net.Listen("tcp", s.opts.AdminAddr); err != nil {
		return fmt.Errorf("admin listener %s: %w", s.opts.AdminAddr, err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	s.wg.Go(func() {
		if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("admin server: %w", err)
		}
	})
	if err := s.connect(ctx); err != nil {
		return err
	}
	wo := s.opts.Worker
	wo.Store, wo.JS, wo.NC = s.store, s.js, s.nc
	if s.worker, err = worker.New(wo); err != nil {
		return err
	}
	s.wg.Go(func() {
		if err := s.worker.Run(s.ctx); err != nil {
			s.errc <- err
		}
	})
	close(s.ready)
	s.log.Info().Str("admin", s.adminLn.Addr().String()).Str("nats", s.nc.ConnectedUrlRedacted()).Msg("worker serving")
	return nil
}

func (s *Service) connect(ctx context.Context) error {
	nc, err := nats.Connect(s.opts.NATSURL,
		nats.Name("worker "+s.opts.Worker.Name),
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

func (s *Service) prepare(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := events.EnsureStreamExists(ctx, js, s.opts.Events); err != nil {
		return err
	}
	if _, err := jobs.EnsureStream(ctx, js, s.opts.Jobs); err != nil {
		return err
	}
	st, err := taskstore.Open(ctx, js, s.opts.Store)
	if err != nil {
		return err
	}
	s.js, s.store = js, st
	return nil
}

func (s *Service) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// Ready reports why the worker cannot take jobs: not started, NATS
// disconnected, the JOBS consumer or the task bucket missing.
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
	if _, err := s.js.Consumer(ctx, jobs.StreamName, jobs.ConsumerName); err != nil {
		return fmt.Errorf("consumer %s: %w", jobs.ConsumerName, err)
	}
	return s.store.Check(ctx)
}

// AdminAddr is the admin listener's address (after Start).
func (s *Service) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Errors reports a component that failed while running.
func (s *Service) Errors() <-chan error { return s.errc }

// Shutdown stops the worker (running jobs get its ShutdownGrace), the
// admin listener, and drains NATS. Idempotent.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.stop() // the worker stops fetching and winds its jobs down
		var errs []error
		if s.admin != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.admin.Shutdown(sctx); err != nil {
				errs = append(errs, err)
			}
			cancel()
		} else if s.adminLn != nil {
			_ = s.adminLn.Close()
		}
		s.wg.Wait()
		if s.nc != nil {
			s.drain(ctx)
		}
		s.shutErr = errors.Join(errs...)
		s.log.Info().Msg("worker process stopped")
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
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case <-closed:
	case <-ctx.Done():
		s.nc.Close()
	}
}
