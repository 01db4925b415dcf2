package session

import (
	"runtime"
	"sync"
)

// Flusher writes the frames of its share of a node's sessions in rounds.
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
// guaranteed), takes every ready session and writes each one's next frame
// itself, as one round (Session.writeInline). It never waits for a socket:
// a frame the socket does not take whole is finished by a writer goroutine
// of that session's own, which also writes the rest of its queue, so one
// slow client does not hold the round. A session with more queued after its
// frame goes to the next round. Events that arrive while a round is being
// written wait for the next round: a round's length is the time the node
// needs to write to every client once, so the busier the node, the more
// events each frame carries. When the node is idle a round starts at once:
// an event's latency does not change.
//
// Writing on one goroutine rather than starting a goroutine per session
// and round saves the goroutine's start, scheduling and exit: measured at
// L1 (docs/benchmarks.md), the edge's CPU per frame outside the write
// system call fell from 7.9 to 5.3 µs. A node runs one Flusher per
// processor (Env.Flushers), each with its share of the sessions, so the
// writes of a node with several cores still run in parallel.
//
// Goroutines: Run, started by the node and ended by Close; the writer
// goroutines it hands frames to are the sessions' own (write.go).
type Flusher struct {
	mu     sync.Mutex
	ready  []*Session // guarded by mu: sessions to write in the next round
	spare  []*Session // guarded by mu: the previous round's slice, for reuse
	closed bool       // guarded by mu: Run ended; writers start directly

	raw  *rawWriter    // owned by Run: the rounds' non-blocking writes
	wake chan struct{} // cap 1: ready went from empty to non-empty
	quit chan struct{}
	done chan struct{}
}

// NewFlusher returns a Flusher; call Run on a goroutine of its own.
func NewFlusher() *Flusher {
	return &Flusher{
		raw:  newRawWriter(),
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// add queues s for the next round. It reports false once the Flusher is
// closed: the caller starts the writer itself.
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

// Run writes rounds until Close.
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
				s.startQueued()
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
		for _, s := range round {
			s.writeInline(f)
		}
		clear(round)
		f.mu.Lock()
		f.spare = round
		f.mu.Unlock()
	}
}

// Close stops Run after its round and starts the writers of the sessions
// still queued. Later writers start directly.
func (f *Flusher) Close() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
	<-f.done
}
