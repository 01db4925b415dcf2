package session

import (
	"cmp"
	"math"
	"slices"
	"time"

	"golang.org/x/time/rate"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/hub"
)

// Flow control of one client's events, guarded by the session's mutex.
//
//   - Priorities: the queue sends control messages first, then the room
//     whose oldest queued event has the highest priority; a room's own
//     events always leave in seq order.
//   - Coalescing: a task_progress queued and not yet sent is replaced by a
//     newer one of the same task (latest wins, log lines appended up to
//     MaxCoalescedLogs), which takes its place at the end of its room's lane.
//   - Throttling (x/time/rate): task_progress at most ProgressRate per task;
//     low-priority events within the client's budget (ClientRate, ClientBurst,
//     which every event spends) and the node's low-priority budget. A
//     progress event over a limit is held — the newest per task, the trailing
//     edge — and released when the limit allows; other low-priority events
//     over a limit are dropped. High and normal events are never throttled
//     or dropped.
//   - High-water mark: above HighWater of the queue's bounds, low-priority
//     events are held (progress) or dropped; a high or normal event that does
//     not fit closes the client as a slow consumer (4008).
//   - Room order: before any event of a room is queued, the held progress
//     events of that room go first, so holding never reorders a room.
//   - Held events are bounded: at most the room between the high-water
//     mark and the queue's bounds (maxHeld: 255 messages and 1 MiB by
//     default), and never more than the queue's bounds together with what
//     is queued. A progress event to hold beyond that is not held. Above
//     the high-water mark (the client is behind) it does not fit, like a
//     high or normal event that does not fit the queue, and the client is
//     closed as a slow consumer (4008) to resume from its last seq. Below
//     it (only the rates hold the events: more tasks report progress than
//     the client's budget lets through) every held event is queued at once,
//     over its limits, within the queue's bounds, and the new one is held
//     in their place. Sizes are estimates for coalesced events (their last
//     encoding plus what was coalesced since: item.size), and coalescing
//     into a held event is not refused for its size (at most
//     MaxCoalescedLogs log lines).
type flow struct {
	client   *rate.Limiter
	progress map[string]*rate.Limiter // per room+task; nil until the first
	held     *heldEvents              // nil while no progress event is held
	timer    *time.Timer              // releases held events; nil when none are held
	// at is the latest time the client's and the tasks' limiters were
	// read at, an offset from epoch: they are never read at an earlier one
	// (rateTime).
	at time.Duration
}

// heldEvents are the throttled progress events of a client: the newest per
// task, by room, so that an event of a room finds its room's held events
// without going through every room's. Made by the first hold (most
// connections never hold one); a nil *heldEvents holds nothing.
type heldEvents struct {
	byRoom map[string]map[string]*item // room → task → newest held
	n      int                         // held events
	bytes  int                         // their sizes (item.size: estimated for coalesced ones)
}

func (h *heldEvents) get(room, task string) *item {
	if h == nil {
		return nil
	}
	return h.byRoom[room][task]
}

// size returns how many events h holds and their sizes (item.size).
func (h *heldEvents) size() (n, bytes int) {
	if h == nil {
		return 0, 0
	}
	return h.n, h.bytes
}

// put holds it, which no event of its room and task is.
func (h *heldEvents) put(it item) {
	tasks := h.byRoom[it.room]
	if tasks == nil {
		tasks = make(map[string]*item)
		h.byRoom[it.room] = tasks
	}
	tasks[it.task] = &it
	h.n++
	h.bytes += it.size()
}

// remove stops holding it (held under its room and task).
func (h *heldEvents) remove(it *item) {
	tasks := h.byRoom[it.room]
	delete(tasks, it.task)
	if len(tasks) == 0 {
		delete(h.byRoom, it.room)
	}
	h.n--
	h.bytes -= it.size()
}

// takeRoom removes and returns room's held events, in no order.
func (h *heldEvents) takeRoom(room string) []*item {
	if h == nil {
		return nil
	}
	tasks := h.byRoom[room]
	if tasks == nil {
		return nil
	}
	out := make([]*item, 0, len(tasks))
	for _, it := range tasks {
		out = append(out, it)
		h.n--
		h.bytes -= it.size()
	}
	delete(h.byRoom, room)
	return out
}

// all returns every held event, in no order.
func (h *heldEvents) all() []*item {
	if h == nil {
		return nil
	}
	out := make([]*item, 0, h.n)
	for _, tasks := range h.byRoom {
		for _, it := range tasks {
			out = append(out, it)
		}
	}
	return out
}

// init sets the client's budget. The maps are made by the first progress
// event that needs them: most connections never get one.
func (f *flow) init(o *Options) {
	f.client = rate.NewLimiter(rate.Limit(o.ClientRate), o.ClientBurst)
}

func taskKey(room, task string) string { return room + "\x00" + task }

// enqueue queues o for the client, applying flow control. It reports false
// when o (high or normal) does not fit: the client must be closed. Replayed
// events (replay) are coalesced but never throttled. Caller holds s.mu.
func (s *Session) enqueue(o *hub.Outbound, replay bool) bool {
	it := item{data: o.Bytes(s.info.Mode), ts: unixNano(o.Timestamp), replay: replay || o.Repaired, room: o.Room, seq: o.Seq, prio: o.Priority, task: o.Task, ev: o.Event}
	m := s.env.Metrics
	low := o.Priority == pb.Priority_PRIORITY_LOW
	if it.task != "" && low { // progress of higher priority is never coalesced or held
		if h := s.flow.held.get(it.room, it.task); h != nil {
			s.flow.held.bytes -= h.size() // get found one: held is not nil
			s.coalesce(h, it)
			s.flow.held.bytes += h.size()
			m.Coalesced.Inc()
			s.act.coalesced++
			return true
		}
		if old := s.q.findProgress(it.room, it.task); old != nil {
			merged := *old
			s.coalesce(&merged, it)
			s.q.kill(old)
			s.releaseHeld(it.room)
			s.q.push(merged)
			m.Coalesced.Inc()
			s.act.coalesced++
			return true
		}
		if !replay && (s.aboveHighWater() || !s.takeProgress(taskKey(it.room, it.task), s.rateTime(handledAt(o)))) {
			held := s.hold(it)
			if !held {
				if s.aboveHighWater() {
					return false // behind, with its held events at the bounds: a slow consumer
				}
				// The held events are at their bound because of their
				// rates, not because the client is behind: they go now,
				// over their limits (maxHeld keeps the queue within its
				// bounds), and this one is held in their place, rather than
				// held without bound or dropped.
				s.releaseAllHeld()
				held = s.hold(it)
			}
			if held {
				m.Throttled.Inc()
				s.act.throttled++
				return true
			}
			// Still no room (a bound under a few messages): queued at once.
		}
	} else if low && !replay {
		if s.aboveHighWater() {
			s.dropped(it.prio, dropHighWater)
			return true
		}
		if !s.allowLow(s.rateTime(handledAt(o))) {
			s.dropped(it.prio, dropThrottled)
			return true
		}
	} else if !replay {
		// High and normal spend the budget, and are never refused.
		s.flow.client.AllowN(s.rateTime(handledAt(o)), 1)
	}
	s.releaseHeld(it.room)
	if s.q.msgs >= s.opts.QueueMessages || s.q.bytes+it.size() > s.opts.QueueBytes {
		if low {
			s.dropped(it.prio, dropQueueFull)
			return true
		}
		return false
	}
	s.q.push(it)
	return true
}

func (s *Session) aboveHighWater() bool {
	return float64(s.q.msgs) >= s.opts.HighWater*float64(s.opts.QueueMessages) ||
		float64(s.q.bytes) >= s.opts.HighWater*float64(s.opts.QueueBytes)
}

// allowLow spends the client's budget at at (rateTime) and the node's
// low-priority budget now for a low-priority event, if both have a token.
func (s *Session) allowLow(at time.Time) bool {
	if !s.flow.client.AllowN(at, 1) {
		return false
	}
	return s.env.LowBudget == nil || s.env.LowBudget.Allow()
}

// unixNano is t in Unix nanoseconds (item.ts), or 0 — no latency is
// observed — for the zero time and for a time an int64 of nanoseconds
// cannot hold (before 1678 or after 2262: a publisher's timestamp may be
// anything from year 1 to 9999). Two comparisons, per delivery.
func unixNano(t time.Time) int64 {
	if t.Before(minUnixNano) || t.After(maxUnixNano) {
		return 0
	}
	return t.UnixNano()
}

// The times an int64 of Unix nanoseconds holds, within a day.
var (
	minUnixNano = time.Unix(0, math.MinInt64).Add(24 * time.Hour)
	maxUnixNano = time.Unix(0, math.MaxInt64).Add(-24 * time.Hour)
)

// handledAt is when the hub fanned o out (now if it did not say): one
// time for every subscriber of the fan-out, so that a room's clients
// throttle a task's progress alike and coalesce the same events, whose
// encoding they then share (Merges); and no clock read per subscriber.
func handledAt(o *hub.Outbound) time.Time {
	if o.Handled.IsZero() {
		return time.Now()
	}
	return o.Handled
}

// rateTime is t, or the latest time the session's limiters (the client's
// budget and its tasks' rates) were read at when t is earlier. A
// rate.Limiter told an earlier time than its last moves its clock back
// and credits the difference again at the next call: the fan-out times of
// rooms on different shards, and the release timer's now, interleave, and
// without this a client would overspend its budget by the difference at
// every turn. Caller holds s.mu.
func (s *Session) rateTime(t time.Time) time.Time {
	d := t.Sub(epoch)
	if d < s.flow.at {
		return epoch.Add(s.flow.at)
	}
	s.flow.at = d
	return t
}

// takeProgress spends a token of every limit a progress event of key is
// under — its task's and the client's at at (rateTime), the node's
// low-priority budget now (a limiter shared by every session, read at
// now by all) — only when all of them have one: a refused event wastes no
// token.
func (s *Session) takeProgress(key string, at time.Time) bool {
	lim := s.flow.progress[key]
	if lim == nil {
		if len(s.flow.progress) >= maxTrackedTasks {
			clear(s.flow.progress) // forget idle tasks; at worst one extra event each
		}
		lim = rate.NewLimiter(rate.Limit(s.opts.ProgressRate), 1)
		if s.flow.progress == nil {
			s.flow.progress = make(map[string]*rate.Limiter)
		}
		s.flow.progress[key] = lim
	}
	now := time.Now()
	if delayOf(lim, at) > 0 || delayOf(s.flow.client, at) > 0 || delayOf(s.env.LowBudget, now) > 0 {
		return false
	}
	lim.AllowN(at, 1)
	s.flow.client.AllowN(at, 1)
	if s.env.LowBudget != nil {
		s.env.LowBudget.AllowN(now, 1)
	}
	return true
}

// maxTrackedTasks bounds the per-task limiters one session keeps.
const maxTrackedTasks = 4096

// coalesce makes dst the newest of dst and newer: newer's event, seq and
// timestamp, with dst's log lines before newer's, at most MaxCoalescedLogs.
// Nothing is built here: dst keeps the events it is made of (merged), and
// the merged event is encoded when the writer builds the frame that sends
// it (joinFrame → freshen), once for every client of the room that
// coalesced the same events (Env.Merges). A task reporting faster than its
// ProgressRate is coalesced many times per send, into up to
// MaxCoalescedLogs log lines: building and encoding those per event and
// client cost every client in the room up to a millisecond per event.
// Until then dst counts for its last encoding plus the newer events' sizes
// (pending); once those add up to more than that encoding it is encoded
// again here, so its count stays within about twice its size.
func (s *Session) coalesce(dst *item, newer item) {
	m := dst.merged
	if m == nil {
		m = &merged{}
		m.add(dst.ev, s.opts.MaxCoalescedLogs)
	}
	m.add(newer.ev, s.opts.MaxCoalescedLogs)
	data, pending := dst.data, dst.size()-len(dst.data)+newer.size()
	*dst = newer
	dst.merged = m
	if pending <= len(data) {
		dst.data, dst.pending = data, int32(pending)
		return
	}
	s.encode(dst)
}

// encode encodes it, a coalesced event, into it.data: the encoding another
// client's identical merged event got, when Env.Merges still has it.
func (s *Session) encode(it *item) {
	mode := s.info.Mode
	var k mergeKey
	if c := s.env.Merges; c != nil {
		k = keyOf(it.room, it.seq, it.merged, mode)
		if data, ok := c.get(k, it.merged); ok {
			s.env.Metrics.MergesShared.Inc()
			it.data, it.pending = data, 0
			return
		}
	}
	data, err := mode.Event(it.room, it.seq, it.merged.event(s.opts.MaxCoalescedLogs))
	if err != nil {
		// Cannot happen: the merged event's parts each encoded once (the
		// hub refuses an event that does not). Were it to, the client
		// would get the older state data holds.
		s.logEvent(s.env.Log.Error()).Err(err).Str("room", it.room).Uint64("seq", it.seq).Msg("encode coalesced event")
		it.pending = 0
		return
	}
	s.env.Metrics.MergesEncoded.Inc()
	if c := s.env.Merges; c != nil {
		c.put(k, it.merged, data)
	}
	it.data, it.pending = data, 0
}

// freshen encodes the coalesced events of batch, taken from the queue to
// be sent, whose encoding is older than their event. The batch is the
// writer's, and nothing adds to a merged item once it is taken from the
// queue, so it needs no lock.
func (s *Session) freshen(batch []item) {
	for i := range batch {
		if batch[i].pending > 0 {
			s.encode(&batch[i])
		}
	}
}

// hold keeps it (a throttled progress event, of a task none is held for)
// until its limits allow it. It reports false, holding nothing, when the
// held events are at their bound (maxHeld), or the queued and held events
// together at the queue's bounds; enqueue decides what happens then.
func (s *Session) hold(it item) bool {
	n, bytes := s.flow.held.size()
	maxN, maxBytes := s.maxHeld()
	if n >= maxN || bytes+it.size() > maxBytes ||
		s.q.msgs+n >= s.opts.QueueMessages || s.q.bytes+bytes+it.size() > s.opts.QueueBytes {
		return false
	}
	if s.flow.held == nil {
		s.flow.held = &heldEvents{byRoom: make(map[string]map[string]*item)}
	}
	s.flow.held.put(it)
	if s.flow.timer == nil {
		s.flow.timer = time.AfterFunc(s.nextDue(), s.releaseDue)
	}
	return true
}

// maxHeld bounds the held events (messages, bytes): the room between the
// queue's high-water mark and its bounds, less one message, so that when
// they are all queued at once for a client below the mark (enqueue) the
// queue stays within its bounds with room for the next event. At least
// one message.
func (s *Session) maxHeld() (msgs, bytes int) {
	msgs = s.opts.QueueMessages - int(math.Ceil(s.opts.HighWater*float64(s.opts.QueueMessages))) - 1
	bytes = s.opts.QueueBytes - int(math.Ceil(s.opts.HighWater*float64(s.opts.QueueBytes)))
	return max(msgs, 1), max(bytes, 1)
}

// nextDue is how long until the first held event's limits allow it: the
// release timer fires then, so a held event waits no longer than its rate
// requires (the trailing edge is on time).
func (s *Session) nextDue() time.Duration {
	due := time.Second
	now := time.Now()
	at := s.rateTime(now)
	if s.flow.held != nil {
		for _, tasks := range s.flow.held.byRoom {
			for _, h := range tasks {
				due = min(due, s.dueIn(h, at, now))
			}
		}
	}
	return max(due, time.Millisecond)
}

// dueIn is how long until the limits of the held progress event h allow
// it: its task's and the client's read at at (rateTime), the node's now.
func (s *Session) dueIn(h *item, at, now time.Time) time.Duration {
	d := delayOf(s.flow.progress[taskKey(h.room, h.task)], at)
	d = max(d, delayOf(s.flow.client, at))
	if s.env.LowBudget != nil {
		d = max(d, delayOf(s.env.LowBudget, now))
	}
	return d
}

// delayOf is how long until lim has a token, without taking it.
func delayOf(lim *rate.Limiter, now time.Time) time.Duration {
	if lim == nil {
		return 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// releaseHeld queues every held event of room, in seq order, ahead of a
// newer event of the room: holding never reorders a room.
func (s *Session) releaseHeld(room string) {
	if n, _ := s.flow.held.size(); n == 0 {
		return
	}
	out := s.flow.held.takeRoom(room)
	s.tidyHeld()
	slices.SortFunc(out, bySeq)
	for _, h := range out {
		s.q.push(*h)
	}
}

// releaseAllHeld queues every held event, each room's in seq order.
func (s *Session) releaseAllHeld() {
	if s.flow.held == nil {
		return
	}
	for room := range s.flow.held.byRoom { // releaseHeld deletes room: allowed while ranging
		s.releaseHeld(room)
		if s.flow.held == nil { // the last room's release dropped the maps
			return
		}
	}
}

// tidyHeld drops the held events' maps once none is held: a connection
// keeps them only while it holds something.
func (s *Session) tidyHeld() {
	if s.flow.held != nil && s.flow.held.n == 0 {
		s.flow.held = nil
	}
}

func bySeq(a, b *item) int { return cmp.Compare(a.seq, b.seq) }

// releaseDue runs on the release timer: held events whose limits now allow
// them are queued, each room's in seq order (a room stops at its first
// event still held).
func (s *Session) releaseDue() {
	s.mu.Lock()
	if s.reason != nil || s.done {
		s.flow.timer = nil
		s.mu.Unlock()
		return
	}
	held := s.flow.held.all()
	slices.SortFunc(held, bySeq)
	at := s.rateTime(time.Now())
	blocked := map[string]bool{}
	released := false
	for _, h := range held {
		key := taskKey(h.room, h.task)
		if blocked[h.room] || s.aboveHighWater() || !s.takeProgress(key, at) {
			blocked[h.room] = true
			continue
		}
		s.flow.held.remove(h)
		s.q.push(*h)
		released = true
	}
	s.tidyHeld()
	if s.flow.held != nil {
		s.flow.timer.Reset(s.nextDue())
	} else {
		s.flow.timer = nil
	}
	if released {
		s.kickLocked()
	}
	s.mu.Unlock()
}
