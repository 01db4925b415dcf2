package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
)

// Options configures the NATS connection. Zero fields take defaults.
type Options struct {
	// URL is the NATS server URL(s), comma separated. Required.
	URL string
	// Name is the connection name shown by the NATS server (the node name).
	Name string
	// ReconnectWait is the pause between reconnect attempts. Default 500ms
	// (nats.go adds jitter).
	ReconnectWait time.Duration
	// Stream configures the EVENTS stream, which the node ensures at start.
	Stream events.StreamConfig
	// CheckInterval is how often the stream's presence is re-checked for
	// readiness. Default 5s.
	CheckInterval time.Duration
	// OnReconnect, when set, runs (on its own goroutine) after every
	// reconnection to NATS: the hub re-checks its rooms there.
	OnReconnect func()
	// OnSlowConsumer, when set, runs when NATS dropped messages for the
	// subscription on subject: the hub re-checks that room.
	OnSlowConsumer func(subject string)
	// OnStreamRecreated, when set, runs when the EVENTS stream is found
	// to have been deleted and created again: every sequence from before
	// is meaningless, and the hub resets its rooms.
	OnStreamRecreated func()
}

// Broker is a node's NATS connection. Safe for concurrent use.
type Broker struct {
	// static after construction
	NC   *nats.Conn
	JS   jetstream.JetStream
	opts Options
	log  zerolog.Logger
	m    *metrics.Metrics

	streamOK atomic.Bool
	created  time.Time     // owned by watchStream: the stream's creation time last seen
	recheck  chan struct{} // cap 1: check the stream now
	quit     chan struct{}
	wg       sync.WaitGroup // the stream watcher, owned by Connect/Close
	once     sync.Once
}

// Connect connects to NATS. It returns as soon as the connection object
// exists: when NATS is not reachable yet, the connection keeps trying in the
// background and Ready reports why the node is not ready.
func Connect(opts Options, log zerolog.Logger, m *metrics.Metrics) (*Broker, error) {
	if opts.URL == "" {
		return nil, errors.New("nats url: empty")
	}
	if opts.ReconnectWait <= 0 {
		opts.ReconnectWait = 500 * time.Millisecond
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 5 * time.Second
	}
	if err := opts.Stream.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{opts: opts, log: log.With().Str("component", "nats").Logger(), m: m, quit: make(chan struct{}), recheck: make(chan struct{}, 1)}
	nc, err := nats.Connect(opts.URL,
		nats.Name(opts.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(10*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(*nats.Conn) {
			m.NATSConnected.Set(1)
			b.log.Info().Msg("connected to NATS")
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			m.NATSConnected.Set(0)
			if nc.IsClosed() || nc.IsDraining() {
				return // our own shutdown
			}
			b.log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			m.NATSConnected.Set(1)
			m.NATSReconnects.Inc()
			b.log.Info().Str("server", nc.ConnectedUrlRedacted()).Msg("reconnected to NATS; subscriptions restored")
			b.kick()
			if b.opts.OnReconnect != nil {
				b.opts.OnReconnect()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := b.log.Warn().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
				if errors.Is(err, nats.ErrSlowConsumer) && b.opts.OnSlowConsumer != nil {
					b.opts.OnSlowConsumer(sub.Subject)
				}
			}
			ev.Msg("NATS async error")
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", opts.URL, err)
	}
	if nc.IsConnected() {
		m.NATSConnected.Set(1)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.NC, b.JS = nc, js
	b.wg.Add(1)
	go b.watchStream()
	return b, nil
}

// kick makes the stream watcher check at once.
func (b *Broker) kick() {
	select {
	case b.recheck <- struct{}{}:
	default:
	}
}

// watchStream ensures the EVENTS stream exists and keeps the readiness flag
// current. Owned by Connect/Close.
func (b *Broker) watchStream() {
	defer b.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
		case <-b.recheck:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		next := b.opts.CheckInterval
		if !b.checkStream() {
			next = b.opts.ReconnectWait
		}
		t.Reset(next)
	}
}

func (b *Broker) checkStream() bool {
	if !b.NC.IsConnected() {
		b.streamOK.Store(false)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var st jetstream.Stream
	if b.streamOK.Load() {
		st, _ = b.JS.Stream(ctx, events.StreamName)
	}
	if st == nil {
		var err error
		if st, err = events.EnsureStreams(ctx, b.JS, b.opts.Stream); err != nil {
			if b.streamOK.Swap(false) {
				b.log.Warn().Err(err).Msg("stream check failed")
			}
			return false
		}
	}
	created := st.CachedInfo().Created
	if !b.created.IsZero() && !created.Equal(b.created) {
		b.log.Warn().Time("was", b.created).Time("now", created).Msg("stream was recreated; resetting rooms")
		if b.opts.OnStreamRecreated != nil {
			b.opts.OnStreamRecreated()
		}
	}
	b.created = created
	if !b.streamOK.Swap(true) {
		b.log.Info().Str("stream", events.StreamName).Msg("stream ready")
	}
	return true
}

// Ready returns nil when the node is connected to NATS and the EVENTS
// stream exists, else an error saying which is missing.
func (b *Broker) Ready() error {
	if !b.NC.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if !b.streamOK.Load() {
		return fmt.Errorf("stream %s not available", events.StreamName)
	}
	return nil
}

// Close drains the connection (pending messages are processed, then the
// connection closes) and stops the stream watcher.
func (b *Broker) Close() {
	b.once.Do(func() {
		close(b.quit)
		b.wg.Wait()
		if b.NC.IsConnected() {
			closed := make(chan struct{})
			b.NC.SetClosedHandler(func(*nats.Conn) { close(closed) })
			if err := b.NC.Drain(); err == nil {
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
				}
			}
		}
		b.NC.Close()
		b.m.NATSConnected.Set(0)
	})
}
