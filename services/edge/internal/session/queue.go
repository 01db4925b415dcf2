package session

import (
	"slices"
	"sync"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// item is one queued message.
type item struct {
	// data is the message as sent; while pending > 0, an encoding of an
	// older state of a coalesced event (merged holds the current one),
	// encoded again when the item is taken to be sent (Session.freshen).
	data []byte
	// ts is the event timestamp for event messages, in Unix nanoseconds
	// (0 for others, and for an event without one): the writer observes
	// delivery latency from it.
	ts   int64
	room string // "" for control messages
	seq  uint64
	prio pb.Priority
	// pending is the size of the newer events coalesced into the item
	// since data was encoded: with len(data), what the item counts for in
	// the queue's bounds (size) until it is encoded again.
	pending int32
	task    string    // task id of a task_progress event
	ev      *pb.Event // decoded event (events only), for coalescing
	// merged is set on a coalesced task_progress: the events it is made of
	// (merge.go); ev is the newest of them.
	merged *merged
	order  uint64 // enqueue order: ties between rooms go to the oldest
	dead   bool   // coalesced away: skipped, not sent
	// replay is set for an event read back from the stream (a resume
	// replay or a gap repair) or held back while a resume caught up: its
	// latency is observed apart from live deliveries (path="replay").
	replay bool
}

// lane is one room's FIFO of queued events. A room's events leave in the
// order they entered, which is ascending seq: priorities choose between
// rooms, never within one.
type lane struct {
	room  string
	items []item
	head  int
	pool  *[]item // where items came from in itemPool; nil while the lane holds none
}

// size is what the item counts for in the queue's byte bound: its
// encoding, plus the newer events coalesced into it since (pending).
func (it *item) size() int { return len(it.data) + int(it.pending) }

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
	lanes   []*lane // one per room with queued events or subscribed; a client has a few

	msgs  int // queued messages, control and live events
	bytes int
	order uint64
}

func newQueue() *queue { return &queue{} }

// lane returns room's lane, nil when it has none. A slice scanned by name:
// a client is in a few rooms, where this is cheaper than a map.
func (q *queue) lane(room string) *lane {
	for _, l := range q.lanes {
		if l.room == room {
			return l
		}
	}
	return nil
}

func (q *queue) pushControl(data []byte) {
	q.control = append(q.control, item{data: data})
	q.msgs++
	q.bytes += len(data)
}

func (q *queue) push(it item) {
	q.order++
	it.order = q.order
	l := q.lane(it.room)
	if l == nil {
		l = &lane{room: it.room}
		q.lanes = append(q.lanes, l)
	}
	if l.pool == nil {
		l.pool = getItems()
		l.items = *l.pool
	}
	l.items = append(l.items, it)
	q.msgs++
	q.bytes += it.size()
}

// findProgress returns the queued, unsent task_progress of task in room,
// or nil.
func (q *queue) findProgress(room, task string) *item {
	l := q.lane(room)
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
	q.bytes -= it.size()
	it.data, it.ev, it.merged, it.pending = nil, nil, nil, 0
}

// take moves queued messages into dst in send order until they add up to
// maxBytes (at least one message, when any is queued).
func (q *queue) take(dst []item, maxBytes int) []item {
	size := 0
	for len(q.control) > 0 {
		it := q.control[0]
		if size > 0 && size+it.size() > maxBytes {
			return dst
		}
		q.control[0] = item{}
		q.control = q.control[1:]
		dst = append(dst, it)
		size += it.size()
		q.msgs--
		q.bytes -= it.size()
	}
	q.control = nil // a [:0:0] slice would still hold the array: an idle connection keeps none
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
		if best == nil || size > 0 && size+bestItem.size() > maxBytes {
			return dst
		}
		it := best.pop()
		dst = append(dst, it)
		size += it.size()
		q.msgs--
		q.bytes -= it.size()
	}
}

// dropRoom discards the queued messages of room (it was left, or its
// stream recreated).
func (q *queue) dropRoom(room string) {
	l := q.lane(room)
	if l == nil {
		return
	}
	for i := l.head; i < len(l.items); i++ {
		if it := &l.items[i]; !it.dead {
			q.kill(it)
		}
	}
	clear(l.items)
	putItems(l.pool, l.items)
	q.lanes = slices.DeleteFunc(q.lanes, func(x *lane) bool { return x == l })
}

// forget empties the lanes with nothing left to send; their backing arrays
// go back to itemPool. The lanes themselves stay until their room is left
// (dropRoom). An idle session keeps no item arrays, and a busy one takes
// them from the pool again instead of growing new ones every round.
func (q *queue) forget() {
	for _, l := range q.lanes {
		if l.pool == nil || l.front() != nil {
			continue
		}
		clear(l.items)
		putItems(l.pool, l.items)
		l.items, l.head, l.pool = nil, 0, nil
	}
}

// itemPool holds item arrays (lanes', writers' batches) between uses:
// under load every session fills and empties them once per round.
var itemPool = sync.Pool{New: func() any { s := make([]item, 0, 16); return &s }}

// maxPooledItems is the largest array put back in itemPool.
const maxPooledItems = 1024

// getItems takes an empty item array from itemPool. Keep the pointer: it
// goes back with putItems (putting a new pointer would allocate).
func getItems() *[]item {
	p := itemPool.Get().(*[]item)
	*p = (*p)[:0]
	return p
}

// putItems returns s, already cleared, to itemPool through p (from
// getItems; s may have outgrown *p). No-op for a nil p.
func putItems(p *[]item, s []item) {
	if p != nil && cap(s) <= maxPooledItems {
		*p = s[:0]
		itemPool.Put(p)
	}
}
