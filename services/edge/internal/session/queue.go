package session

import (
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// item is one queued message.
type item struct {
	data []byte
	// ts is the event timestamp for event messages (zero for others): the
	// writer observes delivery latency from it.
	ts    time.Time
	room  string // "" for control messages
	seq   uint64
	prio  pb.Priority
	task  string    // task id of a task_progress event
	ev    *pb.Event // decoded event (events only), for coalescing
	order uint64    // enqueue order: ties between rooms go to the oldest
	dead  bool      // coalesced away: skipped, not sent
	// replay is set for an event read back from the stream (a resume
	// replay or a gap repair) or held back while a resume caught up: its
	// latency is observed apart from live deliveries (path="replay").
	replay bool
}

// lane is one room's FIFO of queued events. A room's events leave in the
// order they entered, which is ascending seq: priorities choose between
// rooms, never within one.
type lane struct {
	items []item
	head  int
}

func (l *lane) front() *item {
	for l.head < len(l.items) && l.items[l.head].dead {
		l.head++
	}
	if l.head == len(l.items) {
		return nil
	}
	return &l.items[l.head]
}

func (l *lane) pop() item {
	it := l.items[l.head]
	l.items[l.head] = item{}
	l.head++
	if l.head == len(l.items) {
		l.items, l.head = l.items[:0], 0
	} else if l.head > 64 && l.head > len(l.items)/2 {
		n := copy(l.items, l.items[l.head:])
		clear(l.items[n:])
		l.items, l.head = l.items[:n], 0
	}
	return it
}

// queue is a client's send queue: control messages (replies, resets…)
// first, then the room lanes, always the lane whose head has the highest
// priority (the oldest on a tie). It is not safe for concurrent use: the
// session guards it with its mutex.
type queue struct {
	control []item
	lanes   map[string]*lane
	msgs    int // queued messages, control and live events
	bytes   int
	order   uint64
}

func newQueue() *queue { return &queue{lanes: make(map[string]*lane)} }

func (q *queue) pushControl(data []byte) {
	q.control = append(q.control, item{data: data})
	q.msgs++
	q.bytes += len(data)
}

func (q *queue) push(it item) {
	q.order++
	it.order = q.order
	l := q.lanes[it.room]
	if l == nil {
		l = &lane{}
		q.lanes[it.room] = l
	}
	l.items = append(l.items, it)
	q.msgs++
	q.bytes += len(it.data)
}

// findProgress returns the queued, unsent task_progress of task in room,
// or nil.
func (q *queue) findProgress(room, task string) *item {
	l := q.lanes[room]
	if l == nil {
		return nil
	}
	for i := len(l.items) - 1; i >= l.head; i-- {
		if it := &l.items[i]; !it.dead && it.task == task {
			return it
		}
	}
	return nil
}

// kill drops a queued item (it was coalesced into a newer one).
func (q *queue) kill(it *item) {
	it.dead = true
	q.msgs--
	q.bytes -= len(it.data)
	it.data, it.ev = nil, nil
}

// take moves queued messages into dst in send order until they add up to
// maxBytes (at least one message, when any is queued).
func (q *queue) take(dst []item, maxBytes int) []item {
	size := 0
	for len(q.control) > 0 {
		it := q.control[0]
		if size > 0 && size+len(it.data) > maxBytes {
			return dst
		}
		q.control[0] = item{}
		q.control = q.control[1:]
		dst = append(dst, it)
		size += len(it.data)
		q.msgs--
		q.bytes -= len(it.data)
	}
	q.control = q.control[:0:0]
	for {
		var best *lane
		var bestItem *item
		for _, l := range q.lanes {
			h := l.front()
			if h == nil {
				continue
			}
			if bestItem == nil || h.prio > bestItem.prio || h.prio == bestItem.prio && h.order < bestItem.order {
				best, bestItem = l, h
			}
		}
		if best == nil || size > 0 && size+len(bestItem.data) > maxBytes {
			return dst
		}
		it := best.pop()
		dst = append(dst, it)
		size += len(it.data)
		q.msgs--
		q.bytes -= len(it.data)
	}
}

// dropRoom discards the queued messages of room (it was left, or its
// stream recreated).
func (q *queue) dropRoom(room string) {
	l := q.lanes[room]
	if l == nil {
		return
	}
	for i := l.head; i < len(l.items); i++ {
		if it := &l.items[i]; !it.dead {
			q.kill(it)
		}
	}
	delete(q.lanes, room)
}

// maxKeptLane is the largest backing array an empty lane keeps for its
// room's next events; a larger one (left by a backlog) is released.
const maxKeptLane = 4

// forget empties the lanes with nothing left to send, releasing backing
// arrays grown by a backlog. The lanes themselves stay until their room is
// left (dropRoom): the next event of the room needs no allocation.
func (q *queue) forget() {
	for _, l := range q.lanes {
		if l.front() != nil {
			continue
		}
		clear(l.items)
		l.items, l.head = l.items[:0], 0
		if cap(l.items) > maxKeptLane {
			l.items = nil
		}
	}
}
