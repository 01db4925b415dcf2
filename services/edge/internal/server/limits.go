package server

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Handshake rejection reasons: the label values of
// eventedge_handshakes_rejected_total.
const (
	rejectNodeFull  = "node_full"
	rejectIPLimit   = "ip_limit"
	rejectUserLimit = "user_limit"
	rejectDraining  = "draining"
	rejectOrigin    = "origin"
	// rejectSubprotocol: the client offered only subprotocols the node
	// does not speak (400).
	rejectSubprotocol = "subprotocol"
	// rejectStarting: the node has not read the stored revocations yet
	// (revocation.List.Loaded), so it cannot tell a revoked token.
	rejectStarting = "starting"
)

// closeRateWindow is the time constant of the close-rate EWMA: closes older
// than about this weigh little.
const closeRateWindow = 10 * time.Second

// closeRate estimates how many connections close per second: an
// exponentially weighted moving average kept without a ticker. Each close
// adds 1/τ to the rate and the rate decays by e^(-Δt/τ), so for a steady λ
// closes/s it converges to λ, and it forgets a burst within a few τ. The
// zero value is a rate of 0. Not safe for concurrent use: the limiter's
// mutex guards it.
type closeRate struct {
	perSec float64   // as of at
	at     time.Time // the last close; zero: none yet
}

func (c *closeRate) add(now time.Time) {
	c.perSec = c.value(now) + 1/closeRateWindow.Seconds()
	c.at = now
}

func (c *closeRate) value(now time.Time) float64 {
	if c.at.IsZero() {
		return 0
	}
	return c.perSec * math.Exp(-max(now.Sub(c.at), 0).Seconds()/closeRateWindow.Seconds())
}

// count is the number of connections of one kind (the node's, one IP's, one
// user's) and how fast they close.
type count struct {
	n      int
	closes closeRate
}

func (c *count) release(now time.Time, closed bool) {
	c.n--
	if closed {
		c.closes.add(now)
	}
}

// Retry-After bounds, in seconds, before the jitter.
const (
	minRetryAfter = 1
	maxRetryAfter = 60
)

// retryAfter returns the Retry-After, in whole seconds, for a client refused
// because c is at its limit:
//
//	seconds = ⌈ clamp((excess + 1) / rate, 1, 60) + jitter ⌉
//
// excess is how far c is over the limit (connections counted beyond it, for
// example after the limit was lowered), the 1 is the slot this client
// needs, and rate is the EWMA of c's closes per second (over ~10 s), so the
// quotient estimates when enough of them will have closed. The clamp keeps
// a burst of closes from inviting an instant retry storm and an idle count
// (rate ≈ 0, the quotient infinite) from sending clients away for good.
// jitter, in [0, 1), spreads the refused clients' returns over a second;
// the result is rounded up because Retry-After has no fractions, so it is
// between 1 and 61.
func retryAfter(c *count, limit int, now time.Time, jitter float64) int {
	excess := float64(max(c.n-limit, 0))
	secs := (excess + 1) / c.closes.value(now) // +Inf when nothing closes
	secs = min(max(secs, minRetryAfter), maxRetryAfter)
	return int(math.Ceil(secs + jitter))
}

// refusal is a handshake refused for capacity, and how to answer it.
type refusal struct {
	status     int    // 503 or 429
	reason     string // metric label
	text       string // response body
	retryAfter int    // seconds
}

// limiter counts the node's connections, in total, by client IP and by
// user, and refuses those over the limits. A connection counts for the node
// and its IP from the accepted upgrade (before authentication, so a flood
// of connections that never authenticate cannot exhaust the node) until
// its session ends; it counts for its user from its first authentication
// until then. It implements session.UserSlots. Safe for concurrent use.
type limiter struct {
	// static after newLimiter
	maxConns, maxPerIP, maxPerUser int
	m                              *metrics.Metrics
	now                            func() time.Time
	jitter                         func() float64 // in [0, 1)

	mu     sync.Mutex
	conns  count                 // guarded by mu
	byIP   map[string]*count     // guarded by mu; only IPs with connections
	byUser map[string]*userConns // guarded by mu; only users with connections
}

// userConns is one user's connections on the node: their count (and close
// rate) and the sessions holding them, in no order, at most
// MaxConnsPerUser, so that a revocation finds the user's sessions without
// going through every session of the node.
type userConns struct {
	count
	sessions []*session.Session
}

// remove drops s from u's sessions (swapping the last one in), and
// reports whether it was there.
func (u *userConns) remove(s *session.Session) bool {
	i := slices.Index(u.sessions, s)
	if i < 0 {
		return false
	}
	last := len(u.sessions) - 1
	u.sessions[i] = u.sessions[last]
	u.sessions[last] = nil
	u.sessions = u.sessions[:last]
	return true
}

var _ session.UserSlots = (*limiter)(nil)

func newLimiter(opts Options, m *metrics.Metrics, now func() time.Time, jitter func() float64) *limiter {
	l := &limiter{
		maxConns: opts.MaxConns, maxPerIP: opts.MaxConnsPerIP, maxPerUser: opts.MaxConnsPerUser,
		m: m, now: now, jitter: jitter,
		byIP: make(map[string]*count), byUser: make(map[string]*userConns),
	}
	m.ConnectionFill.Set(0)
	return l
}

// acquireConn counts a connection from ip, or refuses it when the node
// (503) or ip (429) is at its limit.
func (l *limiter) acquireConn(ip string) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.conns.n >= l.maxConns {
		return &refusal{http.StatusServiceUnavailable, rejectNodeFull,
			"edge node is full; retry later or connect to another node", retryAfter(&l.conns, l.maxConns, now, l.jitter())}
	}
	c := l.byIP[ip]
	if c != nil && c.n >= l.maxPerIP {
		return &refusal{http.StatusTooManyRequests, rejectIPLimit,
			"too many connections from " + ip + " (at most " + strconv.Itoa(l.maxPerIP) + " per address)", retryAfter(c, l.maxPerIP, now, l.jitter())}
	}
	if c == nil {
		c = &count{}
		l.byIP[ip] = c
	}
	c.n++
	l.conns.n++
	l.setFill()
	return nil
}

// releaseConn uncounts a connection from ip. closed says it had been
// accepted: only those closes feed the close rate that Retry-After is
// computed from.
func (l *limiter) releaseConn(ip string, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.conns.release(now, closed)
	if c := l.byIP[ip]; c != nil {
		c.release(now, closed)
		if c.n <= 0 {
			delete(l.byIP, ip)
		}
	}
	l.setFill()
}

func (l *limiter) setFill() {
	l.m.ConnectionFill.Set(float64(l.conns.n) / float64(l.maxConns))
}

// load returns the node's connections and its limit.
func (l *limiter) load() (conns, maxConns int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns.n, l.maxConns
}

// userRefusal is the 429 for a handshake whose header token names a user
// at the limit, nil when the user may connect. It takes no slot: the
// session does, with AcquireUser, once it has authenticated.
func (l *limiter) userRefusal(user string) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.byUser[user]
	if u == nil || u.n < l.maxPerUser {
		return nil
	}
	return &refusal{http.StatusTooManyRequests, rejectUserLimit,
		"too many connections for this user (at most " + strconv.Itoa(l.maxPerUser) + ")", retryAfter(&u.count, l.maxPerUser, l.now(), l.jitter())}
}

// AcquireUser takes one of user's connection slots for sess; false,
// counted as a user_limit rejection, when the user has MaxConnsPerUser
// already.
func (l *limiter) AcquireUser(user string, sess *session.Session) bool {
	l.mu.Lock()
	u := l.byUser[user]
	if u != nil && u.n >= l.maxPerUser {
		l.mu.Unlock()
		l.m.HandshakesRejected.WithLabelValues(rejectUserLimit).Inc()
		return false
	}
	if u == nil {
		u = &userConns{}
		l.byUser[user] = u
	}
	u.n++
	u.sessions = append(u.sessions, sess)
	l.mu.Unlock()
	return true
}

// ReleaseUser returns the slot sess took with AcquireUser.
func (l *limiter) ReleaseUser(user string, sess *session.Session) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.byUser[user]; u != nil && u.remove(sess) {
		u.release(l.now(), true)
		if u.n <= 0 {
			delete(l.byUser, user)
		}
	}
}

// sessionsOf returns the sessions holding a slot of user: a copy, in no
// order. It costs the user's connections, not the node's.
func (l *limiter) sessionsOf(user string) []*session.Session {
	l.mu.Lock()
	defer l.mu.Unlock()
	if u := l.byUser[user]; u != nil {
		return slices.Clone(u.sessions)
	}
	return nil
}
