package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// testServer is a Server on a loopback listener with HS256 auth, and
// clients connected to it: clients[i] authenticated as users[i].
type testServer struct {
	srv     *Server
	clients []*websocket.Conn
	users   []string
}

// startServer starts a Server and connects one authenticated client per
// user (users may repeat), each with a token issued now. It waits for every
// welcome; the cleanup drains the server.
func startServer(tb testing.TB, users []string) *testServer {
	tb.Helper()
	secret := []byte(strings.Repeat("k", 32))
	v, err := auth.NewVerifier(auth.Options{HMACSecret: secret})
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := auth.NewHMACSigner(secret)
	if err != nil {
		tb.Fatal(err)
	}
	s := New(&session.Env{Node: "edge-test", Verifier: v, Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop()},
		Options{MaxConns: len(users) + 10, MaxConnsPerIP: len(users) + 10, MaxConnsPerUser: 4})
	hs := httptest.NewServer(s) // 127.0.0.1
	ts := &testServer{srv: s, users: users}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Drain(ctx, 0); err != nil {
			tb.Errorf("drain: %v", err)
		}
		for _, c := range ts.clients {
			_ = c.CloseNow()
		}
		hs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"
	for _, u := range users {
		tok, err := signer.Sign(auth.TokenSpec{Subject: u})
		if err != nil {
			tb.Fatal(err)
		}
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			tb.Fatalf("dial as %s: %v", u, err)
		}
		ts.clients = append(ts.clients, c)
		_, msg, err := c.Read(ctx)
		if err != nil || !strings.Contains(string(msg), `"welcome"`) {
			tb.Fatalf("%s's first message %q, %v; want its welcome", u, msg, err)
		}
	}
	return ts
}

// closeCode reads from c until it fails and returns the close code (-1 when
// it failed otherwise).
func closeCode(c *websocket.Conn) websocket.StatusCode {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// TestRevokeHitsOnlyTheUsersSessions: a user's revocation closes each of
// that user's sessions with 4003 and no one else's; one made before the
// sessions' tokens were issued and accepted hits none of them.
func TestRevokeHitsOnlyTheUsersSessions(t *testing.T) {
	ts := startServer(t, []string{"alice", "bob", "alice", "carol"})
	if n := ts.srv.Revoke("alice", nil, time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("a revocation older than alice's tokens hit %d sessions; want 0", n)
	}
	if n := ts.srv.Revoke("dave", nil, time.Now().Add(time.Second)); n != 0 {
		t.Fatalf("revoking a user without connections hit %d sessions", n)
	}
	if n := ts.srv.Revoke("alice", nil, time.Now().Add(time.Second)); n != 2 {
		t.Fatalf("alice's revocation hit %d sessions; want her 2", n)
	}
	for _, i := range []int{0, 2} {
		if code := closeCode(ts.clients[i]); code != protocol.CloseForbidden {
			t.Fatalf("alice's client %d closed with %d; want %d", i, code, protocol.CloseForbidden)
		}
	}
	edgeEventually(t, func() bool { return ts.srv.lim.sessionsOf("alice") == nil && ts.srv.Sessions() == 2 }, "alice's sessions ended and left the index")
	// bob and carol are still served: a ping gets its pong (read by a
	// reader whose end, when its context is cancelled, closes the
	// connection: so this comes last).
	for _, i := range []int{1, 3} {
		if got := ts.srv.lim.sessionsOf(ts.users[i]); len(got) != 1 {
			t.Fatalf("%s's sessions after alice's revocation: %d; want 1", ts.users[i], len(got))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		read := make(chan struct{})
		go func() { // ends when cancel ends its read
			defer close(read)
			_, _, _ = ts.clients[i].Read(ctx)
		}()
		err := ts.clients[i].Ping(ctx)
		cancel()
		<-read
		if err != nil {
			t.Fatalf("%s's connection after alice's revocation: %v", ts.users[i], err)
		}
	}
}

// edgeEventually polls cond for up to 10 s: edgetest.Eventually, which
// this package's tests cannot import (edgetest imports node, which imports
// server).
func edgeEventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkRevokeAmongConnected: one user's revocation on a node holding
// 2,000 authenticated connections (one per user), a revocation that hits
// none of the user's sessions (made before their token), so the loop
// measures finding them.
func BenchmarkRevokeAmongConnected(b *testing.B) {
	users := make([]string, 2000)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	ts := startServer(b, users)
	before := time.Now().Add(-time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if n := ts.srv.Revoke(users[i%len(users)], nil, before); n != 0 {
			b.Fatalf("hit %d", n)
		}
	}
}
