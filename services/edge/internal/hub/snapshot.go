package hub

import (
	"cmp"
	"slices"
	"strings"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/policy"
)

// What the admin API shows of the hub. Snapshots copy what they read under
// the locks that guard it and build their summaries after releasing them:
// a room's fan-out waits at most for a copy of its member list.

// NATS subscription states of a room (RoomSnapshot.State).
const (
	// StatePending: the room's first Join is still creating its NATS
	// subscription.
	StatePending = "pending"
	// StateSubscribed: the NATS subscription exists (while NATS is down the
	// client library keeps it and renews it on reconnect).
	StateSubscribed = "subscribed"
	// StateError: the NATS subscription could not be created (Error says
	// why); the room is removed when its joins give up.
	StateError = "error"
	// StateUnsubscribed: the subscription was closed (the room is being
	// torn down).
	StateUnsubscribed = "unsubscribed"
)

// RoomSnapshot describes one room of the node.
type RoomSnapshot struct {
	Name string
	// Subscribers is the number of local members. 0 for a room kept by its
	// policy's ttl after its last member left.
	Subscribers int
	// Permissions groups the members by their token's permissions (each
	// set sorted), most members first: who may see events that require a
	// permission.
	Permissions []Group
	// Filters groups the members by their event-type filter (empty: every
	// type), most members first.
	Filters []Group
	// State is the NATS subscription's: StatePending, StateSubscribed,
	// StateError or StateUnsubscribed; Error is set with StateError.
	State string
	Error string
	// RetryPending is set while a re-check of the room against the stream
	// (after a failed repair, a NATS slow consumer or an unknown position)
	// waits for its turn.
	RetryPending bool
	// LastSeq is the last stream sequence the room fanned out; Known is set
	// once it has been read from the stream (only then are gaps detected).
	LastSeq uint64
	Known   bool
	// Repairs counts the gaps repaired from the stream, RepairedEvents the
	// events read back for them, RepairFailures the repairs that could not
	// read the stream (retried). Since the room was created on this node.
	Repairs, RepairedEvents, RepairFailures uint64
	// Rule is the room's policy rule.
	Rule policy.Rule
}

// Group is a number of subscribers sharing Key: a sorted permission set or
// an event-type filter.
type Group struct {
	Key         []string
	Subscribers int
}

// SubscriptionSnapshot describes one subscription.
type SubscriptionSnapshot struct {
	Room string
	// Events is the event-type filter (a copy); empty: every type.
	Events []string
	// Position is the sequence up to which every event of the room has been
	// delivered to (or filtered for) the subscriber.
	Position uint64
	// CatchingUp is set while a resume replays stored events.
	CatchingUp bool
	// RoomRateDrops counts low-priority events dropped by the room policy's
	// lowEventsPerSecond for this subscriber.
	RoomRateDrops uint64
}

// Snapshot returns the subscription's current state. Safe for concurrent
// use; it takes the subscription's lock briefly.
func (s *Subscription) Snapshot() SubscriptionSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SubscriptionSnapshot{
		Room:          s.name,
		Events:        slices.Clone(s.events),
		Position:      s.pos,
		CatchingUp:    s.catchingUp,
		RoomRateDrops: s.lowDropped,
	}
}

// RoomSnapshots returns every room of the node sorted by name, or only the
// room named name when name is not empty (none when the node does not have
// it). Safe for concurrent use.
func (h *Hub) RoomSnapshots(name string) []RoomSnapshot {
	if name != "" { // one room: looked up, not found by walking them all
		r, err := room.Parse(name)
		if err != nil {
			return nil
		}
		h.mu.RLock()
		rs := h.rooms[r.LiveSubject()]
		h.mu.RUnlock()
		if rs == nil || rs.name != name {
			return nil
		}
		return []RoomSnapshot{rs.describe()}
	}
	var out []RoomSnapshot
	for _, rs := range h.snapshot() {
		out = append(out, rs.describe())
	}
	slices.SortFunc(out, func(a, b RoomSnapshot) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

func (rs *roomState) describe() RoomSnapshot {
	r := RoomSnapshot{
		Name:           rs.name,
		RetryPending:   rs.retry.Load(),
		LastSeq:        rs.lastSeq.Load(),
		Known:          rs.known.Load(),
		Repairs:        rs.repairs.Load(),
		RepairedEvents: rs.repaired.Load(),
		RepairFailures: rs.repairFailures.Load(),
		Rule:           rs.rule,
	}
	select {
	case <-rs.ready: // natsSub and err are written before ready is closed
		switch {
		case rs.err != nil:
			r.State, r.Error = StateError, rs.err.Error()
		case rs.natsSub != nil && rs.natsSub.IsValid():
			r.State = StateSubscribed
		default:
			r.State = StateUnsubscribed
		}
	default:
		r.State = StatePending
	}
	rs.mu.RLock()
	subs := make([]*Subscription, 0, len(rs.subs))
	for sub := range rs.subs {
		subs = append(subs, sub)
	}
	rs.mu.RUnlock()
	r.Subscribers = len(subs)
	perms := map[string]*Group{}
	filters := map[string]*Group{}
	for _, sub := range subs {
		var p []string
		if c := sub.sink.Claims(); c != nil {
			p = slices.Clone(c.Permissions)
			slices.Sort(p)
			p = slices.Compact(p)
		}
		count(perms, p)
		sub.mu.Lock()
		f := slices.Clone(sub.events)
		sub.mu.Unlock()
		slices.Sort(f)
		count(filters, f)
	}
	r.Permissions, r.Filters = sorted(perms), sorted(filters)
	return r
}

func count(groups map[string]*Group, key []string) {
	k := strings.Join(key, "\x00")
	if g := groups[k]; g != nil {
		g.Subscribers++
		return
	}
	if key == nil {
		key = []string{}
	}
	groups[k] = &Group{Key: key, Subscribers: 1}
}

// sorted returns the groups, most subscribers first, then by key.
func sorted(groups map[string]*Group) []Group {
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Subscribers, a.Subscribers); c != 0 {
			return c
		}
		return slices.Compare(a.Key, b.Key)
	})
	return out
}
