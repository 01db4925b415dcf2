package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/proto/room"
)

// FollowOptions configures a Follower. Zero fields take defaults.
type FollowOptions struct {
	// Stream is the REVOCATIONS stream's configuration, which the
	// follower ensures (creates, or updates to it) each time it starts
	// reading. Its MaxAge should be the List's TTL. Default: the zero
	// value, revoke's defaults (24h, one replica, file storage).
	Stream revoke.StreamConfig
	// CheckInterval is how often the stream is looked up: one deleted is
	// created again, and one recreated is read again from its start.
	// Default 5s.
	CheckInterval time.Duration
	// RetryInterval is the pause after a failure to ensure the stream or
	// to start reading it. Default 500ms.
	RetryInterval time.Duration
	// OnLoaded, when set, is called once, when the follower has read the
	// stored revocations (and marked its List loaded). Default none.
	OnLoaded func()
}

// WithDefaults returns o with every zero field set to its default.
func (o FollowOptions) WithDefaults() FollowOptions {
	if o.CheckInterval <= 0 {
		o.CheckInterval = 5 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 500 * time.Millisecond
	}
	return o
}

// Apply is called for every valid revocation read from the stream, in
// stream order, with the time the stream stored it; replayed and live
// revocations alike. It is called after the revocation was added to the
// List, from the consumer's goroutine: one at a time, except that a
// consumer still stopping (see Follower) may finish a call while the next
// one starts. It must be safe for concurrent use.
type Apply func(m revoke.Message, rooms []room.Room, at time.Time, replay bool)

// Follower reads the REVOCATIONS stream from its start with an ordered
// consumer, adds each revocation to a List and calls Apply. It is ready
// (Ready returns nil, and the List is marked loaded) once it has read
// every revocation the stream held when it started, or those of them that
// have not aged out since. After a disconnection from NATS the ordered
// consumer resumes after the last revocation read, so those published in
// between are applied then (until they are, the node lets clients in:
// see Hits for the connections made meanwhile). A consumer that stalls
// (errStalled) is replaced by one starting after the last revocation
// handled. A stream deleted and created
// again is read again from its start (applying a revocation twice changes
// nothing).
//
// Goroutines: Follow starts run, which owns the consumer and ends in
// Close. The jetstream library's consume goroutine calls handle for the
// generation (one consumer) that started it. run stops a generation's
// consumer before it starts the next one or returns, but the library may
// finish a call of handle after that: each generation keeps its own
// progress, and the List and Apply are safe for concurrent use.
type Follower struct {
	// static after Follow
	js    jetstream.JetStream
	list  *List
	apply Apply
	opts  FollowOptions
	log   zerolog.Logger
	ctx   context.Context // canceled by Close: ends a NATS request in flight
	stop  context.CancelFunc
	done  chan struct{}
	once  sync.Once

	caughtUp atomic.Bool
	gen      atomic.Pointer[generation] // the current one; nil before the first
	lastErr  atomic.Pointer[error]
	invalid  atomic.Uint64 // invalid messages skipped
}

// generation is one ordered consumer's reading of the stream.
type generation struct {
	target  uint64        // the stream's last sequence when it started: caught up there
	lastSeq atomic.Uint64 // stream sequence of the last message handled
}

// Follow starts following the REVOCATIONS stream on js into list.
func Follow(js jetstream.JetStream, list *List, apply Apply, opts FollowOptions, log zerolog.Logger) *Follower {
	ctx, stop := context.WithCancel(context.Background())
	f := &Follower{
		js: js, list: list, apply: apply, opts: opts.WithDefaults(),
		log: log.With().Str("component", "revocations").Logger(),
		ctx: ctx, stop: stop, done: make(chan struct{}),
	}
	go f.run()
	return f
}

// Ready returns nil once every revocation the stream held when the
// follower started reading it has been applied, else why not.
func (f *Follower) Ready() error {
	if f.caughtUp.Load() {
		return nil
	}
	if err := f.lastErr.Load(); err != nil {
		return fmt.Errorf("revocations: %w", *err)
	}
	if g := f.gen.Load(); g != nil {
		return fmt.Errorf("revocations: reading stream %s (at sequence %d of %d)", revoke.StreamName, g.lastSeq.Load(), g.target)
	}
	return fmt.Errorf("revocations: reading stream %s", revoke.StreamName)
}

// Invalid returns how many invalid messages the follower skipped (each is
// logged when skipped).
func (f *Follower) Invalid() uint64 { return f.invalid.Load() }

// Close stops following and waits for the consumer to stop, at most 5 s
// (stopWait): a consumer that takes longer, because its reset is waiting
// on NATS, is left to stop by itself. Safe to call more than once.
func (f *Follower) Close() {
	f.once.Do(f.stop)
	<-f.done
}

func (f *Follower) fail(err error) {
	f.lastErr.Store(&err)
}

// run ensures the stream and reads it, again after a recreation, until
// Close.
func (f *Follower) run() {
	defer close(f.done)
	from := uint64(0) // where the next generation starts: 0, the stream's start
	for {
		created, next, err := f.follow(from)
		if err == nil || f.ctx.Err() != nil {
			return // closed
		}
		f.fail(err)
		switch {
		case errors.Is(err, errStalled):
			from = next
			f.log.Warn().Err(err).Uint64("from", from).Msg("reading revocations with a new consumer")
		case !created.IsZero():
			from = 0
			f.log.Warn().Err(err).Msg("reading revocations again from the stream's start")
		default:
			f.log.Warn().Err(err).Msg("cannot read revocations; retrying")
		}
		if !f.sleep(f.opts.RetryInterval) {
			return
		}
	}
}

// sleep waits d; false when the follower is closed first.
func (f *Follower) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-f.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// errRecreated ends a generation whose stream was deleted and created
// again.
var errRecreated = errors.New("stream was recreated")

// errStalled ends a generation whose consumer delivers nothing while the
// stream holds revocations it has not handled: the ordered consumer did
// not recover (seen after a NATS node holding it was killed in a
// cluster). The next generation starts after the last one handled.
var errStalled = errors.New("revocation consumer stalled")

// stallChecks is how many checks in a row (CheckInterval apart) may find
// stored revocations not handled, and no progress, before the consumer is
// replaced.
const stallChecks = 3

// follow is one generation: ensure the stream, read it from sequence
// from (0: its start), and watch it until it is recreated (errRecreated,
// with the creation time it had), its consumer stalls (errStalled, with
// the sequence to go on from) or the follower closes (nil).
func (f *Follower) follow(from uint64) (time.Time, uint64, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	st, err := revoke.EnsureStream(ctx, f.js, f.opts.Stream)
	if err != nil {
		return time.Time{}, from, err
	}
	info := st.CachedInfo()
	created := info.Created
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from}
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return time.Time{}, from, fmt.Errorf("consumer on %s: %w", revoke.StreamName, err)
	}
	g := &generation{target: info.State.LastSeq}
	if from > 0 {
		g.lastSeq.Store(from - 1) // handled by an earlier generation
	}
	f.gen.Store(g)
	f.lastErr.Store(nil) // reading now: Ready reports the progress, not an old error
	if info.State.Msgs == 0 {
		f.markCaughtUp("empty stream", g)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { f.handle(g, msg) }, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		f.log.Warn().Err(err).Msg("revocation consumer (it recreates itself)")
	}))
	if err != nil {
		return time.Time{}, from, fmt.Errorf("consume %s: %w", revoke.StreamName, err)
	}
	// stop stops the consumer. Stop can wait for the ordered consumer's
	// reset loop (it retries while NATS is away), so the wait is bounded:
	// at shutdown, or before a new generation, a consumer still stopping
	// is left to finish by itself.
	stop := func() {
		go cc.Stop()
		t := time.NewTimer(stopWait)
		defer t.Stop()
		select {
		case <-cc.Closed():
		case <-t.C:
			f.log.Warn().Dur("waited", stopWait).Msg("revocation consumer still stopping; going on")
		}
	}
	t := time.NewTicker(f.opts.CheckInterval)
	defer t.Stop()
	failed := 0 // checks failed in a row
	stalls, seen := 0, g.lastSeq.Load()
	for {
		select {
		case <-f.ctx.Done():
			stop()
			return created, from, nil
		case <-t.C:
		}
		now, pending, err := f.check(g)
		if err != nil {
			// NATS away: the ordered consumer resumes by itself. A check
			// that keeps failing (no right to look the stream up) would
			// hide a recreated stream: said at warn from the third.
			failed++
			ev := f.log.Debug()
			if failed >= 3 {
				ev = f.log.Warn()
			}
			ev.Err(err).Int("failures", failed).Msg("revocation stream check failed")
			continue
		}
		failed = 0
		if !now.Equal(created) {
			stop()
			return created, 0, fmt.Errorf("%w (was %s, now %s)", errRecreated, created.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
		}
		done := g.lastSeq.Load()
		if pending && done == seen {
			stalls++
		} else {
			stalls = 0
		}
		seen = done
		if stalls >= stallChecks {
			stop()
			return created, done + 1, fmt.Errorf("%w: no revocation handled in %d checks, the stream holds some after sequence %d", errStalled, stalls, done)
		}
	}
}

// check looks the stream up, creating it again when it is gone, and
// returns its creation time, and whether it stores a revocation after the
// last one g handled. It also marks the follower caught up when every
// revocation up to g's target has aged out of the stream before it was
// delivered (the stream's first sequence is past the target).
func (f *Follower) check(g *generation) (time.Time, bool, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	st, err := f.js.Stream(ctx, revoke.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = revoke.EnsureStream(ctx, f.js, f.opts.Stream)
	}
	if err != nil {
		return time.Time{}, false, err
	}
	info := st.CachedInfo()
	if !f.caughtUp.Load() && (info.State.FirstSeq > g.target || info.State.Msgs == 0) {
		f.markCaughtUp("the rest aged out", g)
	}
	pending := false
	if done := g.lastSeq.Load(); info.State.Msgs > 0 && info.State.LastSeq > done {
		// The last sequence stays after its message is removed: pending only
		// if the last stored revocation is after the last one handled.
		m, err := st.GetLastMsgForSubject(ctx, revoke.Subject)
		pending = err == nil && m.Sequence > done
	}
	return info.Created, pending, nil
}

// handle applies one stored revocation read by generation g. Called by
// the consume goroutine.
func (f *Follower) handle(g *generation, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		f.log.Warn().Err(err).Msg("revocation without metadata")
		return
	}
	replay := !f.caughtUp.Load()
	m, rooms, err := revoke.Parse(msg.Data())
	if err != nil {
		f.invalid.Add(1)
		f.log.Warn().Err(err).Uint64("seq", meta.Sequence.Stream).Msg("ignored an invalid revocation")
	} else {
		f.list.Add(m.UserID, rooms, meta.Timestamp)
		if f.apply != nil {
			f.apply(m, rooms, meta.Timestamp, replay)
		}
	}
	g.lastSeq.Store(meta.Sequence.Stream)
	// Only the current generation's progress counts: an old consumer that
	// is still stopping may read a recreated stream from its old position.
	if f.gen.Load() == g && (meta.Sequence.Stream >= g.target || meta.NumPending == 0) {
		f.markCaughtUp("read to the end", g)
	}
}

// markCaughtUp makes the follower's List loaded and the follower ready,
// once, in that order: a node that reports ready lets clients in.
func (f *Follower) markCaughtUp(why string, g *generation) {
	f.list.setLoaded()
	if !f.caughtUp.Swap(true) {
		f.lastErr.Store(nil)
		if f.opts.OnLoaded != nil {
			f.opts.OnLoaded()
		}
		f.log.Info().Str("why", why).Uint64("seq", g.lastSeq.Load()).Msg("revocations loaded")
	}
}

// stopWait bounds the wait for a consumer to stop.
const stopWait = 5 * time.Second
