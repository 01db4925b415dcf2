// Package edgetest starts real edge nodes and a real embedded NATS server
// with JetStream for tests: every server listens on a random loopback port
// and keeps its files in the test's temp dir. Nothing is mocked.
package edgetest

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/broker"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

// Secret is the HS256 secret test nodes verify tokens with.
const Secret = "edgetest-secret-0123456789abcdef-0123456789"

// NATS is an embedded NATS server with JetStream that can be stopped and
// started again on the same port and store.
type NATS struct {
	t        testing.TB
	Server   *natsserver.Server
	storeDir string
	port     int
}

// StartNATS starts an embedded NATS server with JetStream on a random
// loopback port; it is shut down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, storeDir: t.TempDir(), port: -1}
	n.Start()
	n.port = n.Server.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.Stop)
	return n
}

// Start starts the server (again), on the same port and store.
func (n *NATS) Start() {
	n.t.Helper()
	ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Host: "127.0.0.1", Port: n.port, StoreDir: n.storeDir, Name: "edgetest"})
	if err != nil {
		n.t.Fatalf("start NATS: %v", err)
	}
	n.Server = ns
}

// Stop shuts the server down and waits for it.
func (n *NATS) Stop() {
	if n.Server != nil {
		n.Server.Shutdown()
		n.Server.WaitForShutdown()
	}
}

// URL is the server's client URL.
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Connect returns a NATS connection and JetStream context for publishing,
// closed when the test ends. It ensures the EVENTS stream with defaults.
func (n *NATS) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return n.ConnectWith(t, events.StreamConfig{})
}

// ConnectWith is Connect ensuring the stream with cfg (edges of the test
// must be given the same cfg, or they change it back).
func (n *NATS) ConnectWith(t testing.TB, cfg events.StreamConfig) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := events.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("ensure stream: %v", err)
	}
	return nc, js
}

// Edge is a running edge node.
type Edge struct {
	*node.Node
	URL      string // ws://127.0.0.1:port/v1/ws
	AdminURL string // http://127.0.0.1:port
}

// Metric returns the value of a counter or gauge without labels (or with
// the given label pairs, e.g. `reason="x"`) from the node's /metrics.
func (e *Edge) Metric(t testing.TB, name string) float64 {
	t.Helper()
	_, body := Get(t, e.AdminURL+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, rest)
			}
			return v
		}
	}
	return 0
}

// StartEdge starts an edge node on random loopback ports against n and
// waits until it is ready. mutate, when given, adjusts the options first.
// The node is shut down when the test ends.
func StartEdge(t testing.TB, n *NATS, mutate func(*node.Options)) *Edge {
	t.Helper()
	e := LaunchEdge(t, n, mutate)
	Eventually(t, 10*time.Second, func() bool { return e.Ready() == nil }, "edge ready")
	return e
}

// LaunchEdge is StartEdge without the wait for readiness.
func LaunchEdge(t testing.TB, n *NATS, mutate func(*node.Options)) *Edge {
	t.Helper()
	opts := node.Options{
		Name:      "edge-test",
		Addr:      "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0",
		NATSURL:   n.URL(),
		Auth:      auth.Options{HMACSecret: []byte(Secret)},
	}
	if mutate != nil {
		mutate(&opts)
	}
	nd, err := node.New(opts, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatalf("new node: %v", err)
	}
	if err := nd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { _ = nd.Shutdown() })
	return &Edge{Node: nd, URL: "ws://" + nd.Addr().String() + "/v1/ws", AdminURL: "http://" + nd.AdminAddr().String()}
}

// Token mints an HS256 token with Secret.
func Token(t testing.TB, sub string, perms, projects []string, ttl time.Duration) string {
	t.Helper()
	s, err := auth.NewHMACSigner([]byte(Secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(auth.TokenSpec{Subject: sub, Permissions: perms, Projects: projects, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Dial connects and authenticates a client with token, closed when the
// test ends.
func Dial(t testing.TB, e *Edge, token string) *client.Conn {
	t.Helper()
	return DialWith(t, e, client.Options{Token: token})
}

// DialWith connects and authenticates a client with opts (e.g. in protobuf
// mode), closed when the test ends.
func DialWith(t testing.TB, e *Edge, opts client.Options) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, e.URL, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Publish publishes ev and fails the test on error.
func Publish(t testing.TB, js jetstream.JetStream, ev *pb.Event) *jetstream.PubAck {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ack
}

// NextEvent waits for the next message on c and fails unless it is an
// event within timeout.
func NextEvent(t testing.TB, c *client.Conn, timeout time.Duration) *client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("connection ended while waiting for an event: %v", c.Err())
		}
		if m.Op != "event" {
			t.Fatalf("want an event, got %s", m.Raw)
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
	}
	return nil
}

// NoMessage fails if c receives a message within wait.
func NoMessage(t testing.TB, c *client.Conn, wait time.Duration) {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if ok {
			t.Fatalf("unexpected message: %s", m.Raw)
		}
	case <-time.After(wait):
	}
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Get fetches url and returns the status code and body.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}
