package session

import (
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// clock is a session's one timer for what falls due over the
// connection's life: the next ping, the expiring notice before the token
// runs out, and the token's expiry. One runtime timer (and no closure per
// token) instead of three keeps an idle connection smaller (with two
// other changes, 0.8 KiB of heap less per connection: docs/benchmarks.md,
// optimisations).
//
// Guarded by Session.mu. Times are offsets from Session.start, on the
// monotonic clock; 0 means "not due". The timer is made by the first
// rearm, re-armed for the earliest due time whenever one changes, and
// stopped by Run's teardown, which also sets Session.done: a tick that
// fires after that does nothing. A tick may find nothing due (a Reset
// raced with its firing); it then only re-arms.
type clock struct {
	timer  *time.Timer
	ping   time.Duration // the next ping; 0 while one is in flight
	notice time.Duration // send expiring for claims
	expiry time.Duration // close with 4001 unless claims were replaced
	claims *auth.Claims  // the token notice and expiry belong to
}

// sinceStart is the time since the session started, on the monotonic
// clock; it is at least 1 so that a due time made from it is never 0.
func (s *Session) sinceStart() time.Duration {
	return max(time.Since(s.start), 1)
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
	claims := c.claims
	s.rearmClockLocked()
	s.mu.Unlock()

	// The claims checks: a refresh that replaced the token between the
	// timer firing and here has already set the new token's times.
	if expired && s.Claims() == claims {
		s.env.Metrics.AuthFailures.WithLabelValues(string(auth.ReasonExpired)).Inc()
		s.Close(protocol.Unauthenticated("token expired"))
	} else if notice && s.Claims() == claims {
		secs := int(time.Until(claims.ExpiresAt).Round(time.Second) / time.Second)
		s.send(s.info.Mode.Expiring(max(secs, 0)))
	}
	if ping {
		s.ping() // returns at once when the session is closing
	}
}

// armExpiry sets the expiring notice and the expiry for c, the session's
// token from now on (first authentication or refresh), replacing the
// previous token's: the session is closed with 4001 when c expires,
// unless a refresh replaces it first.
func (s *Session) armExpiry(c *auth.Claims) {
	left := time.Until(c.ExpiresAt)
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
