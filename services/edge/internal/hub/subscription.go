package hub

import (
	"context"
	"sync"

	"golang.org/x/time/rate"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// Sink is the receiving end of a subscription: a client session.
type Sink interface {
	// Deliver queues the events of batch for the client, in order (one
	// room's, ascending seq). It must not block, and must not keep batch
	// (the hub reuses it) — the *Outbound values are the sink's to keep.
	Deliver(batch ...*Outbound)
	// DeliverWait queues o, waiting while the client's queue is more than
	// half full. Replays use it: they may produce events faster than a
	// client takes them, and unlike live fan-out they can wait.
	DeliverWait(ctx context.Context, o *Outbound) error
	// Reset queues a reset message of room (reason, and the seq the room
	// continues after), in the room's order: after the room's events
	// already queued, or, with purge, instead of them (their seqs belong to
	// a stream that no longer exists).
	Reset(room, reason string, seq uint64, purge bool)
	// Claims returns the client's current claims.
	Claims() *auth.Claims
}

// maxPending bounds the live events a catching-up subscription holds back
// while its replay runs. Past it, they are dropped and the replay simply
// goes on further: nothing is lost, the events are read from the stream.
const maxPending = 4096

// Subscription is one client's membership of one room. Create it with
// NewSubscription; the hub and the session's replay read it concurrently,
// so all its mutable state is guarded by mu.
type Subscription struct {
	// static after construction (low: set by Join before the first event)
	room     room.Room
	name     string
	sink     Sink
	low      *rate.Limiter // the room policy's low-priority rate; nil: none
	lowDrops func()        // counts an event dropped by low; set with low

	mu         sync.Mutex
	events     []string    // empty: every type
	pos        uint64      // every event of the room up to pos has been delivered or filtered
	catchingUp bool        // a replay runs; live events go to pending
	permOK     bool        // the sink's claims have permName
	pending    []*Outbound // live events held during the replay, ascending
	overflow   bool        // pending overflowed: the replay must read further
	lowDropped uint64      // low-priority events dropped by the room's rate (low)
	// permName is the last required permission allows asked the sink's
	// claims about ("": none since the claims changed), permOK the answer:
	// a room's events require one or two permissions, and asking the
	// claims per event cost every delivery the client's cold cache lines
	// (its session, token and claims). ClaimsChanged forgets it.
	permName string
}

// NewSubscription returns a subscription of sink to r receiving only the
// listed event types (all when empty). With resume set, the subscription
// starts catching up: live events are held until CatchUp has replayed the
// stored ones.
func NewSubscription(r room.Room, sink Sink, eventTypes []string, resume bool) *Subscription {
	return &Subscription{room: r, name: r.String(), sink: sink, events: eventTypes, catchingUp: resume}
}

// Room returns the subscribed room.
func (s *Subscription) Room() room.Room { return s.room }

// Position returns the sequence up to which every event of the room has
// been delivered to (or filtered for) the subscriber.
func (s *Subscription) Position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// SetEvents replaces the event-type filter.
func (s *Subscription) SetEvents(eventTypes []string) {
	s.mu.Lock()
	s.events = eventTypes
	s.mu.Unlock()
}

// ClaimsChanged makes the subscription ask the sink's claims again: call
// it once the sink's claims have changed (a token refresh), so that the
// next event is filtered by the new ones.
func (s *Subscription) ClaimsChanged() {
	s.mu.Lock()
	s.permName = ""
	s.mu.Unlock()
}

// allows reports whether the subscriber may receive o. Caller holds mu.
func (s *Subscription) allows(o *Outbound) bool {
	if o.perm != "" {
		if o.perm != s.permName {
			s.permName, s.permOK = o.perm, s.sink.Claims().Has(o.perm)
		}
		if !s.permOK {
			return false
		}
	}
	if len(s.events) == 0 {
		return true
	}
	for _, t := range s.events {
		if t == o.Type {
			return true
		}
	}
	return false
}

// offer hands live (or repaired) events of the room to the subscription:
// batch is ascending in seq. The ones the subscriber receives are
// collected in each (scratch, returned for reuse) and handed to the sink
// in one Deliver; it returns how many. Called by the room's shard
// goroutine only, in ascending seq.
func (s *Subscription) offer(batch []*Outbound, each []*Outbound) (int, []*Outbound) {
	s.mu.Lock()
	defer s.mu.Unlock()
	each = each[:0]
	for _, o := range batch {
		if o.Seq <= s.pos {
			continue
		}
		if s.catchingUp {
			if len(s.pending) >= maxPending {
				s.pending, s.overflow = s.pending[:0], true
			}
			if !s.overflow {
				s.pending = append(s.pending, o)
			}
			continue
		}
		s.pos = o.Seq
		if !s.allows(o) {
			continue
		}
		if s.low != nil && o.Priority == pb.Priority_PRIORITY_LOW && o.Task == "" && !s.low.Allow() {
			s.lowDrops() // over the room's low-priority rate (progress is throttled per task instead)
			s.lowDropped++
			continue
		}
		each = append(each, o)
	}
	if len(each) > 0 {
		s.sink.Deliver(each...)
	}
	return len(each), each
}

// replayed hands a stored event read by the replay. It reports whether the
// event was delivered.
func (s *Subscription) replayed(ctx context.Context, o *Outbound) (bool, error) {
	s.mu.Lock()
	if o.Seq <= s.pos {
		s.mu.Unlock()
		return false, nil
	}
	s.pos = o.Seq
	ok := s.allows(o)
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, s.sink.DeliverWait(ctx, o)
}

// restart sets the position to seq even when it is lower: the stream was
// recreated and the old positions mean nothing.
func (s *Subscription) restart(seq uint64) {
	s.mu.Lock()
	s.pos = seq
	clear(s.pending)
	s.pending = s.pending[:0]
	s.mu.Unlock()
}

// resetTo sets the position to seq, also backwards (the client's position
// belonged to a recreated stream); held live events are kept.
func (s *Subscription) resetTo(seq uint64) {
	s.mu.Lock()
	s.pos = seq
	s.mu.Unlock()
}

// skipTo moves the position forward to seq without delivering what lies
// between (after a reset).
func (s *Subscription) skipTo(seq uint64) {
	s.mu.Lock()
	if seq > s.pos {
		s.pos = seq
	}
	s.mu.Unlock()
}

// drainPending ends catching up: the live events held during the replay
// are delivered (with the replay's back-pressure), then later ones flow
// directly. It returns false, still catching up, when held events had to be
// dropped: the caller must replay further from the stream first.
func (s *Subscription) drainPending(ctx context.Context) (bool, error) {
	for {
		s.mu.Lock()
		if s.overflow {
			clear(s.pending)
			s.pending, s.overflow = s.pending[:0], false
			s.mu.Unlock()
			return false, nil
		}
		if len(s.pending) == 0 {
			s.pending, s.catchingUp = nil, false
			s.mu.Unlock()
			return true, nil
		}
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, o := range batch {
			if _, err := s.replayed(ctx, o); err != nil {
				return false, err
			}
		}
	}
}
