package session

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Flusher starts the writers of a node's sessions in rounds.
//
// Without it, the fan-out starts a session's writer the moment the
// session's queue goes from empty to non-empty. Under load that starves the
// node's intake: one event makes thousands of writers runnable, and the Go
// scheduler runs them all — each a frame write of several microseconds —
// before the goroutines that read NATS and fan out the next events get the
// processor again. Each frame then carries one or two events, the node
// spends its time on per-frame costs, and it falls behind the stream.
//
// With it, the fan-out only marks sessions ready. One goroutine (Run)
// repeatedly yields the processor once (runtime.Gosched: goroutines already
// runnable — the NATS reader, the fan-out — may run first; nothing is
// guaranteed), takes every ready session and starts their writers
// as one round, and waits until each writer of the round has started (a
// writer blocked on a full socket does not hold the next round: it started).
// Events that arrive while a round is being written wait for the next
// round: a round's length is the time the node needs to write to every
// client once, so the busier the node, the more events each frame carries.
// When the node is idle a round starts at once: an event's latency does not
// change.
//
// Goroutines: Run, started by the node and ended by Close; the writers it
// starts are the sessions' own (write.go).
type Flusher struct {
	mu     sync.Mutex
	ready  []*Session // guarded by mu: writers to start in the next round
	spare  []*Session // guarded by mu: the previous round's slice, for reuse
	closed bool       // guarded by mu: Run ended; writers start directly

	wake    chan struct{} // cap 1: ready went from empty to non-empty
	started chan struct{} // cap 1: the round's last writer started
	pending atomic.Int64  // writers of the current round not yet started
	quit    chan struct{}
	done    chan struct{}
}

// NewFlusher returns a Flusher; call Run on a goroutine of its own.
func NewFlusher() *Flusher {
	return &Flusher{
		wake:    make(chan struct{}, 1),
		started: make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// add queues s's writer for the next round. It reports false once the
// Flusher is closed: the caller starts the writer itself.
func (f *Flusher) add(s *Session) bool {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	f.ready = append(f.ready, s)
	first := len(f.ready) == 1
	f.mu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// writerStarted is called by each writer of a round as it starts.
func (f *Flusher) writerStarted() {
	if f.pending.Add(-1) == 0 {
		f.started <- struct{}{}
	}
}

// Run starts rounds until Close.
func (f *Flusher) Run() {
	defer close(f.done)
	for {
		select {
		case <-f.wake:
		case <-f.quit:
			f.mu.Lock()
			f.closed = true
			rest := f.ready
			f.ready = nil
			f.mu.Unlock()
			for _, s := range rest {
				s.startQueued(nil)
			}
			return
		}
		// Yield once: the NATS reader and the fan-out, if runnable, may
		// queue more events for the sessions about to be written.
		runtime.Gosched()
		f.mu.Lock()
		round := f.ready
		f.ready = f.spare[:0]
		f.mu.Unlock()
		if len(round) == 0 {
			continue
		}
		f.pending.Store(int64(len(round)) + 1) // +1: this loop, below
		for _, s := range round {
			if !s.startQueued(f) {
				f.pending.Add(-1) // its writer started otherwise (the session is closing)
			}
		}
		f.writerStarted() // drop this loop's +1: the round may end now
		<-f.started
		clear(round)
		f.mu.Lock()
		f.spare = round
		f.mu.Unlock()
	}
}

// Close stops Run after its round and starts the writers still queued.
// Later writers start directly.
func (f *Flusher) Close() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
	<-f.done
}
