// Package natstest runs a real NATS server with JetStream inside a test:
// it listens on a random loopback port, keeps its files in the test's temp
// dir, and can be stopped and started again on the same port and store to
// test what happens while NATS is away. Nothing is mocked.
//
// It lives in services/internal so that every service module (and only
// those) can import it: Go's internal rule is by import path.
package natstest

import (
	"context"
	"net"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Server is an embedded NATS server with JetStream.
type Server struct {
	t        testing.TB
	NS       *natsserver.Server
	storeDir string
	port     int
}

// Start starts a server on 127.0.0.1 and a random port; it is shut down
// when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir(), port: -1}
	s.Restart()
	s.port = s.NS.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server (again) on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName:             "natstest",
		Host:                   "127.0.0.1",
		Port:                   s.port,
		JetStream:              true,
		StoreDir:               s.storeDir,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
	})
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.t.Fatalf("nats server not ready on port %d", s.port)
	}
	s.NS = ns
}

// Stop shuts the server down and waits for it. It may be called again.
func (s *Server) Stop() {
	if s.NS != nil {
		s.NS.Shutdown()
		s.NS.WaitForShutdown()
	}
}

// URL is the client URL.
func (s *Server) URL() string { return s.NS.ClientURL() }

// Connect returns a connection (closed when the test ends) and its
// JetStream context, after ensuring the EVENTS stream (in memory).
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := events.EnsureStreams(ctx, js, events.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatalf("ensure EVENTS: %v", err)
	}
	return nc, js
}

// Events subscribes to the live (RePublished) subject of every event of
// project and returns a channel of the decoded events. The subscription
// ends with the test.
func Events(t testing.TB, nc *nats.Conn, subject string) <-chan *Received {
	t.Helper()
	ch := make(chan *Received, 4096)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		ev, err := events.Decode(m.Data, m.Header.Get(events.HeaderContentType))
		select {
		case ch <- &Received{Subject: m.Subject, Event: ev, Err: err, Seq: m.Header.Get(events.HeaderSequence)}:
		default:
			t.Errorf("event channel of %s full", subject)
		}
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

// Received is one event read from a live subject.
type Received struct {
	Subject string
	Event   *pb.Event
	// Err is the decoding error: a test expects none.
	Err error
	// Seq is the Nats-Sequence header the stream's RePublish added.
	Seq string
}

// Next returns the next event from ch, failing the test after timeout.
func Next(t testing.TB, ch <-chan *Received, timeout time.Duration) *pb.Event {
	t.Helper()
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Fatalf("event on %s: %v", r.Subject, r.Err)
		}
		return r.Event
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return nil
}

// Quiet fails the test if ch delivers anything within d.
func Quiet(t testing.TB, ch <-chan *Received, d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected event on %s: %v (err %v)", r.Subject, r.Event, r.Err)
	case <-time.After(d):
	}
}

// CheckFor calls f until it returns nil or timeout passes, then fails the
// test with f's last error. It polls every 10ms instead of sleeping a guess.
func CheckFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
