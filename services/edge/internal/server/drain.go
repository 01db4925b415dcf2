package server

import (
	"context"
	"math"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// drainInterval is the time between two batches of closes in a drain.
const drainInterval = 100 * time.Millisecond

// Drain refuses new connections (503, draining), closes every session with
// 1012 (service restart) in batches spread evenly over spread, and waits for
// the sessions to end or ctx to expire. Every drainInterval it closes
// ⌈n / (spread / drainInterval)⌉ of the n sessions open when it began, so the
// clients reach the other nodes as a steady stream instead of one wave (a
// few sessions finish sooner than spread). spread <= 0 closes them all at
// once. If ctx expires while batches remain, the rest are closed at once and
// ctx's error is returned. eventedge_drain_remaining counts the sessions not
// yet told to close.
func (s *Server) Drain(ctx context.Context, spread time.Duration) error {
	s.mu.Lock()
	s.closing = true
	n := len(s.sessions)
	s.mu.Unlock()

	batch := n
	if batches := int(spread / drainInterval); batches > 1 {
		batch = int(math.Ceil(float64(n) / float64(batches)))
	}
	tick := time.NewTicker(drainInterval)
	defer tick.Stop()
	for {
		left := s.closeBatch(batch)
		s.env.Metrics.DrainRemaining.Set(float64(left))
		if left == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			batch = math.MaxInt // out of time: the rest at once
		}
	}

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown is Drain without spreading: every session is closed at once.
func (s *Server) Shutdown(ctx context.Context) error { return s.Drain(ctx, 0) }

// closeBatch tells up to size sessions that have not been told yet to close
// with 1012 and returns how many remain untold. Sessions that ended on their
// own are no longer counted.
func (s *Server) closeBatch(size int) (left int) {
	var batch []*session.Session
	s.mu.Lock()
	for sess, told := range s.sessions {
		switch {
		case told:
		case len(batch) < size:
			s.sessions[sess] = true
			batch = append(batch, sess)
		default:
			left++
		}
	}
	s.mu.Unlock()
	for _, sess := range batch {
		sess.Close(protocol.ReasonServiceRestart)
	}
	return left
}
