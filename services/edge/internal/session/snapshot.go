package session

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/hub"
)

// What the admin API shows of a session. The counters cost the hot path
// next to nothing: the drop, coalescing and throttling counts are plain
// integers incremented under the session's mutex, which the code counting
// them already holds; last activity is one atomic store per frame written
// (with the clock reading the writer already takes for its latency
// metrics) and one clock reading and store per client frame read.

// Drop reasons counted per session, as in eventedge_client_drops_total.
const (
	dropThrottled = iota
	dropHighWater
	dropQueueFull
	dropSlowConsumer
	numDropReasons
)

// dropLabels are the drop reasons' label values in
// eventedge_client_drops_total.
var dropLabels = [numDropReasons]string{"throttled", "high_water", "queue_full", "slow_consumer"}

// dropped counts an event not sent to this client: in the node's metric
// and in the session's own counts. Caller holds s.mu.
func (s *Session) dropped(prio pb.Priority, reason int) {
	s.env.Metrics.Dropped(hub.PriorityLabel(prio), dropLabels[reason])
	s.act.drops[reason]++
}

// activity is the session's state kept only for Snapshot.
type activity struct {
	// clientVersion is the auth message's clientVersion (set once, at the
	// first authentication); nil when none was sent.
	clientVersion atomic.Pointer[string]
	// last is when the last client message was read or frame written (unix
	// ns); 0: neither yet.
	last atomic.Int64

	// guarded by Session.mu
	drops     [numDropReasons]uint64
	coalesced uint64 // progress events superseded before they were sent
	throttled uint64 // progress events held back by a rate limit or the high-water mark
}

// Snapshot is a session as an operator sees it.
type Snapshot struct {
	ID            string
	RemoteAddr    string
	UserAgent     string
	Mode          string // "json" or "protobuf"
	User          string // "" until authenticated
	Permissions   []string
	Projects      []string
	ExpiresAt     time.Time // of the current token; zero until authenticated
	Device        string
	ClientVersion string
	Since         time.Time // when the connection was accepted
	// LastActivity is when the client's last message was read or the
	// last frame written to it; Since when neither happened yet.
	LastActivity time.Time
	// Rooms are the subscriptions, sorted by room name.
	Rooms []hub.SubscriptionSnapshot
	// QueueMessages and QueueBytes are what waits in the send queue now.
	QueueMessages, QueueBytes int
	// HeldMessages and HeldBytes are the progress events held back by a
	// limit now (flow.go), bounded with the queue. Bytes of coalesced
	// events, queued or held, are estimates (their last encoding plus what
	// was coalesced since).
	HeldMessages, HeldBytes int
	// Drops counts the events not sent to this client by reason, as
	// eventedge_client_drops_total: throttled, high_water, queue_full and
	// slow_consumer (the event that closed it). Drops by a room's
	// lowEventsPerSecond are counted per room (RoomRateDrops).
	Drops Drops
	// Coalesced and Throttled count progress events superseded by a newer
	// one, and held back by a limit (eventedge_coalesced_total and
	// eventedge_throttled_total).
	Coalesced, Throttled uint64
	// Closing is the label of the close reason once the session is closing,
	// else "".
	Closing string
}

// Drops are events not sent to one client, by reason.
type Drops struct {
	Throttled, HighWater, QueueFull, SlowConsumer uint64
}

// Snapshot returns the session's state. Safe to call from any goroutine:
// it takes the session's locks briefly, one at a time (its subscriptions'
// lock may be held by a subscribe in progress, which Snapshot then waits
// for), and never from the fan-out's path.
func (s *Session) Snapshot() Snapshot {
	snap := Snapshot{
		ID:         s.info.ID,
		RemoteAddr: s.info.RemoteAddr,
		UserAgent:  s.info.UserAgent,
		Mode:       s.info.Mode.String(),
		Device:     s.device(),
		Since:      time.Now().Add(-(time.Since(epoch) - s.start)), // the wall clock's, even if it moved since epoch
	}
	if c := s.Claims(); c != nil {
		snap.User, snap.ExpiresAt = c.Subject, c.ExpiresAt
		snap.Permissions, snap.Projects = slices.Clone(c.Permissions), slices.Clone(c.Projects)
	}
	if v := s.act.clientVersion.Load(); v != nil {
		snap.ClientVersion = *v
	}
	snap.LastActivity = snap.Since
	if ns := s.act.last.Load(); ns != 0 {
		snap.LastActivity = time.Unix(0, ns)
	}

	s.subsMu.Lock()
	snap.Rooms = make([]hub.SubscriptionSnapshot, 0, len(s.subs))
	for _, st := range s.subs {
		snap.Rooms = append(snap.Rooms, st.sub.Snapshot())
	}
	s.subsMu.Unlock()
	slices.SortFunc(snap.Rooms, func(a, b hub.SubscriptionSnapshot) int { return cmp.Compare(a.Room, b.Room) })

	s.mu.Lock()
	snap.QueueMessages, snap.QueueBytes = s.q.msgs, s.q.bytes
	snap.HeldMessages, snap.HeldBytes = s.flow.held.size()
	snap.Drops = Drops{
		Throttled:    s.act.drops[dropThrottled],
		HighWater:    s.act.drops[dropHighWater],
		QueueFull:    s.act.drops[dropQueueFull],
		SlowConsumer: s.act.drops[dropSlowConsumer],
	}
	snap.Coalesced, snap.Throttled = s.act.coalesced, s.act.throttled
	if s.reason != nil {
		snap.Closing = s.reason.Label
	}
	s.mu.Unlock()
	return snap
}

// Subscribed reports whether the session is subscribed to the room named
// name. It waits for a subscribe in progress, like Snapshot.
func (s *Session) Subscribed(name string) bool {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	_, ok := s.subs[name]
	return ok
}

// IsClosing reports whether the session is closing (a close reason is set).
func (s *Session) IsClosing() bool { return s.closing() }

// User returns the authenticated user, "" before authentication.
func (s *Session) User() string {
	if c := s.Claims(); c != nil {
		return c.Subject
	}
	return ""
}
