package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

func publishRevocation(t *testing.T, nc *nats.Conn, msg string) {
	t.Helper()
	if err := nc.Publish(revoke.Subject, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestRevocation: ctl.revoke with rooms removes those memberships at once
// (unsubscribed, reason revoked) and refuses them to the same token; a
// fresh token works. Without rooms, the user's connections are closed with
// 4003 and the old token is refused. An invalid message changes nothing.
func TestRevocation(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	// A token from a second ago: revocations apply to tokens issued before them.
	old := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1", "p2"}, time.Hour)
	time.Sleep(1100 * time.Millisecond)
	c := edgetest.Dial(t, e, old)
	other := edgetest.Dial(t, e, edgetest.Token(t, "u2", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	for _, r := range []string{"project:p1", "project:p2"} {
		if err := c.Subscribe(ctxT(t), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}

	publishRevocation(t, nc, `{"userId":"u1","rooms":["project:p1.*"]}`) // invalid: ignored
	publishRevocation(t, nc, `{"userId":"u1","rooms":["project:p1"]}`)
	select {
	case m := <-c.Messages():
		if m.Op != "unsubscribed" || m.Room != "project:p1" || m.Reason != "revoked" {
			t.Fatalf("got %s, want unsubscribed project:p1 revoked", m.Raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no unsubscribed after the revocation")
	}
	ev1 := events.TaskDeleted(room.Project("p1"), "u9", "t1")
	ev2 := events.TaskDeleted(room.Project("p2"), "u9", "t2")
	edgetest.Publish(t, js, ev1)
	edgetest.Publish(t, js, ev2)
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Event.ID != ev2.Id {
		t.Fatalf("after revoking p1 got %s, want only p2's event", m.Raw)
	}
	if m := edgetest.NextEvent(t, other, 5*time.Second); m.Event.ID != ev1.Id {
		t.Fatalf("another user lost p1: %s", m.Raw)
	}
	if got := replyCode(c.Subscribe(ctxT(t), "project:p1")); got != "forbidden" {
		t.Fatalf("resubscribing with the old token: %s, want forbidden", got)
	}
	fresh := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := fresh.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatalf("a token issued after the revocation: %v", err)
	}

	// The whole user: every connection closed with 4003, the old token refused.
	publishRevocation(t, nc, `{"userId":"u1"}`)
	for _, cl := range []*client.Conn{c, fresh} {
		select {
		case <-cl.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("connection not closed after a user revocation")
		}
		var ce *client.CloseError
		if !errors.As(cl.Err(), &ce) || ce.Code != 4003 {
			t.Fatalf("closed with %v, want 4003", cl.Err())
		}
	}
	if ce := dialErr(t, e.URL, client.Options{Token: old}); ce.Code != 4003 {
		t.Fatalf("old token after a user revocation: %d %q, want 4003", ce.Code, ce.Reason)
	}
	if _, err := other.Ping(ctxT(t)); err != nil {
		t.Fatalf("another user's connection suffered: %v", err)
	}
	// Counted after the connections were closed: waited for.
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Metric(t, "eventedge_revocations_total") == 2 }, "2 revocations counted")
	if got := e.Metric(t, "eventedge_revocations_total"); got != 2 {
		t.Fatalf("revocations counted %v, want 2 (the invalid one ignored)", got)
	}
}

// TestExpiringNotice: the client is warned before its token expires, and a
// refresh in time keeps the connection.
func TestExpiringNotice(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Session.ExpiringNotice = 2 * time.Second
		o.Auth.Leeway = -1
	})
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", nil, nil, 4*time.Second))
	select {
	case m := <-c.Messages():
		if m.Op != "expiring" || !strings.Contains(string(m.Raw), `"in":`) {
			t.Fatalf("got %s, want expiring", m.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no expiring notice")
	}
	if _, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", nil, nil, time.Hour)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // past the first token's expiry
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("refreshed connection closed: %v", err)
	}
}

// TestClientRefreshesOnExpiring: the reconnecting Go client answers the
// expiring notice with a fresh token from TokenFunc, so its connection is
// never closed for expiry.
func TestClientRefreshesOnExpiring(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Session.ExpiringNotice = 2 * time.Second
		o.Auth.Leeway = -1
	})
	var calls atomic.Int64
	states := make(chan client.StateChange, 64)
	got := deliverycheck.NewReceived("c1")
	reliableClient(t, client.Config{
		URLs: []string{e.URL},
		TokenFunc: func(context.Context) (string, error) {
			calls.Add(1)
			return edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, 4*time.Second), nil
		},
		OnState: connected(states),
	}, got, "project:p1")
	waitState(t, states, client.StateConnected)
	// Two token lifetimes: each expiring notice is answered with a refresh.
	edgetest.Eventually(t, 20*time.Second, func() bool { return calls.Load() >= 3 }, "two refreshes")
	for {
		select {
		case s := <-states:
			if s.State != client.StateConnected {
				t.Fatalf("state %s (%v): the connection was lost", s.State, s.Err)
			}
			continue
		default:
		}
		break
	}
	if got := e.Metric(t, "eventedge_connections_opened_total"); got != 1 {
		t.Fatalf("%v connections opened, want 1 (no reconnect)", got)
	}
}

// TestRevocationSurvivesNodeRestart: revocations are kept in the
// REVOCATIONS stream, so a node started after them refuses the old tokens
// as the node that saw them live did; the time that counts is when the
// stream stored a revocation, not when the node read it, so a token minted
// after the revocation but before the new node started is let in. The last
// of 2,002 stored revocations is in force as soon as the node is ready
// (the gate itself: TestNoAuthenticationBeforeRevocationsAreRead).
func TestRevocationSurvivesNodeRestart(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	a := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-a" })
	old1 := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1", "p2"}, time.Hour)
	old2 := edgetest.Token(t, "u2", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	time.Sleep(1100 * time.Millisecond)
	publishRevocation(t, nc, `{"userId":"u1","rooms":["project:p1"]}`)
	edgetest.Eventually(t, 10*time.Second, func() bool { return a.Metric(t, "eventedge_revocations_total") == 1 }, "node A applied the revocation")
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}

	time.Sleep(1100 * time.Millisecond)
	fresh1 := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	time.Sleep(2100 * time.Millisecond)                                     // node B reads the revocation seconds after fresh1's iat
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // 2,002 acknowledged publishes on a busy machine
	defer cancel()
	for i := range 2000 {
		if _, err := revoke.Publish(ctx, js, revoke.Message{UserID: "filler" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := revoke.Publish(ctx, js, revoke.Message{UserID: "u2"}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	b := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-b" })
	t.Logf("node B ready %s after its start, with 2,002 stored revocations", time.Since(start).Round(time.Millisecond))
	if ce := dialErr(t, b.URL, client.Options{Token: old2}); ce.Code != 4003 {
		t.Fatalf("u2's old token on the new node just ready: %d %q, want 4003", ce.Code, ce.Reason)
	}
	c := edgetest.Dial(t, b, old1)
	if got := replyCode(c.Subscribe(ctxT(t), "project:p1")); got != "forbidden" {
		t.Fatalf("u1's old token, revoked room, new node: %s, want forbidden", got)
	}
	if err := c.Subscribe(ctxT(t), "project:p2"); err != nil {
		t.Fatalf("u1's old token, a room not revoked: %v", err)
	}
	f := edgetest.Dial(t, b, fresh1)
	if err := f.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatalf("a token minted after the revocation, before the node started: %v", err)
	}
	if got := b.Metric(t, "eventedge_revocations_total"); got != 2002 {
		t.Fatalf("node B applied %v revocations, want 2002", got)
	}
}

// TestRevocationMissedWhileCutOffFromNATS: a revocation published while
// the node cannot reach NATS is applied when it reconnects (revocation.Hits):
// to the session that held its old token before the revocation, and to one
// opened meanwhile with an old token (the node could not refuse it), both
// closed with 4003; the user's session opened meanwhile with a token minted
// after the revocation stays open, as does another user's.
func TestRevocationMissedWhileCutOffFromNATS(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, _ := n.Connect(t)
	proxy := edgetest.StartProxy(t, n.Server.Addr().String())
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.NATSURL = "nats://" + proxy.Addr() })
	oldToken := edgetest.Token(t, "u1", nil, nil, time.Hour)
	old := edgetest.Dial(t, e, oldToken)
	other := edgetest.Dial(t, e, edgetest.Token(t, "u2", nil, nil, time.Hour))
	time.Sleep(1100 * time.Millisecond) // the old token's iat is a second before the revocation

	proxy.Block()
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Ready() != nil }, "node cut off from NATS")
	publishRevocation(t, nc, `{"userId":"u1"}`)
	time.Sleep(1100 * time.Millisecond) // the next token's iat is after the revocation's second
	oldLate := edgetest.Dial(t, e, oldToken)
	fresh := edgetest.Dial(t, e, edgetest.Token(t, "u1", nil, nil, time.Hour))
	if _, err := old.Ping(ctxT(t)); err != nil {
		t.Fatalf("the old session closed before the node could know: %v", err)
	}

	proxy.Unblock()
	for name, c := range map[string]*client.Conn{"held before the revocation": old, "opened meanwhile with the old token": oldLate} {
		select {
		case <-c.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("session %s still open after the node reconnected", name)
		}
		var ce *client.CloseError
		if !errors.As(c.Err(), &ce) || ce.Code != 4003 {
			t.Fatalf("session %s closed with %v, want 4003", name, c.Err())
		}
	}
	for name, c := range map[string]*client.Conn{"u1's newer token": fresh, "another user": other} {
		if _, err := c.Ping(ctxT(t)); err != nil {
			t.Fatalf("%s: session closed by the late revocation: %v", name, err)
		}
	}
}

// TestNoAuthenticationBeforeRevocationsAreRead: until the node has read
// the stored revocations it refuses WebSocket upgrades (503, Retry-After,
// eventedge_handshakes_rejected_total{reason="starting"}) and admin
// requests (503 unavailable), /readyz says why and
// eventedge_revocations_loaded is 0. Here the REVOCATIONS
// stream exists with a storage the node cannot update it to; once it is
// removed, the node creates it, reads it and lets clients in.
func TestNoAuthenticationBeforeRevocationsAreRead(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	if _, err := revoke.EnsureStream(ctxT(t), js, revoke.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	e := edgetest.LaunchEdge(t, n, nil)
	edgetest.Eventually(t, 10*time.Second, func() bool {
		status, body := edgetest.Get(t, e.AdminURL+"/readyz")
		return status == http.StatusServiceUnavailable && strings.Contains(body, "revocations: ensure stream REVOCATIONS")
	}, "readyz naming the revocations")

	wantRefused(t, e, nil, http.StatusServiceUnavailable)
	if r := rejected(t, e, "starting"); r != 1 {
		t.Fatalf("starting rejections %v; want 1", r)
	}
	if v := e.Metric(t, "eventedge_revocations_loaded"); v != 0 {
		t.Fatalf("eventedge_revocations_loaded %v before the stream is read; want 0", v)
	}
	status, h, body := adminCall(t, "GET", e.AdminURL+"/v1/admin/connections", adminToken(t), "")
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
		t.Fatalf("admin before the revocations: %d %v %s; want 503 with Retry-After", status, h, body)
	}
	apiError(t, body, "unavailable")

	if err := js.DeleteStream(ctxT(t), revoke.StreamName); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Ready() == nil }, "ready once the stream could be created")
	if v := e.Metric(t, "eventedge_revocations_loaded"); v != 1 {
		t.Fatalf("eventedge_revocations_loaded %v once ready; want 1", v)
	}
	edgetest.Dial(t, e, edgetest.Token(t, "u1", nil, nil, time.Hour))
	var l struct {
		Connections []json.RawMessage `json:"connections"`
	}
	status, _, body = adminCall(t, "GET", e.AdminURL+"/v1/admin/connections", adminToken(t), "")
	if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
		t.Fatalf("admin once ready: %d %s", status, body)
	}
}

// TestRevocationTTLValidated: a revocation TTL under a second (the
// REVOCATIONS stream's least max age) is refused by node.New, with what
// was wrong, rather than leaving the node not ready for ever.
func TestRevocationTTLValidated(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Hour, 500 * time.Millisecond} {
		_, err := node.New(node.Options{
			Name: "edge-test", Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:1",
			Auth: auth.Options{HMACSecret: []byte(edgetest.Secret)}, RevocationTTL: ttl,
		}, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), "revocation TTL "+ttl.String()+": must be at least 1s") {
			t.Fatalf("RevocationTTL %s: %v, want a refusal naming it", ttl, err)
		}
	}
}

// TestHistoryReadsValidated: a negative bound on the stream reads in
// flight is refused, naming it.
func TestHistoryReadsValidated(t *testing.T) {
	_, err := node.New(node.Options{
		Name: "edge-test", Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:1",
		Auth: auth.Options{HMACSecret: []byte(edgetest.Secret)}, History: history.Options{MaxInFlight: -1},
	}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "history reads in flight -1: must be positive") {
		t.Fatalf("History.MaxInFlight -1: %v, want a refusal naming it", err)
	}
}

// TestStartFailureStopsWhatStarted: a node whose public address is taken
// fails to start with an error naming the listen, and stops what it had
// started (the NATS connection, hub, flushers, revocation follower): the
// package's goleak check (TestMain) fails the package if any of their
// goroutines is left.
func TestStartFailureStopsWhatStarted(t *testing.T) {
	n := edgetest.StartNATS(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	nd, err := node.New(node.Options{
		Name: "edge-test", Addr: taken.Addr().String(), AdminAddr: "127.0.0.1:0", NATSURL: n.URL(),
		Auth: auth.Options{HMACSecret: []byte(edgetest.Secret)},
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err == nil || !strings.Contains(err.Error(), "listen "+taken.Addr().String()) {
		t.Fatalf("Start with the address taken: %v, want a listen error", err)
	}
}
