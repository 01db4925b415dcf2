// Package service runs the dashboard process: the public listener, which
// serves internal/server's handler behind an access log, and the admin
// listener (/metrics, /healthz, /readyz).
//
// Goroutines: Start starts two, the Serve loops of the admin and the
// public listener; Shutdown stops both and waits for them. net/http runs
// one goroutine per connection: Shutdown waits for them to finish their
// requests, up to ShutdownTimeout, then closes what is left. Nothing else
// runs in the background: the handler computes its answers in New.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
)

// adminShutdownTimeout bounds the admin listener's shutdown, which comes
// after the public one's and has only scrapes and probes to finish.
const adminShutdownTimeout = 2 * time.Second

// Service is one dashboard process. Start it once and Shutdown it once
// (more calls of Shutdown are harmless). Once Start has returned, its
// methods are safe for concurrent use.
type Service struct {
	// static after New
	opts     Options
	log      zerolog.Logger
	registry *prometheus.Registry
	handler  http.Handler // the public handler behind the access log

	// set by Start, read-only afterwards (Start happens before any reader:
	// the caller orders Start before Addr, AdminAddr and Shutdown)
	publicLn, adminLn net.Listener
	public, admin     *http.Server

	started  atomic.Bool
	serving  atomic.Bool // the public listener is serving: /readyz is 200
	stopping atomic.Bool // Shutdown began: /readyz is 503 for good

	// serveWG counts the two Serve goroutines: started by Start, waited
	// for by Shutdown. They report a failure on errc (cap 2: never
	// blocks).
	serveWG sync.WaitGroup
	errc    chan error

	shutOnce sync.Once
	shutErr  error
}

// New checks opts and builds the public handler (which reads the app's
// files); nothing listens yet.
func New(opts Options, log zerolog.Logger) (*Service, error) {
	opts = opts.withDefaults()
	opts.Server = opts.Server.WithDefaults() // for the start log line
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Server.Logger = log.With().Str("component", "server").Logger()
	opts.Server.Registerer = reg
	h, err := server.New(opts.Server)
	if err != nil {
		return nil, err
	}
	opts.Server.DevSecret = nil // the handler has its copy; keep no other
	return &Service{
		opts:     opts,
		log:      log,
		registry: reg,
		handler:  accessLog(log.With().Str("component", "access").Logger(), h),
		errc:     make(chan error, 2),
	}, nil
}

// Start binds both listeners (ctx bounds only that) and serves them in the
// background until Shutdown. Once it returns, the service is ready. On
// error nothing is left listening.
func (s *Service) Start(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errStarted
	}
	if s.stopping.Load() {
		return errShutDown // nothing would stop what starts now
	}
	defer func() {
		if err != nil {
			_ = s.Shutdown(context.Background())
		}
	}()
	var lc net.ListenConfig
	if s.adminLn, err = lc.Listen(ctx, "tcp", s.opts.AdminAddr); err != nil {
		return fmt.Errorf("admin listener %s: %w", s.opts.AdminAddr, err)
	}
	if s.publicLn, err = lc.Listen(ctx, "tcp", s.opts.Addr); err != nil {
		return fmt.Errorf("public listener %s: %w", s.opts.Addr, err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	s.public = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	s.serve(s.admin, s.adminLn, "admin")
	s.serve(s.public, s.publicLn, "public")
	s.serving.Store(true)

	o := s.opts.Server
	s.log.Info().Str("addr", s.publicLn.Addr().String()).Str("admin", s.adminLn.Addr().String()).
		Str("edge_url", o.EdgeURL).Str("api_url", o.APIURL).Bool("dev", o.Dev).Msg("dashboard serving")
	if o.Dev {
		s.log.Warn().Dur("token_ttl", o.DevTokenTTL).
			Msg("development login enabled: anyone can mint tokens (never run --dev where others can reach it)")
	}
	return nil
}

// serve runs srv on ln in a goroutine owned by the service.
func (s *Service) serve(srv *http.Server, ln net.Listener, name string) {
	s.serveWG.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s listener: %w", name, err)
		}
	})
}

// Addr is the public listener's address (after Start).
func (s *Service) Addr() net.Addr { return s.publicLn.Addr() }

// AdminAddr is the admin listener's address (after Start).
func (s *Service) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Registry is the service's metrics registry, served at /metrics.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Errors reports a listener that failed while serving; the service should
// then be shut down.
func (s *Service) Errors() <-chan error { return s.errc }

// Ready returns nil while the public listener is serving: after Start and
// before Shutdown.
func (s *Service) Ready() error {
	switch {
	case s.stopping.Load():
		return errStopping
	case !s.serving.Load():
		return errStarting
	}
	return nil
}

// Shutdown stops the service: readiness off at once, then the public
// listener stops accepting and its requests in flight finish — within ctx
// and ShutdownTimeout, after which the connections left are closed and the
// deadline is returned as an error — then the admin listener, last so that
// /readyz answers 503 throughout. It waits for the Serve goroutines.
// Idempotent: later calls return the first one's result.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.doShutdown(ctx) })
	return s.shutErr
}

func (s *Service) doShutdown(ctx context.Context) error {
	s.stopping.Store(true)
	s.serving.Store(false)
	if s.adminLn == nil {
		return nil // never started, or Start failed before it bound anything
	}
	s.log.Info().Msg("shutting down")
	var errs []error
	if s.public != nil {
		ctx, cancel := context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
		if err := s.public.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("public listener: requests still in flight closed: %w", err))
			_ = s.public.Close()
		}
	} else if s.publicLn != nil {
		_ = s.publicLn.Close()
	}
	if s.admin != nil {
		// A context of its own: the public listener may have used up ctx,
		// and a scrape in flight still deserves its answer.
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		defer cancel()
		if err := s.admin.Shutdown(ctx); err != nil {
			_ = s.admin.Close()
		}
	} else {
		_ = s.adminLn.Close()
	}
	s.serveWG.Wait()
	s.log.Info().Msg("stopped")
	return errors.Join(errs...)
}
