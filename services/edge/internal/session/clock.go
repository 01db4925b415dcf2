package session

import (
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// clock is a session's one timer for what falls due over the
// connection's life: the next ping, the expiring notice before the token
// runs out, and the token's expiry. One runtime timer (and no closure per
// token) instead of three keeps an idle connection smaller
// (docs/benchmarks.md, optimisations).
//
// Guarded by Session.mu. Times are offsets from Session.start, on the
// monotonic clock; 0 means "not due". The timer is made by the first
// rearm, re-armed for the earliest due time whenever one changes, and
// stopped by Run's teardown, which also sets Session.done: a tick that
// fires after that does nothing (one already past that check may still
// be finishing a ping, which Run waits for, or queueing nothing into a
// closed session). A tick may find nothing due (a Reset raced with its
// firing); it then only re-arms.
type clock struct {
	timer  *time.Timer
	ping   time.Duration // the next ping; 0 while one is in flight
	notice time.Duration // send expiring for claims
	expiry time.Duration // close with 4001 unless claims were replaced
	claims *auth.Claims  // the token notice and expiry belong to
}

// farFuture bounds how far ahead the clock sets a due time: a token
// expiring later is treated as expiring then.
const farFuture = 100 * 365 * 24 * time.Hour

// sinceStart is the time since the session started, on the monotonic
// clock; it is at least 1 so that a due time made from it is never 0.
func (s *Session) sinceStart() time.Duration {
	return max(time.Since(epoch)-s.start, 1)
}

// rearmClockLocked sets the timer to the earliest due time, or stops it
// when nothing is due. s.mu held.
func (s *Session) rearmClockLocked() {
	c := &s.clock
	var next time.Duration
	for _, t := range [...]time.Duration{c.ping, c.notice, c.expiry} {
		if t != 0 && (next == 0 || t < next) {
			next = t
		}
	}
	switch {
	case next == 0:
		if c.timer != nil {
			c.timer.Stop()
		}
	case c.timer == nil:
		c.timer = time.AfterFunc(next-s.sinceStart(), s.tick)
	default:
		c.timer.Reset(next - s.sinceStart())
	}
}

// tick runs on the timer's goroutine: it does what is due and re-arms.
func (s *Session) tick() {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	c := &s.clock
	now := s.sinceStart()
	due := func(t *time.Duration) bool {
		if *t == 0 || *t > now {
			return false
		}
		*t = 0
		return true
	}
	ping, notice, expired := due(&c.ping), due(&c.notice), due(&c.expiry)
	s.rearmClockLocked()
	// Both under s.mu, with both claims checks: a refresh stores its
	// token (setClaims) and then sets its times and queues its reply
	// under s.mu (armExpiry, send). So the old token's expiry never closes
	// a session whose refresh was stored, and its notice, when sent,
	// precedes the refresh's reply.
	if (expired || notice) && c.claims != nil && s.Claims() == c.claims && s.reason == nil {
		if expired {
			s.env.Metrics.AuthFailures.WithLabelValues(string(auth.ReasonExpired)).Inc()
			s.closeLocked(protocol.Unauthenticated("token expired"))
		} else {
			secs := int(time.Until(c.claims.ExpiresAt).Round(time.Second) / time.Second)
			s.q.pushControl(s.info.Mode.Expiring(max(secs, 0)))
			s.kickLocked()
		}
	}
	s.mu.Unlock()
	if ping {
		s.ping() // returns at once when the session is closing
	}
}

// armExpiry sets the expiring notice and the expiry for c, the session's
// token from now on (first authentication or refresh), replacing the
// previous token's: the session is closed with 4001 when c expires,
// unless a refresh replaces it first.
func (s *Session) armExpiry(c *auth.Claims) {
	// A token may expire centuries ahead ("never": exp in the year 9999,
	// which time.Until caps at about 292 years); capped, so that the due
	// times below cannot overflow.
	left := min(time.Until(c.ExpiresAt), farFuture)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	now := s.sinceStart()
	s.clock.claims = c
	s.clock.notice = 0
	if n := left - s.opts.ExpiringNotice; n > 0 {
		s.clock.notice = now + n
	}
	s.clock.expiry = max(now+left+s.env.Verifier.Leeway(), 1)
	s.rearmClockLocked()
}

// disarmExpiryLocked clears the token's notice and expiry (teardown: the
// connection is ending for another reason). s.mu held.
func (s *Session) disarmExpiryLocked() {
	s.clock.notice, s.clock.expiry, s.clock.claims = 0, 0, nil
	s.rearmClockLocked()
}

// schedulePing sets the next ping PingInterval from now.
func (s *Session) schedulePing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.clock.ping = s.sinceStart() + s.opts.PingInterval
	s.rearmClockLocked()
}
