// Package history reads a room's stored events back from the EVENTS stream:
// for resuming a subscription after `since`, for repairing a gap in a
// room's live feed, and for telling whether events a client has not seen
// are gone from the stream.
//
// Reads are JetStream message gets ("next message of this subject at or
// after sequence N"): stateless on the server, one request per event,
// answered by the stream's leader. The EVENTS stream does not allow direct
// gets, which any replica may answer: a replica behind the leader would
// answer "not found" for an event just stored, and the replay or repair
// would skip it for good.
//
// A Store keeps at most Options.MaxInFlight requests in flight; the others
// wait their turn. A drained node's thousands of clients resuming on the
// other nodes would otherwise send the stream's leader as many requests at
// once, and a NATS server's JetStream API queue drops every pending
// request when it overflows. Reads that other work waits on go through the
// Store's Priority view instead, which does not queue.
//
// A Store also keeps, per room, the consecutive events its Range calls
// read (cache.go), so that the clients of a drained node resuming one room
// read each event from the stream once between them. The Priority view
// reads every event from the stream.
//
// Ownership: a Store starts no goroutine; its state (the stream's handle,
// the cache) is guarded by its own locks and safe for concurrent use.
package history

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventedge/eventedge/proto/events"
)

// DefaultMaxInFlight is Options.MaxInFlight's default.
const DefaultMaxInFlight = 64

// Options configures a Store. Zero fields take their defaults.
type Options struct {
	// MaxInFlight is how many requests the Store has in flight at once
	// (a message get, the stream's info), not counting its Priority
	// view's; more wait for a turn until their context ends. A NATS
	// server's JetStream API queue holds 10,000 requests by default and
	// drops every pending one when it overflows: keep the nodes' sum,
	// plus the rooms they create at once, well below that. Default
	// DefaultMaxInFlight.
	MaxInFlight int
	// Waiting, when set, counts the requests waiting for a turn.
	Waiting prometheus.Gauge
}

// Store reads the EVENTS stream. Safe for concurrent use.
type Store struct {
	js      jetstream.JetStream
	turns   chan struct{}    // a token per request in flight; nil: no bound (Priority)
	waiting prometheus.Gauge // nil: not counted
	cache   *cache           // nil: Range reads every event (Priority)
	handle  *handle          // shared with the Priority view
}

type handle struct {
	mu sync.Mutex
	st jetstream.Stream // guarded by mu: the stream's handle, nil until first fetched
}

// New returns a Store reading through js.
func New(js jetstream.JetStream, opts Options) *Store {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	return &Store{js: js, turns: make(chan struct{}, opts.MaxInFlight), waiting: opts.Waiting, cache: newCache(), handle: &handle{}}
}

// Priority returns a view of s whose requests neither wait for a turn nor
// take one, and whose Range reads every event from the stream (no cache):
// for reads that other work waits on, such as a room's live path (its gap
// repairs and re-checks, and the position read when the room is
// created). Its callers bound their concurrency themselves (the hub: a
// read per shard goroutine, one per room being created, and up to 16
// ResyncAll lookups after a reconnect).
func (s *Store) Priority() *Store {
	return &Store{js: s.js, handle: s.handle}
}

// do makes the request f once a turn is free, or returns ctx's error.
func (s *Store) do(ctx context.Context, f func() error) error {
	if s.turns == nil {
		return f()
	}
	select {
	case s.turns <- struct{}{}:
	default:
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
	defer func() { <-s.turns }()
	return f()
}

// wait takes a turn once one is free, counted as waiting meanwhile.
func (s *Store) wait(ctx context.Context) error {
	if s.waiting != nil {
		s.waiting.Inc()
		defer s.waiting.Dec()
	}
	select {
	case s.turns <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stream returns the EVENTS stream's handle. It is fetched once (a stream
// info request) and kept, so that the thousands of reads of resumes after a
// drain, or of every room re-checked after a reconnect, do not pay an info
// request each. Its message gets address the stream by name and reach a
// recreated stream too. Check asks for the stream's current state, which
// also refreshes the handle's copy of the config: the gets follow the
// allow-direct setting as last read (the package doc says why it is off).
// A failed fetch is not kept: the next call tries again.
func (s *Store) stream(ctx context.Context) (jetstream.Stream, error) {
	h := s.handle
	h.mu.Lock()
	st := h.st
	h.mu.Unlock()
	if st != nil {
		return st, nil
	}
	err := s.do(ctx, func() (err error) {
		st, err = s.js.Stream(ctx, events.StreamName)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.StreamName, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.st == nil {
		h.st = st
	}
	return h.st, nil
}

// Last returns the sequence of the last stored event on subject, 0 when
// the subject holds none.
func (s *Store) Last(ctx context.Context, subject string) (uint64, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return 0, err
	}
	var m *jetstream.RawStreamMsg
	err = s.do(ctx, func() (err error) {
		m, err = st.GetLastMsgForSubject(ctx, subject)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last of %s: %w", subject, err)
	}
	return m.Sequence, nil
}

// Range calls fn, in ascending order, for every stored event on subject
// with after < seq <= upTo. It stops at the first error fn returns. A
// Store (not its Priority view) keeps the events it reads per subject and
// serves the next Range of the same events from them (see cache).
func (s *Store) Range(ctx context.Context, subject string, after, upTo uint64, fn func(*jetstream.RawStreamMsg) error) error {
	if upTo <= after {
		return nil
	}
	st, err := s.stream(ctx)
	if err != nil {
		return err
	}
	var rd reading
	for p := after; p < upTo; {
		m, err := s.next(ctx, st, subject, p, &rd)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s after %d: %w", subject, p, err)
		}
		if m.Sequence > upTo {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		p = m.Sequence
	}
	return nil
}

// reading is what one Range read from the stream outside the cache's
// chain: consecutive events of the subject from position from on (nothing
// of the subject between from and the first, nor between two of them),
// read while the cache was at generation gen; joined to the chain when
// they reach it.
type reading struct {
	from  uint64
	gen   uint64
	msgs  []*jetstream.RawStreamMsg
	bytes int
}

// next returns the subject's first stored event after p: from the cache
// when it holds it, else read from the stream (and kept in the cache).
func (s *Store) next(ctx context.Context, st jetstream.Stream, subject string, p uint64, rd *reading) (*jetstream.RawStreamMsg, error) {
	if s.cache == nil {
		return s.get(ctx, st, subject, p)
	}
	for {
		m, ch := s.cache.next(subject, p)
		if m != nil {
			rd.reset()
			return m, nil
		}
		if ch == nil {
			break // p is before the chain
		}
		// p is the chain's end: one reader extends it, the others take its event.
		rd.reset()
		select {
		case ch.fetch <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		m, current := s.cache.peek(subject, ch, p)
		if !current { // replaced or dropped while we waited: look again
			<-ch.fetch
			continue
		}
		if m != nil { // read by another meanwhile
			<-ch.fetch
			return m, nil
		}
		m, err := s.get(ctx, st, subject, p)
		if err == nil {
			s.cache.extend(subject, ch, p, m)
		}
		<-ch.fetch
		return m, err
	}
	// p is before the chain: read, and join the chain once the reads reach it.
	gen := s.cache.generation()
	m, err := s.get(ctx, st, subject, p)
	if err != nil {
		return nil, err
	}
	if n := len(rd.msgs); n > 0 && (rd.msgs[n-1].Sequence != p || rd.gen != gen) {
		rd.reset() // the reads so far do not run on to this one
	}
	if len(rd.msgs) == 0 {
		rd.from, rd.gen = p, gen
	}
	if len(rd.msgs) < cacheRunMsgs && rd.bytes+msgBytes(m) <= cacheRunBytes {
		rd.msgs = append(rd.msgs, m)
		rd.bytes += msgBytes(m)
		if s.cache.join(subject, rd.gen, rd.from, rd.msgs) {
			rd.reset()
		}
	} else {
		rd.reset() // too long to keep: the chain is not joined from here
	}
	return m, nil
}

func (rd *reading) reset() { rd.msgs, rd.bytes = nil, 0 }

// get reads the subject's first stored event after p from the stream.
func (s *Store) get(ctx context.Context, st jetstream.Stream, subject string, p uint64) (*jetstream.RawStreamMsg, error) {
	var m *jetstream.RawStreamMsg
	err := s.do(ctx, func() (err error) {
		m, err = st.GetMsg(ctx, p+1, jetstream.WithGetMsgSubject(subject))
		return err
	})
	return m, err
}

// Gap says why a client's position cannot be resumed from.
type Gap string

// Gaps.
const (
	// NoGap: every event of the subject after the position is still stored.
	NoGap Gap = ""
	// Truncated: events of the subject after the position may have been
	// removed (by age or by the per-subject limit).
	Truncated Gap = "history_truncated"
	// Recreated: the position is beyond the stream's last sequence, so the
	// stream was recreated (or the position is not one of this stream's).
	Recreated Gap = "stream_recreated"
)

// Position describes where a resume from `since` stands.
type Position struct {
	// Last is the subject's last stored sequence (0: none).
	Last uint64
	// Gap is NoGap when every event after since is still stored.
	Gap Gap
}

// Check decides whether a client that has every event of subject up to
// since can be resumed, and returns the subject's last sequence.
//
// Events leave the stream in two ways. Age removes the oldest messages of
// the whole stream, so after it every sequence below the stream's first is
// gone: a since below that (other than 0) may have lost events, and since it
// cannot be told whether any of them were this subject's, the answer is
// Truncated. The per-subject limit removes the subject's oldest messages; it
// has acted only when the subject holds its limit, and then only on
// sequences below the subject's first stored one: a since below that is
// Truncated too. Otherwise the subject's next event after since may simply
// be much later (nothing of the room was published in between), and resuming
// is safe. since == 0 asks for the whole retained history and never gaps.
func (s *Store) Check(ctx context.Context, subject string, since uint64) (Position, error) {
	st, err := s.stream(ctx)
	if err != nil {
		return Position{}, err
	}
	var info *jetstream.StreamInfo
	err = s.do(ctx, func() (err error) {
		info, err = st.Info(ctx, jetstream.WithSubjectFilter(subject))
		return err
	})
	if err != nil {
		return Position{}, fmt.Errorf("stream info for %s: %w", subject, err)
	}
	if s.cache != nil {
		s.cache.streamCreated(info.Created)
	}
	last, err := s.Last(ctx, subject)
	if err != nil {
		return Position{}, err
	}
	pos := Position{Last: last}
	switch {
	case since == 0:
	case since > info.State.LastSeq:
		pos.Gap = Recreated
	case since+1 < info.State.FirstSeq:
		pos.Gap = Truncated
	case info.Config.MaxMsgsPerSubject > 0 && int64(info.State.Subjects[subject]) >= info.Config.MaxMsgsPerSubject:
		first, err := s.get(ctx, st, subject, 0) // the subject's first stored event
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return Position{}, fmt.Errorf("first of %s: %w", subject, err)
		}
		if first != nil && first.Sequence > since+1 {
			pos.Gap = Truncated
		}
	}
	return pos, nil
}
