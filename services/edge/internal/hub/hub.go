// Package hub keeps the rooms of one edge node and fans events out to their
// local subscribers.
//
// Interest-based: the hub holds one NATS subscription per room that has at
// least one local subscriber, created by the first Join and removed by the
// last Leave. Messages of all rooms flow through a few shard goroutines
// (room → shard by subject hash), so each room's events are handled in
// stream order by exactly one goroutine. Each event is decoded once and
// encoded to its client JSON once per room; every subscriber that may see it
// is handed the same *Outbound, without copying and without blocking.
package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// Options configures a Hub. Zero fields take their defaults.
type Options struct {
	// Shards is the number of dispatch goroutines. Default GOMAXPROCS.
	Shards int
	// ShardBuffer is the number of NATS messages each shard buffers before
	// NATS drops messages for it as a slow consumer. Default 8192.
	ShardBuffer int
	// FlushTimeout bounds the round trip that confirms a new room's NATS
	// subscription before the subscribe is answered. Default 2s.
	FlushTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Shards <= 0 {
		o.Shards = runtime.GOMAXPROCS(0)
	}
	if o.ShardBuffer <= 0 {
		o.ShardBuffer = 8192
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 2 * time.Second
	}
	return o
}

// Outbound is one encoded event of one room, shared read-only by every
// subscriber it is delivered to.
type Outbound struct {
	Room     string
	Seq      uint64
	Type     string
	Priority pb.Priority
	// Timestamp is the event's timestamp: the start of delivery latency.
	Timestamp time.Time
	// Data is the encoded event message, without a trailing newline.
	Data []byte
}

// Sink is the receiving end of a subscription: a client session.
type Sink interface {
	// Deliver queues o for the client. It must not block.
	Deliver(o *Outbound)
	// Claims returns the client's current claims.
	Claims() *auth.Claims
}

// Subscription is one client's membership of one room. Create it with
// NewSubscription; the hub reads it concurrently, so its filter changes go
// through SetEvents.
type Subscription struct {
	// static after construction
	room room.Room
	name string
	sink Sink

	mu     sync.RWMutex
	events []string // guarded by mu; empty: every type
}

// NewSubscription returns a subscription of sink to r receiving only the
// listed event types (all when empty).
func NewSubscription(r room.Room, sink Sink, eventTypes []string) *Subscription {
	return &Subscription{room: r, name: r.String(), sink: sink, events: eventTypes}
}

// Room returns the subscribed room.
func (s *Subscription) Room() room.Room { return s.room }

// SetEvents replaces the event-type filter.
func (s *Subscription) SetEvents(eventTypes []string) {
	s.mu.Lock()
	s.events = eventTypes
	s.mu.Unlock()
}

// allows reports whether the subscriber may receive an event of type typ
// needing permission perm.
func (s *Subscription) allows(typ, perm string) bool {
	if perm != "" && !s.sink.Claims().Has(perm) {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.events) == 0 {
		return true
	}
	for _, t := range s.events {
		if t == typ {
			return true
		}
	}
	return false
}

// roomState is a room with at least one subscriber or a Join in progress.
type roomState struct {
	// static after construction
	name    string
	subject string
	ready   chan struct{} // closed when natsSub is set up (or failed)

	// written once before ready is closed
	natsSub *nats.Subscription
	err     error

	refs int // guarded by Hub.mu: members plus joins in progress

	mu   sync.RWMutex
	subs map[*Subscription]struct{} // guarded by mu
}

// Hub is the node's room registry and fan-out. Safe for concurrent use.
type Hub struct {
	// static after construction
	nc     *nats.Conn
	opts   Options
	log    zerolog.Logger
	m      *metrics.Metrics
	seed   maphash.Seed
	shards []chan *nats.Msg
	quit   chan struct{}
	wg     sync.WaitGroup // shard goroutines, owned by New/Close

	mu     sync.RWMutex
	rooms  map[string]*roomState // by live subject; guarded by mu
	closed bool                  // guarded by mu
}

// ErrClosed is returned by Join after Close.
var ErrClosed = errors.New("hub closed")

// New returns a running Hub reading from nc. Close stops it.
func New(nc *nats.Conn, opts Options, log zerolog.Logger, m *metrics.Metrics) *Hub {
	opts = opts.withDefaults()
	h := &Hub{
		nc:    nc,
		opts:  opts,
		log:   log,
		m:     m,
		seed:  maphash.MakeSeed(),
		quit:  make(chan struct{}),
		rooms: make(map[string]*roomState),
	}
	h.shards = make([]chan *nats.Msg, opts.Shards)
	for i := range h.shards {
		ch := make(chan *nats.Msg, opts.ShardBuffer)
		h.shards[i] = ch
		h.wg.Add(1)
		go h.runShard(ch)
	}
	return h
}

func (h *Hub) shardFor(subject string) chan *nats.Msg {
	return h.shards[maphash.String(h.seed, subject)%uint64(len(h.shards))]
}

// Join adds sub to its room, subscribing the node to the room's NATS subject
// first when sub is the room's first member. onJoined runs once sub is a
// member and before any event can be delivered to it: the subscribe reply is
// queued there so that it precedes the room's first event.
func (h *Hub) Join(ctx context.Context, sub *Subscription, onJoined func()) error {
	subject := sub.room.LiveSubject()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	rs := h.rooms[subject]
	creator := rs == nil
	if creator {
		rs = &roomState{name: sub.name, subject: subject, ready: make(chan struct{}), subs: make(map[*Subscription]struct{})}
		h.rooms[subject] = rs
	}
	rs.refs++
	h.mu.Unlock()

	if creator {
		h.subscribe(rs)
	} else {
		select {
		case <-rs.ready:
		case <-ctx.Done():
			h.release(rs)
			return ctx.Err()
		}
	}
	if rs.err != nil {
		h.release(rs)
		return rs.err
	}
	rs.mu.Lock()
	rs.subs[sub] = struct{}{}
	if onJoined != nil {
		onJoined()
	}
	rs.mu.Unlock()
	return nil
}

// subscribe creates rs's NATS subscription and confirms it with a round
// trip, so that an event published after the subscribe reply is received.
// While NATS is down the subscription is kept by the client library and
// sent on reconnect; the round trip then fails and is only logged.
func (h *Hub) subscribe(rs *roomState) {
	defer close(rs.ready)
	sub, err := h.nc.ChanSubscribe(rs.subject, h.shardFor(rs.subject))
	if err != nil {
		rs.err = fmt.Errorf("subscribe %s: %w", rs.subject, err)
		return
	}
	// The shard channel is the subscription's pending buffer: when it is
	// full, nats.go drops messages for it and reports a slow consumer.
	rs.natsSub = sub
	h.m.NATSSubs.Inc()
	h.m.Rooms.Inc()
	if err := h.nc.FlushTimeout(h.opts.FlushTimeout); err != nil {
		h.log.Debug().Err(err).Str("room", rs.name).Msg("room subscription not confirmed; NATS will receive it on reconnect")
	}
}

// release drops one reference to rs and tears the room down with the last.
func (h *Hub) release(rs *roomState) {
	h.mu.Lock()
	rs.refs--
	last := rs.refs == 0
	if last {
		delete(h.rooms, rs.subject)
	}
	h.mu.Unlock()
	if last && rs.natsSub != nil {
		if err := rs.natsSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			h.log.Warn().Err(err).Str("room", rs.name).Msg("unsubscribe room")
		}
		h.m.NATSSubs.Dec()
		h.m.Rooms.Dec()
	}
}

// Leave removes sub from its room. Leaving a room sub is not in is a no-op.
func (h *Hub) Leave(sub *Subscription) {
	h.mu.RLock()
	rs := h.rooms[sub.room.LiveSubject()]
	h.mu.RUnlock()
	if rs == nil {
		return
	}
	rs.mu.Lock()
	_, member := rs.subs[sub]
	delete(rs.subs, sub)
	rs.mu.Unlock()
	if member {
		h.release(rs)
	}
}

// Rooms returns the number of rooms with subscribers.
func (h *Hub) Rooms() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.rooms)
}

// Close unsubscribes every room and stops the shard goroutines. Subscribers
// are not told; the caller closes their sessions.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	rooms := h.rooms
	h.rooms = map[string]*roomState{}
	h.mu.Unlock()
	for _, rs := range rooms {
		<-rs.ready
		if rs.natsSub != nil {
			_ = rs.natsSub.Unsubscribe()
			h.m.NATSSubs.Dec()
			h.m.Rooms.Dec()
		}
	}
	close(h.quit)
	h.wg.Wait()
}

func (h *Hub) runShard(ch chan *nats.Msg) {
	defer h.wg.Done()
	for {
		select {
		case msg := <-ch:
			h.dispatch(msg)
		case <-h.quit:
			return
		}
	}
}

// dispatch decodes one live message, encodes it once and hands it to every
// subscriber of its room that may see it.
func (h *Hub) dispatch(msg *nats.Msg) {
	h.m.EventsIn.Inc()
	h.mu.RLock()
	rs := h.rooms[msg.Subject]
	h.mu.RUnlock()
	if rs == nil {
		h.m.EventsDropped.WithLabelValues("no_room").Inc()
		return
	}
	out, err := encode(rs.name, msg)
	if err != nil {
		h.m.EventsInvalid.Inc()
		h.log.Warn().Err(err).Str("subject", msg.Subject).Str("seq", msg.Header.Get(events.HeaderSequence)).Msg("dropped invalid event")
		return
	}
	delivered := 0
	rs.mu.RLock()
	for sub := range rs.subs {
		if sub.allows(out.Type, out.perm) {
			sub.sink.Deliver(&out.Outbound)
			delivered++
		}
	}
	rs.mu.RUnlock()
	h.m.Deliveries.Add(float64(delivered))
}

type encoded struct {
	Outbound
	perm string
}

func encode(roomName string, msg *nats.Msg) (*encoded, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(events.HeaderSequence), 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("missing or bad %s header: not re-published by the %s stream", events.HeaderSequence, events.StreamName)
	}
	ev, err := events.Decode(msg.Data, msg.Header.Get(events.HeaderContentType))
	if err != nil {
		return nil, err
	}
	if ev.Room != roomName {
		return nil, fmt.Errorf("event %s: room %q does not match its subject's room %q", ev.Id, ev.Room, roomName)
	}
	data, err := protocol.EncodeEvent(roomName, seq, ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.Id, err)
	}
	return &encoded{
		Outbound: Outbound{
			Room:      roomName,
			Seq:       seq,
			Type:      ev.Type,
			Priority:  events.Priority(ev),
			Timestamp: ev.Timestamp.AsTime(),
			Data:      data,
		},
		perm: ev.RequiredPermission,
	}, nil
}
