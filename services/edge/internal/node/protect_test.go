package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

// openUnauthenticated opens a WebSocket to e that never sends auth: it
// holds a connection slot until the test ends (or the auth timeout).
func openUnauthenticated(t *testing.T, e *edgetest.Edge, h http.Header) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctxT(t), e.URL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("open an unauthenticated connection: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

// wantRefused dials e and checks the handshake is refused with status and
// a Retry-After of 1 to 61 seconds.
func wantRefused(t *testing.T, e *edgetest.Edge, h http.Header, status int) {
	t.Helper()
	ws, resp, err := websocket.Dial(ctxT(t), e.URL, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		ws.CloseNow()
		t.Fatalf("handshake accepted; want %d", status)
	}
	if resp == nil {
		t.Fatalf("handshake failed without a response: %v", err)
	}
	if resp.StatusCode != status {
		t.Fatalf("handshake answered %d; want %d", resp.StatusCode, status)
	}
	ra := resp.Header.Get("Retry-After")
	secs, perr := strconv.Atoi(ra)
	if perr != nil || secs < 1 || secs > 61 {
		t.Fatalf("Retry-After %q; want whole seconds in [1, 61]", ra)
	}
}

// authDial connects and authenticates with an auth message (header false)
// or the Authorization header; the connection is closed when the test ends.
func authDial(t *testing.T, e *edgetest.Edge, token string, header bool) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: token, HeaderAuth: header})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func rejected(t *testing.T, e *edgetest.Edge, reason string) float64 {
	t.Helper()
	return e.Metric(t, `eventedge_handshakes_rejected_total{reason="`+reason+`"}`)
}

// TestProtectNodeFull: connections that never authenticate count toward
// MaxConns; beyond it the handshake gets 503 with a Retry-After, and a
// slot freed by a close is available again.
func TestProtectNodeFull(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Server.MaxConns = 5
		o.Session.AuthTimeout = time.Minute // the idle ones stay for the test
	})
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	var idle []*websocket.Conn
	for range 3 {
		idle = append(idle, openUnauthenticated(t, e, nil))
	}
	authDial(t, e, tok, false)
	authDial(t, e, tok, true)
	if f := e.Metric(t, "eventedge_connection_fill_ratio"); f != 1 {
		t.Fatalf("fill %v; want 1", f)
	}

	wantRefused(t, e, nil, http.StatusServiceUnavailable)
	wantRefused(t, e, bearer(tok), http.StatusServiceUnavailable)
	if r := rejected(t, e, "node_full"); r != 2 {
		t.Fatalf("node_full rejections %v; want 2", r)
	}

	idle[0].CloseNow()
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Metric(t, "eventedge_connection_fill_ratio") < 1 }, "a slot freed")
	authDial(t, e, tok, false)
	wantRefused(t, e, nil, http.StatusServiceUnavailable)
}

// TestProtectIPLimit: beyond MaxConnsPerIP the handshake gets 429 with a
// Retry-After; with TrustForwardedFor the address is X-Forwarded-For's.
func TestProtectIPLimit(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Server.MaxConnsPerIP = 2
		o.Server.TrustForwardedFor = true
		o.Session.AuthTimeout = time.Minute
	})
	openUnauthenticated(t, e, nil)
	openUnauthenticated(t, e, nil)
	wantRefused(t, e, nil, http.StatusTooManyRequests)

	office := http.Header{"X-Forwarded-For": {"198.51.100.7, 127.0.0.1"}}
	openUnauthenticated(t, e, office)
	openUnauthenticated(t, e, office)
	wantRefused(t, e, office, http.StatusTooManyRequests)
	if r := rejected(t, e, "ip_limit"); r != 2 {
		t.Fatalf("ip_limit rejections %v; want 2", r)
	}
	if r := rejected(t, e, "node_full"); r != 0 {
		t.Fatalf("node_full rejections %v; want 0", r)
	}
}

// TestProtectUserLimit: a user at MaxConnsPerUser is refused with 429 at
// the handshake when the token is in the Authorization header, and closed
// with 4029 right after the auth message otherwise. Other users are not
// affected, an invalid header token still gets 4001, and a closed
// connection frees its user's slot.
func TestProtectUserLimit(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.MaxConnsPerUser = 2 })
	u1 := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	u2 := edgetest.Token(t, "u2", []string{"tasks:read"}, []string{"p1"}, time.Hour)

	first := authDial(t, e, u1, true)
	authDial(t, e, u1, false)
	wantRefused(t, e, bearer(u1), http.StatusTooManyRequests)
	if ce := dialErr(t, e.URL, client.Options{Token: u1}); ce.Code != 4029 {
		t.Fatalf("auth message over the user limit: closed %d %q; want 4029", ce.Code, ce.Reason)
	}
	if ce := dialErr(t, e.URL, client.Options{Token: "not-a-token", HeaderAuth: true}); ce.Code != 4001 {
		t.Fatalf("invalid header token: closed %d; want 4001", ce.Code)
	}
	authDial(t, e, u2, true)
	authDial(t, e, u2, false)
	if r := rejected(t, e, "user_limit"); r != 2 {
		t.Fatalf("user_limit rejections %v; want 2 (one 429, one 4029)", r)
	}

	first.Close()
	edgetest.Eventually(t, 10*time.Second, func() bool {
		c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: u1, HeaderAuth: true})
		if err != nil {
			return false
		}
		t.Cleanup(func() { _ = c.Close() })
		return true
	}, "u1's slot freed")
}

// TestProtectReadyFill: /readyz turns 503 once the connections reach
// ReadyFill of MaxConns and 200 again below it.
func TestProtectReadyFill(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Server.MaxConns = 4
		o.Server.ReadyFill = 0.5
		o.Session.AuthTimeout = time.Minute
	})
	readyz := func() int {
		code, _ := edgetest.Get(t, e.AdminURL+"/readyz")
		return code
	}
	openUnauthenticated(t, e, nil)
	if code := readyz(); code != 200 {
		t.Fatalf("/readyz at 1 of 4: %d", code)
	}
	second := openUnauthenticated(t, e, nil)
	if code, body := edgetest.Get(t, e.AdminURL+"/readyz"); code != 503 {
		t.Fatalf("/readyz at 2 of 4 (ready fill 0.5): %d %q; want 503", code, body)
	}
	second.CloseNow()
	edgetest.Eventually(t, 10*time.Second, func() bool { return readyz() == 200 }, "/readyz 200 again below the ready fill")
}

// TestProtectHandshakeOrigin: a foreign origin is refused (403) and counted.
func TestProtectHandshakeOrigin(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.AllowedOrigins = []string{"dash.example.com"} })
	ws, resp, err := websocket.Dial(ctxT(t), e.URL, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example.org"}}})
	if err == nil {
		ws.CloseNow()
		t.Fatal("foreign origin accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v; want 403", resp, err)
	}
	if r := rejected(t, e, "origin"); r != 1 {
		t.Fatalf("origin rejections %v; want 1", r)
	}
	openUnauthenticated(t, e, http.Header{"Origin": {"https://dash.example.com"}})
	if f := e.Metric(t, "eventedge_connection_fill_ratio"); f != 1.0/10000 {
		t.Fatalf("fill %v; want 1/10000 (the refused handshake released its slot)", f)
	}
}

// drainWatch records, per client, the node it is connected to and when it
// was told 1012 (service restart).
type drainWatch struct {
	mu       sync.Mutex
	node     []string    // guarded by mu; by client index
	restarts []time.Time // guarded by mu; every 1012 seen
}

func (w *drainWatch) onState(i int) func(client.StateChange) {
	return func(s client.StateChange) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch s.State {
		case client.StateConnected:
			w.node[i] = s.Node
		case client.StateReconnecting:
			w.node[i] = ""
			if client.CloseCode(s.Err) == 1012 {
				w.restarts = append(w.restarts, time.Now())
			}
		}
	}
}

func (w *drainWatch) on(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	k := 0
	for _, nd := range w.node {
		if nd == name {
			k++
		}
	}
	return k
}

// pacedPublisher publishes n task_updated events to r at rate per second,
// each from its own goroutine so that a slow acknowledgment does not slow
// the pace; each is retried (same id: JetStream de-duplicates) until
// acknowledged and its seq recorded in log. progress counts acknowledged
// events. The channel reports the first failure, or nil when all are in.
func pacedPublisher(js jetstream.JetStream, r room.Room, n int, rate float64, log *deliverycheck.Log, progress *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for range n {
			<-tick.C
			ev := events.TaskUpdated(r, "u7", "t1", &pb.Task{Title: "v"}, "title")
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(time.Minute)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					ack, err := events.Publish(ctx, js, ev)
					cancel()
					if err == nil {
						log.Add(r.String(), ack.Sequence)
						progress.Add(1)
						return
					}
					if time.Now().After(deadline) {
						errs <- err
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		close(errs)
		done <- <-errs // nil when none failed
	}()
	return done
}

// TestDrainMovesClientsWithoutLoss: 500 reconnecting clients on node A
// stream a room while A drains over 2s. A stops being ready at once, the
// clients get 1012 in batches spread over the drain, all of them end on B,
// and every client received every event once, in order.
func TestDrainMovesClientsWithoutLoss(t *testing.T) {
	const (
		clients = 500
		users   = 50 // 10 connections each, well under MaxConnsPerUser
		drain   = 2 * time.Second
		// 500 clients × 20 events/s is 10,000 deliveries/s, about what two
		// cores sustain under -race with the clients in this process: a
		// steady stream before, throughout and after the drain.
		rate  = 20
		total = 100
	)
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	a := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-a"; o.DrainDuration = drain })
	b := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-b" })
	r := room.Project("p1")
	// The room has a position before anyone subscribes, so a client knows
	// it is subscribed once its position is set.
	before := edgetest.Publish(t, js, events.TaskDeleted(r, "u1", "t0")).Sequence

	w := &drainWatch{node: make([]string, clients)}
	got := make([]*deliverycheck.Received, clients)
	conns := make([]*client.Client, clients)
	delivered := make([]*atomic.Int64, clients)
	tokens := make([]string, users)
	for u := range tokens {
		tokens[u] = edgetest.Token(t, fmt.Sprintf("u%02d", u), []string{"tasks:read"}, []string{"p1"}, time.Hour)
	}
	for i := range clients {
		got[i] = deliverycheck.NewReceived(fmt.Sprintf("c%03d", i))
		conns[i], delivered[i] = reliableClient(t, client.Config{
			URLs: []string{a.URL, b.URL}, Token: tokens[i%users], OnState: w.onState(i),
		}, got[i], r.String())
	}
	edgetest.Eventually(t, 30*time.Second, func() bool {
		for _, c := range conns {
			if c.Position(r.String()) < before {
				return false
			}
		}
		return w.on("edge-a") == clients
	}, "every client subscribed on A")

	log := deliverycheck.NewLog()
	var published atomic.Int64
	done := pacedPublisher(js, r, total, rate, log, &published)
	edgetest.Eventually(t, 10*time.Second, func() bool { return published.Load() >= rate/2 }, "events flowing")

	var maxRemaining atomic.Int64 // the drain's progress gauge, sampled
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watchCtx.Done():
				return
			case <-tick.C:
			}
			if v := int64(testutil.ToFloat64(a.Metrics().DrainRemaining)); v > maxRemaining.Load() {
				maxRemaining.Store(v)
			}
		}
	}()
	t.Cleanup(func() { stopWatch(); watchWG.Wait() })
	shutdown := make(chan error, 1)
	go func() { shutdown <- a.Shutdown() }()
	edgetest.Eventually(t, time.Second, func() bool { return a.Ready() != nil }, "A not ready once Shutdown began")
	if code, _ := edgetest.Get(t, a.AdminURL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("A's /readyz during the drain: %d; want 503", code)
	}

	edgetest.Eventually(t, 30*time.Second, func() bool { return w.on("edge-b") == clients }, "every client on B")
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("A's shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("A's shutdown did not return")
	}
	stopWatch()
	watchWG.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := published.Load(); p != total {
		t.Fatalf("published %d of %d", p, total)
	}
	want := int64(len(log.Seqs(r.String())))
	// Wait while deliveries progress: on a loaded machine under -race the
	// catch-up on B can take minutes, which is slowness, not loss. A
	// stall of 20s fails, and so does an overall 5 minutes.
	var lastSum int64
	lastMove, start := time.Now(), time.Now()
	for {
		short, sum := 0, int64(0)
		var detail []string
		for i, d := range delivered {
			got := d.Load()
			sum += got
			if got < want {
				short++
				if len(detail) < 5 {
					detail = append(detail, fmt.Sprintf("c%03d has %d, position %d", i, got, conns[i].Position(r.String())))
				}
			}
		}
		if short == 0 {
			break
		}
		if sum != lastSum {
			lastSum, lastMove = sum, time.Now()
		}
		if time.Since(lastMove) > 20*time.Second || time.Since(start) > 5*time.Minute {
			t.Fatalf("after %s (no delivery for %s), %d clients short of the %d events, among them %v",
				time.Since(start).Round(time.Second), time.Since(lastMove).Round(time.Second), short, want, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Logf("every event delivered to every client after %s", d.Round(time.Second))
	}

	bad := 0
	for i := range clients {
		rep := deliverycheck.Check(log, got[i], deliverycheck.Expectation{Room: r.String()})
		if !rep.OK() || rep.Expected != int(want) {
			bad++
			if bad <= 5 {
				t.Errorf("delivery: %s", rep)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d clients lost, duplicated or reordered events", bad, clients)
	}

	w.mu.Lock()
	restarts := append([]time.Time(nil), w.restarts...)
	w.mu.Unlock()
	if len(restarts) != clients {
		t.Fatalf("%d clients saw 1012; want all %d", len(restarts), clients)
	}
	first, last := restarts[0], restarts[0]
	for _, at := range restarts {
		first, last = minTime(first, at), maxTime(last, at)
	}
	if span := last.Sub(first); span <= drain/2 {
		t.Fatalf("the 1012s came within %s; want them spread over more than half of the %s drain", span, drain)
	} else {
		t.Logf("1012s spread over %s; drain gauge peaked at %d", span, maxRemaining.Load())
	}
	if m := maxRemaining.Load(); m <= 0 || m >= clients {
		t.Fatalf("drain_remaining peaked at %d; want between 0 and %d while draining", m, clients)
	}
	if v := testutil.ToFloat64(a.Metrics().DrainRemaining); v != 0 {
		t.Fatalf("drain_remaining %v after the drain; want 0", v)
	}
	if v := testutil.ToFloat64(a.Metrics().HandshakesRejected.WithLabelValues("node_full")); v != 0 {
		t.Fatalf("node_full rejections on A: %v", v)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestClientHonoursRetryAfterOfARefusedUpgrade: the Go client sees a
// refused upgrade as a *client.HandshakeError with the status and the
// Retry-After header. With one URL (a load balancer) it waits the
// Retry-After before asking again; with several it tries the next node at
// its usual backoff, and connects there.
func TestClientHonoursRetryAfterOfARefusedUpgrade(t *testing.T) {
	n := edgetest.StartNATS(t)
	full := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Name = "edge-full"
		o.Server.MaxConns = 1
		o.Session.AuthTimeout = time.Minute
	})
	other := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-other" })
	openUnauthenticated(t, full, nil)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)

	refused := func(s client.StateChange) *client.HandshakeError {
		t.Helper()
		var he *client.HandshakeError
		if !errors.As(s.Err, &he) || he.Status != http.StatusServiceUnavailable || he.RetryAfter < time.Second {
			t.Fatalf("reconnecting after %v; want a HandshakeError 503 with a Retry-After of 1 s or more", s.Err)
		}
		return he
	}
	for _, tc := range []struct {
		name string
		urls []string
	}{
		{"one URL", []string{full.URL}},
		{"two URLs", []string{full.URL, other.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states := make(chan client.StateChange, 64)
			c := client.NewClient(client.Config{URLs: tc.urls, Token: tok, BaseDelay: 100 * time.Millisecond, OnState: connected(states)})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("client run: %v", err)
				}
			}()
			s := waitState(t, states, client.StateReconnecting)
			he := refused(s)
			if len(tc.urls) == 1 {
				if s.RetryIn != he.RetryAfter {
					t.Fatalf("retry in %s; want the Retry-After, %s", s.RetryIn, he.RetryAfter)
				}
				return
			}
			if s.RetryIn >= he.RetryAfter {
				t.Fatalf("retry in %s with another node to try; want the backoff, not the Retry-After %s", s.RetryIn, he.RetryAfter)
			}
			if got := waitState(t, states, client.StateConnected); got.Node != "edge-other" {
				t.Fatalf("connected to %s; want edge-other", got.Node)
			}
		})
	}
}
