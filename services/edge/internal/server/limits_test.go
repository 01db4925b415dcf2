package server

import (
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimitCloseRateTracksSteadyRate(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var r closeRate
	if v := r.value(clock.now()); v != 0 {
		t.Fatalf("empty rate %v, want 0", v)
	}
	// 5 closes/s for a minute (6 time constants): the estimate converges.
	for range 300 {
		clock.advance(200 * time.Millisecond)
		r.add(clock.now())
	}
	if v := r.value(clock.now()); math.Abs(v-5) > 0.5 {
		t.Fatalf("after a steady 5/s: %v", v)
	}
	// Ten quiet seconds (one time constant): down to about 1/e.
	clock.advance(closeRateWindow)
	if v := r.value(clock.now()); math.Abs(v-5/math.E) > 0.5 {
		t.Fatalf("after 10s quiet: %v, want about %v", v, 5/math.E)
	}
}

func TestLimitRetryAfter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	withRate := func(n int, perSec float64) *count {
		return &count{n: n, closes: closeRate{perSec: perSec, at: now}}
	}
	cases := []struct {
		name     string
		c        *count
		limit    int
		jitter   float64
		min, max int
	}{
		{"nothing closes: the 60s ceiling", withRate(5, 0), 5, 0.5, 61, 61},
		{"fast closes: the 1s floor", withRate(5, 100), 5, 0.5, 2, 2},
		{"no jitter at the floor", withRate(5, 100), 5, 0, 1, 1},
		{"one slot at 0.25/s: 4s", withRate(5, 0.25), 5, 0.5, 5, 5},
		{"3 over the limit at 1/s: 4s", withRate(8, 1), 5, 0.01, 5, 5},
		{"largest jitter", withRate(5, 0.5), 5, 0.999, 3, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := retryAfter(tc.c, tc.limit, now, tc.jitter)
			if got < tc.min || got > tc.max {
				t.Fatalf("retryAfter = %d, want %d..%d", got, tc.min, tc.max)
			}
		})
	}
	// Whatever the state, within [1, 61].
	for _, perSec := range []float64{0, 1e-9, 0.01, 1, 1e9} {
		for _, jitter := range []float64{0, 0.5, 0.999999} {
			if got := retryAfter(withRate(10, perSec), 10, now, jitter); got < 1 || got > 61 {
				t.Fatalf("rate %v jitter %v: %d", perSec, jitter, got)
			}
		}
	}
}

func TestLimitCounts(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(Options{MaxConns: 4, MaxConnsPerIP: 2, MaxConnsPerUser: 1}, m, clock.now, func() float64 { return 0 })

	for _, ip := range []string{"10.0.0.1", "10.0.0.1"} {
		if rf := l.acquireConn(ip); rf != nil {
			t.Fatalf("acquire %s: refused %+v", ip, rf)
		}
	}
	rf := l.acquireConn("10.0.0.1")
	if rf == nil || rf.status != http.StatusTooManyRequests || rf.reason != rejectIPLimit || rf.retryAfter != maxRetryAfter {
		t.Fatalf("third from one IP: %+v, want 429 ip_limit after 60s (nothing closed yet)", rf)
	}
	for _, ip := range []string{"10.0.0.2", "10.0.0.3"} {
		if rf := l.acquireConn(ip); rf != nil {
			t.Fatalf("acquire %s: refused %+v", ip, rf)
		}
	}
	if got := testutil.ToFloat64(m.ConnectionFill); got != 1 {
		t.Fatalf("fill %v, want 1", got)
	}
	rf = l.acquireConn("10.0.0.4")
	if rf == nil || rf.status != http.StatusServiceUnavailable || rf.reason != rejectNodeFull {
		t.Fatalf("fifth: %+v, want 503 node_full", rf)
	}

	// Closes make the node's Retry-After shorter; a failed handshake's
	// release does not count as a close.
	l.releaseConn("10.0.0.3", false)
	if _, ok := l.byIP["10.0.0.3"]; ok {
		t.Fatal("an IP without connections is still tracked")
	}
	if l.conns.closes.value(clock.now()) != 0 {
		t.Fatal("a failed handshake counted as a close")
	}
	for range 10 {
		clock.advance(100 * time.Millisecond)
		if rf := l.acquireConn("10.0.0.5"); rf != nil {
			t.Fatalf("after a release: %+v", rf)
		}
		l.releaseConn("10.0.0.5", true)
	}
	l.acquireConn("10.0.0.5")
	if rf := l.acquireConn("10.0.0.6"); rf == nil || rf.retryAfter >= maxRetryAfter {
		t.Fatalf("with closes going on: %+v, want a Retry-After under 60", rf)
	}
	if n, limit := l.load(); n != 4 || limit != 4 {
		t.Fatalf("load %d/%d", n, limit)
	}

	// Users: the handshake check takes no slot; AcquireUser does.
	s1, s2 := &session.Session{}, &session.Session{}
	if l.userRefusal("u1") != nil || !l.AcquireUser("u1", s1) {
		t.Fatal("first connection of u1 refused")
	}
	if rf := l.userRefusal("u1"); rf == nil || rf.status != http.StatusTooManyRequests || rf.reason != rejectUserLimit {
		t.Fatalf("u1 at its limit: %+v", rf)
	}
	if l.AcquireUser("u1", s2) {
		t.Fatal("second slot of u1 given")
	}
	if got := testutil.ToFloat64(m.HandshakesRejected.WithLabelValues(rejectUserLimit)); got != 1 {
		t.Fatalf("user_limit rejections %v, want 1", got)
	}
	l.ReleaseUser("u1", s2) // took no slot: gives none back
	if l.userRefusal("u1") == nil {
		t.Fatal("a session without a slot released one of u1's")
	}
	l.ReleaseUser("u1", s1)
	if !l.AcquireUser("u1", s2) {
		t.Fatal("u1 refused after its slot was released")
	}
}

// TestUserSessionsIndexed: the limiter knows which sessions hold each
// user's slots (what Server.Revoke reads instead of every session): added
// by AcquireUser, removed by ReleaseUser, and a user without connections
// leaves nothing behind.
func TestUserSessionsIndexed(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	l := newLimiter(Options{MaxConns: 10, MaxConnsPerIP: 10, MaxConnsPerUser: 3}, m, time.Now, func() float64 { return 0 })
	a1, a2, a3, b1 := &session.Session{}, &session.Session{}, &session.Session{}, &session.Session{}
	for _, s := range []*session.Session{a1, a2, a3} {
		if !l.AcquireUser("alice", s) {
			t.Fatal("alice refused under her limit")
		}
	}
	if !l.AcquireUser("bob", b1) {
		t.Fatal("bob refused")
	}
	same := func(got []*session.Session, want ...*session.Session) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(s *session.Session) bool { return !slices.Contains(got, s) })
	}
	if got := l.sessionsOf("alice"); !same(got, a1, a2, a3) {
		t.Fatalf("alice's sessions %v; want %v", got, []*session.Session{a1, a2, a3})
	}
	if got := l.sessionsOf("bob"); !same(got, b1) {
		t.Fatalf("bob's sessions %v; want %v", got, []*session.Session{b1})
	}
	l.ReleaseUser("alice", a1) // from the front: the last one is moved in
	if got := l.sessionsOf("alice"); !same(got, a2, a3) {
		t.Fatalf("alice's sessions after a1 ended %v; want %v", got, []*session.Session{a2, a3})
	}
	l.ReleaseUser("alice", b1) // not alice's: nothing changes
	if got := l.sessionsOf("alice"); !same(got, a2, a3) {
		t.Fatalf("alice's sessions after releasing bob's session under her name %v", got)
	}
	l.ReleaseUser("alice", a3)
	l.ReleaseUser("alice", a2)
	if got := l.sessionsOf("alice"); got != nil {
		t.Fatalf("alice's sessions after all ended %v; want none", got)
	}
	l.mu.Lock()
	users := len(l.byUser)
	l.mu.Unlock()
	if users != 1 {
		t.Fatalf("%d users indexed; want 1 (bob)", users)
	}
}

func TestHandshakeClientIP(t *testing.T) {
	cases := []struct {
		name   string
		trust  bool
		remote string
		xff    string
		want   string
	}{
		{"peer", false, "192.0.2.7:5123", "", "192.0.2.7"},
		{"forwarded-for ignored by default", false, "192.0.2.7:5123", "198.51.100.1", "192.0.2.7"},
		{"forwarded-for trusted: first entry", true, "192.0.2.7:5123", " 198.51.100.1 , 10.0.0.1", "198.51.100.1"},
		{"forwarded-for not an address: the peer", true, "192.0.2.7:5123", "unknown", "192.0.2.7"},
		{"forwarded-for absent: the peer", true, "192.0.2.7:5123", "", "192.0.2.7"},
		{"IPv6 peer", false, "[2001:db8::1]:443", "", "2001:db8::1"},
		{"IPv4-mapped IPv6 is the IPv4 address", false, "[::ffff:192.0.2.7]:443", "", "192.0.2.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{opts: Options{TrustForwardedFor: tc.trust}}
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := s.clientIP(r); got != tc.want {
				t.Fatalf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
