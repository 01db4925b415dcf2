// Package service assembles sysmon from its parts — the NATS connection,
// the stats subscriptions, the prober, the monitor and the admin listener —
// and runs its lifecycle. Two goroutines do the work: the prober asks NATS,
// JetStream and the host how they are every ProbeInterval, and the reporter
// decides the status (every CheckInterval, and at once on new input) and
// publishes system_status to the global room when the status or its alerts
// change, and every Interval regardless.
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/sysmon/internal/host"
	"github.com/eventedge/eventedge/services/sysmon/internal/metrics"
	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
	"github.com/eventedge/eventedge/services/sysmon/internal/probe"
	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// drainTimeout bounds the wait for the NATS connection to drain at
// shutdown, adminShutdownTimeout the admin listener's, maxProbeTimeout one
// probe.
const (
	drainTimeout         = 5 * time.Second
	adminShutdownTimeout = 5 * time.Second
	maxProbeTimeout      = 5 * time.Second
)

// Service is one sysmon. Start it once, Shutdown it once (more calls are
// harmless).
type Service struct {
	// static after New
	opts       Options
	log        zerolog.Logger
	invalidLog zerolog.Logger // sampled: a broken publisher must not flood the log
	registry   *prometheus.Registry
	m          *metrics.Metrics
	mon        *monitor.Monitor
	sampler    *host.Sampler // used by the prober goroutine only

	// set by Start
	nc       *nats.Conn
	js       jetstream.JetStream
	prober   *probe.Prober
	subs     []*nats.Subscription
	admin    *http.Server
	adminLn  net.Listener
	closed   chan struct{} // closed by nats.go when the connection is closed
	ctx      context.Context
	cancel   context.CancelFunc // ends in-flight probes and publishes at shutdown
	quit     chan struct{}
	loops    sync.WaitGroup // the prober and the reporter
	serveWG  sync.WaitGroup // the admin Serve goroutine
	serveErr chan error

	kick     chan struct{} // cap 1: decide now
	probed   atomic.Bool   // the first probe is done
	stopping atomic.Bool

	// owned by the reporter goroutine
	decided       monitor.Report // the last decision, for logging changes
	last          monitor.Report // the last decision published
	published     bool           // last is set
	lastPublished time.Time
	failing       bool // the last publish failed

	// owned by the prober goroutine
	probeFailing map[string]bool // target → the last probe of it failed
	serverSeen   bool            // the monitoring endpoint was read once (logged)

	readyMu sync.Mutex
	// guarded by readyMu
	publishErr error // of the last publish attempt; errStarting before the first

	shutdown  sync.Once
	shutdownE error
}

// New validates opts and returns a Service ready to Start.
func New(opts Options, log zerolog.Logger) (*Service, error) {
	opts = opts.WithDefaults()
	if opts.Interval < opts.CheckInterval {
		return nil, fmt.Errorf("interval %s: must not be shorter than the check interval %s", opts.Interval, opts.CheckInterval)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log = log.With().Str("service", "sysmon").Logger()
	return &Service{
		opts:         opts,
		log:          log,
		invalidLog:   log.Sample(&zerolog.BurstSampler{Burst: 10, Period: 10 * time.Second}),
		registry:     reg,
		m:            metrics.New(reg),
		mon:          monitor.New(opts.Monitor),
		sampler:      host.NewSampler(opts.ProcDir),
		closed:       make(chan struct{}),
		quit:         make(chan struct{}),
		serveErr:     make(chan error, 1),
		kick:         make(chan struct{}, 1),
		probeFailing: map[string]bool{},
		publishErr:   errStarting,
	}, nil
}

// Start connects to NATS, subscribes to the stats subjects, binds the admin
// listener and starts the prober and the reporter. When NATS is not
// reachable yet the connection keeps trying in the background (and the
// status is error until it succeeds). On error, whatever was started is
// stopped.
func (s *Service) Start() (err error) {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.cancel()
			if s.nc != nil {
				s.nc.Close()
			}
		}
	}()
	s.nc, err = nats.Connect(s.opts.NATSURL,
		nats.Name("sysmon"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) {
			s.m.NATSConnected.Set(1)
			s.log.Info().Msg("connected to NATS")
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			s.m.NATSConnected.Set(0)
			if !nc.IsClosed() && !nc.IsDraining() {
				s.log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.m.NATSConnected.Set(1)
			s.log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := s.log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS async error")
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(s.closed) }),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", s.opts.NATSURL, err)
	}
	if s.nc.IsConnected() {
		s.m.NATSConnected.Set(1)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for _, sub := range []struct {
		subject string
		handler nats.MsgHandler
	}{{stats.EdgeSubject, s.onEdgeStats}, {stats.WorkerSubject, s.onWorkerStats}} {
		ns, err := s.nc.Subscribe(sub.subject, sub.handler)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", sub.subject, err)
		}
		s.subs = append(s.subs, ns)
	}
	// A probe may take up to its interval, but not so long that a hung
	// NATS hides a change of the host or the monitoring endpoint.
	s.prober = probe.New(s.nc, s.js, probe.Options{MonitorURL: s.opts.NATSMonitorURL, Timeout: min(s.opts.ProbeInterval, maxProbeTimeout)})
	if s.adminLn, err = net.Listen("tcp", s.opts.AdminAddr); err != nil {
		return fmt.Errorf("listen admin %s: %w", s.opts.AdminAddr, err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("admin listener: %w", err)
		}
	}()
	s.loops.Add(2)
	go s.probeLoop()
	go s.reportLoop()
	mo := s.opts.Monitor
	s.log.Info().Str("nats", s.opts.NATSURL).Str("admin", s.adminLn.Addr().String()).
		Dur("interval", s.opts.Interval).Dur("node_silence", mo.NodeSilence).Dur("max_p99", mo.MaxP99).
		Float64("max_drops", mo.MaxDrops).Float64("max_stream_fill", mo.MaxStreamFill).
		Str("nats_monitor", s.opts.NATSMonitorURL).Msg("sysmon running")
	return nil
}

// AdminAddr returns the admin listener's address (after Start).
func (s *Service) AdminAddr() net.Addr { return s.adminLn.Addr() }

// Registry returns the service's metrics registry.
func (s *Service) Registry() *prometheus.Registry { return s.registry }

// Errors reports an admin listener that failed while serving.
func (s *Service) Errors() <-chan error { return s.serveErr }

// Ready returns nil while sysmon does its job: connected to NATS, and the
// last system_status publish succeeded.
func (s *Service) Ready() error {
	if s.stopping.Load() {
		return errStopping
	}
	if s.nc == nil || !s.nc.IsConnected() {
		return errDisconnected
	}
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	return s.publishErr
}

func (s *Service) setPublishErr(err error) {
	s.readyMu.Lock()
	s.publishErr = err
	s.readyMu.Unlock()
}

// kickReporter asks the reporter to decide now; kicks coalesce.
func (s *Service) kickReporter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Shutdown stops sysmon: readiness off, the prober and reporter stopped (an
// in-flight publish is abandoned), the subscriptions drained and the NATS
// connection closed, the admin listener closed last. Safe to call more than
// once.
func (s *Service) Shutdown() error {
	s.shutdown.Do(func() { s.shutdownE = s.doShutdown() })
	return s.shutdownE
}

func (s *Service) doShutdown() error {
	s.stopping.Store(true)
	if s.admin == nil {
		return nil // never started, or Start failed and cleaned up
	}
	s.log.Info().Msg("shutting down")
	close(s.quit)
	s.cancel()
	s.loops.Wait()
	// Drain lets the stats handlers that are running finish; it fails at
	// once when the connection is not up, and Close is enough then.
	if err := s.nc.Drain(); err != nil {
		s.nc.Close()
	}
	select {
	case <-s.closed:
	case <-time.After(drainTimeout):
		s.log.Warn().Dur("timeout", drainTimeout).Msg("NATS drain timed out; closing")
		s.nc.Close()
		<-s.closed
	}
	s.m.NATSConnected.Set(0)
	s.prober.Close()
	// A fresh context: the admin listener gets its own time to finish the
	// requests in flight.
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
	defer cancel()
	var errs []error
	if err := s.admin.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("admin listener: %w", err))
	}
	s.serveWG.Wait()
	s.log.Info().Msg("stopped")
	return errors.Join(errs...)
}
