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
// A shard takes whatever waits in its channel at once, and hands each
// subscriber a run of consecutive events of one room in one call: under
// load the fan-out's cost per subscriber is paid per run, not per event.
//
// Gapless: every live message carries its stream sequence and the previous
// sequence of the same subject (Nats-Last-Sequence). Per room the hub
// remembers the last sequence it handled; when a message's previous
// sequence is not that one (NATS dropped messages for a slow shard, the
// node was disconnected…), the missing range is read from the stream and
// delivered first. After a NATS reconnect every room is re-checked against
// the stream. A missing message is repaired, never skipped.
//
// Resume: a subscription that starts after a position catches up with
// CatchUp, which replays the stored events after it while holding back the
// live ones, then merges the two by sequence. The resumes of one room share
// their reads of the stream (the history Store's cache) and each replayed
// event's encoding, so a drained node's clients coming back together cost
// about one read and one encoding per event, not per client.
package hub

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
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
	// RetryDelay is the pause before a room whose gap could not be repaired
	// (NATS unavailable) is checked again. Default 1s.
	RetryDelay time.Duration
	// Policy sets per-room limits (maxClients, ttl, a low-priority rate).
	// Default: policy.None().
	Policy *policy.Policy
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
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Policy == nil {
		o.Policy = policy.None()
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
	// Data is the event message in JSON, without a trailing newline. The
	// protobuf form is encoded on first use: Bytes.
	Data []byte
	// Task is the task id of a task_progress event (for coalescing).
	Task string
	// Event is the decoded event, shared and read-only: a session that
	// coalesces progress events keeps it as a part of the merged event.
	Event *pb.Event
	// Repaired is set when the event was read back from the stream to fill
	// a gap instead of arriving live: its delivery latency is counted as a
	// replay's. (Resume replays go through Sink.DeliverWait instead.)
	Repaired bool
	// Handled is when the hub fanned the event out: the sessions' rate
	// limits spend tokens at this time instead of reading the clock once
	// per subscriber.
	Handled time.Time

	perm string // the event's required permission
	// raw is the event's protobuf encoding: the stored body of a protobuf
	// publisher, or the event marshalled once for a JSON one.
	raw     []byte
	binOnce sync.Once
	bin     []byte // the protobuf event message, set by binOnce
}

// Bytes returns the event message in mode m, shared by every subscriber
// of the room in that mode: the JSON form was encoded with the Outbound,
// the protobuf form is encoded by the first protobuf subscriber to need it
// (the stored bytes, not re-encoded: protocol.EncodeEventBinary).
func (o *Outbound) Bytes(m protocol.Mode) []byte {
	if m == protocol.JSON {
		return o.Data
	}
	o.binOnce.Do(func() { o.bin = protocol.EncodeEventBinary(o.Room, o.Seq, o.Event, o.raw) })
	return o.bin
}

// PriorityLabel is a priority as a metric label: high, normal or low.
func PriorityLabel(p pb.Priority) string { return protocol.PriorityName(p) }

// roomState is a room with at least one subscriber or a Join in progress.
type roomState struct {
	// static after construction
	name    string
	room    room.Room
	subject string        // live subject
	stored  string        // stored subject, read by repairs and replays
	ready   chan struct{} // closed when natsSub is set up (or failed)

	// lastSeq is the last sequence the room's shard handled: every event
	// of the room up to it has been offered to the subscribers. Written by
	// the shard goroutine under mu (so Join reads a value consistent with
	// the fan-out); set by subscribe before ready is closed.
	lastSeq atomic.Uint64
	// known is set once lastSeq has been read from the stream (even as 0):
	// only then can a live message's previous sequence reveal a gap.
	known atomic.Bool
	// retry is set while a repair that failed waits to be retried.
	retry atomic.Bool
	// epoch identifies the room object and its stream's generation: unique
	// per room created, and renewed by reset (stream recreated). A resync
	// carrying a position looked up off the shard applies it only under
	// the epoch of the lookup (ResyncAll).
	epoch atomic.Uint64
	// rule is the room's policy (static after construction).
	rule policy.Rule
	// repairs counts the room's gaps repaired from the stream, repaired the
	// events read back for them and repairFailures the repairs that could
	// not read the stream: for the admin API (snapshot.go).
	repairs, repaired, repairFailures atomic.Uint64

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
	nc *nats.Conn
	// hist reads the stream for the live path (a room's position when it
	// is created, gap repairs, re-checks), which every event of a shard
	// waits on: its Priority view, not queued behind resumes. replays
	// reads it for resumes (CatchUp), bounded in flight.
	hist, replays *history.Store
	opts          Options
	log           zerolog.Logger
	m             *metrics.Metrics
	seed          maphash.Seed
	shards        []chan *nats.Msg
	quit          chan struct{}
	wg            sync.WaitGroup // shard goroutines, owned by New/Close, and running ResyncAlls
	lookups       chan struct{}  // ResyncAll's stream lookups in flight, at most resyncLookups
	epochs        atomic.Uint64  // the last roomState.epoch given out
	resyncRuns    atomic.Uint64  // counts ResyncAll runs: an older one stops when a newer starts

	encoded encodedReplays // the Outbounds of replayed events, shared by a room's resumes (its own lock)

	mu     sync.RWMutex
	rooms  map[string]*roomState // by live subject; guarded by mu
	closed bool                  // guarded by mu
}

// Errors of Join.
var (
	ErrClosed   = errors.New("hub closed")
	ErrRoomFull = errors.New("room full")
)

// New returns a running Hub reading from nc. Close stops it.
func New(nc *nats.Conn, hist *history.Store, opts Options, log zerolog.Logger, m *metrics.Metrics) *Hub {
	opts = opts.withDefaults()
	h := &Hub{
		nc:      nc,
		hist:    hist.Priority(),
		replays: hist,
		opts:    opts,
		log:     log,
		m:       m,
		seed:    maphash.MakeSeed(),
		quit:    make(chan struct{}),
		lookups: make(chan struct{}, resyncLookups),
		rooms:   make(map[string]*roomState),
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

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Join adds sub to its room, subscribing the node to the room's NATS subject
// first when sub is the room's first member. onJoined runs once sub is a
// member and before any event can be delivered to it, with the position
// the subscription continues after: the subscribe reply is queued there so
// that it precedes the room's first event.
//
// A subscription created with resume=false starts at the room's current
// position (the events that follow are live); one created with
// resume=true starts at since and must then be caught up with CatchUp.
func (h *Hub) Join(ctx context.Context, sub *Subscription, since uint64, onJoined func(pos uint64)) error {
	subject := sub.room.LiveSubject()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	rs := h.rooms[subject]
	creator := rs == nil
	if creator {
		rs = &roomState{name: sub.name, room: sub.room, subject: subject, stored: sub.room.Subject(), ready: make(chan struct{}), subs: make(map[*Subscription]struct{}), rule: h.opts.Policy.For(sub.room)}
		rs.epoch.Store(h.epochs.Add(1))
		h.rooms[subject] = rs
	}
	rs.refs++
	h.mu.Unlock()

	if creator {
		h.subscribe(rs)
	} else if !isClosed(rs.ready) {
		// Waited for only when the room is still being set up: ctx.Done
		// makes the context's channel, which every session holding a
		// subscription would otherwise keep for its connection's life.
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
	if max := rs.rule.MaxClients; max > 0 && len(rs.subs) >= max {
		rs.mu.Unlock()
		h.release(rs)
		return ErrRoomFull
	}
	if r := rs.rule.LowEventsPerSecond; r > 0 {
		sub.low = rate.NewLimiter(rate.Limit(r), rs.rule.LowBurst)
		sub.lowDrops = func() { h.m.Dropped("low", "room_rate") }
	}
	sub.mu.Lock()
	if sub.catchingUp {
		sub.pos = since
	} else {
		sub.pos = rs.lastSeq.Load()
	}
	pos := sub.pos
	sub.mu.Unlock()
	rs.subs[sub] = struct{}{}
	if onJoined != nil {
		onJoined(pos)
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
	// The room's position: live messages up to it were stored before the
	// subscription existed. When the stream cannot be asked now, the room
	// starts at 0 and is checked again shortly.
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.FlushTimeout)
	defer cancel()
	last, err := h.hist.Last(ctx, rs.stored)
	if err != nil {
		h.log.Warn().Err(err).Str("room", rs.name).Msg("room position unknown; will re-check")
		h.scheduleResync(rs)
		return
	}
	rs.lastSeq.Store(last)
	rs.known.Store(true)
}

// release drops one reference to rs and tears the room down with the last.
// With a policy ttl, an empty room is kept that long (its subscription and
// position stay current) before it is torn down: a client that comes back
// at once finds it ready.
func (h *Hub) release(rs *roomState) {
	h.mu.Lock()
	rs.refs--
	empty := rs.refs == 0
	h.mu.Unlock()
	if !empty {
		return
	}
	if ttl := rs.rule.TTL; ttl > 0 && rs.err == nil {
		time.AfterFunc(ttl, func() { h.teardown(rs) })
		return
	}
	h.teardown(rs)
}

// teardown removes rs if it is still empty.
func (h *Hub) teardown(rs *roomState) {
	h.mu.Lock()
	last := rs.refs == 0 && h.rooms[rs.subject] == rs
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
	sh := &shard{}
	for {
		select {
		case msg := <-ch:
			sh.msgs = append(sh.msgs[:0], msg)
		more: // and whatever else is already waiting, up to maxBatch
			for len(sh.msgs) < maxBatch {
				select {
				case m := <-ch:
					sh.msgs = append(sh.msgs, m)
				default:
					break more
				}
			}
			for i, m := range sh.msgs {
				h.dispatch(sh, m)
				sh.msgs[i] = nil
			}
			h.flush(sh)
		case <-h.quit:
			return
		}
	}
}

// maxBatch bounds the messages a shard takes from its channel at once.
// Consecutive live events of one room among them are fanned out together:
// one pass over the room's subscribers, one Deliver (one lock of the
// session, one wake-up of its writer) per subscriber for all of them.
// Under load, when events wait in the channel while the writers run, this
// divides the fan-out's cost per subscriber by the events in the run; when
// they do not wait, a run is one event and nothing changes.
const maxBatch = 64

// shard is a dispatch goroutine's state, owned by that goroutine
// (runShard): the batch it took from its channel, the run of one room's
// live events not fanned out yet, and scratch slices reused by every
// fan-out.
type shard struct {
	msgs []*nats.Msg
	run  *roomState  // the room of evs; nil when evs is empty
	evs  []liveEvent // the run: consecutive live events of run, ascending seq
	outs []*Outbound // the run's events, encoded
	each []*Outbound // the part of outs one subscriber receives
}

// liveEvent is a live message accepted for fan-out, not yet decoded.
type liveEvent struct {
	seq         uint64
	body        []byte
	contentType string
}

// last returns the last sequence handled in rs: the run's last event when
// the run is rs's, else the room's position.
func (sh *shard) last(rs *roomState) uint64 {
	if sh.run == rs && len(sh.evs) > 0 {
		return sh.evs[len(sh.evs)-1].seq
	}
	return rs.lastSeq.Load()
}

func (h *Hub) room(subject string) *roomState {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.rooms[subject]
}

// dispatch handles one live message (or resync request) on its room's
// shard goroutine: a live event in order is added to the shard's run (see
// flush); anything else — a control request, a gap to repair, an event of
// another room — first fans out the run so far, so each room's events are
// still handled in stream order.
func (h *Hub) dispatch(sh *shard, msg *nats.Msg) {
	rs := h.room(msg.Subject)
	if rs == nil {
		if msg.Sub != nil {
			h.m.EventsIn.Inc()
			h.m.EventsDropped.WithLabelValues("no_room").Inc()
		}
		return
	}
	if sh.run != rs {
		h.flush(sh)
	}
	<-rs.ready
	if what := msg.Header.Get(controlHeader); what != "" && msg.Sub == nil {
		h.flush(sh)
		switch what {
		case "resync":
			if last, ok := lookedUp(rs, msg); ok {
				h.resyncTo(rs, last)
			} else {
				h.resync(rs)
			}
		case "reset":
			h.reset(rs)
		}
		return
	}
	h.m.EventsIn.Inc()
	seq, err := strconv.ParseUint(msg.Header.Get(events.HeaderSequence), 10, 64)
	if err != nil || seq == 0 {
		h.m.EventsInvalid.Inc()
		h.log.Warn().Str("subject", msg.Subject).Msgf("dropped a message without a valid %s header: not re-published by the %s stream", events.HeaderSequence, events.StreamName)
		return
	}
	last := sh.last(rs)
	if seq <= last {
		h.m.EventsDropped.WithLabelValues("duplicate").Inc()
		return
	}
	prev, perr := strconv.ParseUint(msg.Header.Get(events.HeaderLastSequence), 10, 64)
	if rs.known.Load() && (perr != nil || prev != last) {
		// Events of this room between last and this one did not arrive.
		h.flush(sh) // the room's position is last now
		if !h.repair(rs, last, seq-1) {
			return // retried later; this message is read back with the gap
		}
	}
	sh.run = rs
	sh.evs = append(sh.evs, liveEvent{seq: seq, body: msg.Data, contentType: msg.Header.Get(events.HeaderContentType)})
}

// flush fans out the shard's run of live events, if any, and empties it.
func (h *Hub) flush(sh *shard) {
	if len(sh.evs) == 0 {
		sh.run = nil
		return
	}
	now := time.Now()
	for _, e := range sh.evs {
		if out := h.encodeEvent(sh.run, e.seq, e.body, e.contentType); out != nil {
			out.Handled = now
			sh.outs = append(sh.outs, out)
		}
	}
	if len(sh.outs) > 0 {
		h.m.FanoutRun.Observe(float64(len(sh.outs)))
	}
	sh.each = h.fanout(sh.run, sh.evs[len(sh.evs)-1].seq, sh.outs, sh.each)
	clear(sh.evs)
	clear(sh.outs)
	sh.evs, sh.outs, sh.run = sh.evs[:0], sh.outs[:0], nil
}

// fanoutOne fans out one event read back from the stream by a gap repair.
func (h *Hub) fanoutOne(rs *roomState, seq uint64, body []byte, contentType string) {
	var outs []*Outbound
	if out := h.encodeEvent(rs, seq, body, contentType); out != nil {
		out.Repaired = true
		out.Handled = time.Now()
		outs = []*Outbound{out}
	}
	h.fanout(rs, seq, outs, nil)
}

// encodeEvent decodes one event of rs (live or repaired) and encodes it
// once for every subscriber; an invalid event is counted and logged, and
// nil returned.
func (h *Hub) encodeEvent(rs *roomState, seq uint64, body []byte, contentType string) *Outbound {
	out, err := encode(rs.name, seq, body, contentType)
	if err != nil {
		h.m.EventsInvalid.Inc()
		h.log.Warn().Err(err).Str("room", rs.name).Uint64("seq", seq).Msg("dropped invalid event")
		return nil
	}
	return out
}

// fanout offers outs (events of rs in ascending seq; an invalid event is
// not among them) to every subscriber of the room together, and advances
// the room's position to last, the run's last sequence. each is scratch,
// returned for reuse. Runs on the room's shard goroutine.
func (h *Hub) fanout(rs *roomState, last uint64, outs, each []*Outbound) []*Outbound {
	rs.mu.Lock() // excludes Join, so a new member starts exactly at lastSeq
	defer rs.mu.Unlock()
	if last > rs.lastSeq.Load() {
		rs.lastSeq.Store(last)
	}
	if len(outs) == 0 {
		return each
	}
	delivered := 0
	for sub := range rs.subs {
		var n int
		n, each = sub.offer(outs, each)
		delivered += n
	}
	clear(each[:cap(each)]) // keep no event alive until the next fan-out
	h.m.Deliveries.Add(float64(delivered))
	return each
}

func encode(roomName string, seq uint64, body []byte, contentType string) (*Outbound, error) {
	ev, err := events.Decode(body, contentType)
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
	raw := body
	if contentType != "" && contentType != events.ContentTypeProtobuf {
		// A JSON publisher's event (or a media type with parameters):
		// marshalled here, once per room, for protobuf subscribers.
		if raw, err = proto.Marshal(ev); err != nil {
			return nil, fmt.Errorf("encode event %s: %w", ev.Id, err)
		}
	}
	return &Outbound{
		Room:      roomName,
		Seq:       seq,
		Type:      ev.Type,
		Priority:  events.Priority(ev),
		Timestamp: ev.Timestamp.AsTime(),
		Data:      data,
		Task:      ev.GetTaskProgress().GetTaskId(),
		Event:     ev,
		perm:      ev.RequiredPermission,
		raw:       raw,
	}, nil
}
