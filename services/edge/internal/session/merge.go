package session

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// A coalesced task_progress is the newest of a task's progress events with
// the log lines of those it superseded (the last MaxCoalescedLogs of
// them). Those events — its parts, shared and read-only like every event a
// session gets from the hub — determine it, so a session keeps the parts
// (pointers) instead of building its own merged event, and every client of
// the room that coalesced the same parts gets the same bytes, encoded once
// for the node (Merges) instead of once per client.

// merged is a coalesced item's parts. It belongs to the one item that
// holds it: a session appends to it under its lock, and the writer reads it
// once the item is taken to be sent, after which nothing appends to it.
type merged struct {
	parts []*pb.Event // oldest first: pruned by add
	logs  int         // log lines in parts
}

// logsOf is the number of log lines of a progress event.
func logsOf(ev *pb.Event) int { return len(ev.GetTaskProgress().GetLogs()) }

// add appends newer and drops the parts that no longer contribute to the
// merged event: the previous last one when it has no log lines (its state
// is superseded), and the oldest while the others hold maxLogs lines
// without it. So at most maxLogs+1 parts are kept, and two clients that
// coalesced the same events keep the same parts whichever event each
// started from.
func (m *merged) add(newer *pb.Event, maxLogs int) {
	if n := len(m.parts); n > 0 && logsOf(m.parts[n-1]) == 0 {
		m.parts = m.parts[:n-1]
	}
	m.parts = append(m.parts, newer)
	m.logs += logsOf(newer)
	for len(m.parts) > 1 && m.logs-logsOf(m.parts[0]) >= maxLogs {
		m.logs -= logsOf(m.parts[0])
		m.parts[0] = nil
		m.parts = m.parts[1:]
	}
}

// event builds the merged event: the last part's, with the parts' log
// lines, the last maxLogs of them.
func (m *merged) event(maxLogs int) *pb.Event {
	last := m.parts[len(m.parts)-1]
	logs := make([]*pb.LogEntry, 0, min(m.logs, max(maxLogs, 0)))
	skip := max(m.logs-maxLogs, 0)
	for _, p := range m.parts {
		for _, l := range p.GetTaskProgress().GetLogs() {
			if skip > 0 {
				skip--
				continue
			}
			logs = append(logs, l)
		}
	}
	ev := proto.Clone(last).(*pb.Event)
	ev.GetTaskProgress().Logs = logs
	return ev
}

// Merges holds the encodings of coalesced events for a node's sessions,
// so that the clients of a room that coalesced the same progress events
// share one encoding (their release timers and writers run at nearly the
// same times, so most of them coalesce the same events). Safe for
// concurrent use; the zero value is ready, with DefaultMergesBytes.
//
// Entries are kept in two generations: when the current one holds
// MaxBytes (its encodings and the events they were made of, which an entry
// keeps alive) or is older than mergesAge, it becomes the previous one and
// the one before is dropped. So at most about twice MaxBytes are held, an
// encoding used again survives a turn (found in the previous generation,
// it moves to the current one), and on a busy node an entry lives a few
// seconds at most; the clients of a room use it within milliseconds.
// While it keeps entries, a timer turns a generation that got old without
// a new entry, so a node that stops coalescing lets them go within two
// ages. Close stops the timer.
type Merges struct {
	// MaxBytes bounds one generation; 0: DefaultMergesBytes. Not to be
	// changed once in use.
	MaxBytes int

	mu        sync.Mutex
	cur, prev map[mergeKey]*mergeEntry
	bytes     int           // entries in cur: their encodings and their events' sizes
	turned    time.Time     // when cur was made
	age       time.Duration // 0: mergesAge (tests shorten it)
	timer     *time.Timer   // runs expire while entries are kept; nil when none are
	closed    bool          // Close was called: nothing more is kept
}

// mergesAge is how old the current generation of Merges gets before it
// turns.
const mergesAge = time.Second

// DefaultMergesBytes is Merges.MaxBytes's default: 4 MiB per generation,
// about 100 merged events of 200 log lines with the events they were made
// of.
const DefaultMergesBytes = 4 << 20

// mergeKey finds the candidates for a merged event. Events are compared
// by identity (the hub's decoded events); the parts between the first and
// the last are compared when one is found (mergeEntry.parts).
type mergeKey struct {
	room        string
	seq         uint64 // the last part's
	first, last *pb.Event
	n           int
	mode        protocol.Mode
}

type mergeEntry struct {
	parts []*pb.Event // a copy: the item's own may grow after
	data  []byte
	size  int // what it counts for in Merges.bytes: data and the parts' encoded sizes
}

func keyOf(room string, seq uint64, m *merged, mode protocol.Mode) mergeKey {
	return mergeKey{room: room, seq: seq, first: m.parts[0], last: m.parts[len(m.parts)-1], n: len(m.parts), mode: mode}
}

// get returns the encoding of the merged event with parts m in room at
// seq, in mode, if another client's was kept.
func (c *Merges) get(k mergeKey, m *merged) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cur[k]
	if e == nil {
		if e = c.prev[k]; e != nil && slices.Equal(e.parts, m.parts) {
			delete(c.prev, k)
			c.keep(k, e)
		}
	}
	if e == nil || !slices.Equal(e.parts, m.parts) {
		return nil, false
	}
	return e.data, true
}

// put keeps data, the encoding of the merged event with parts m.
func (c *Merges) put(k mergeKey, m *merged, data []byte) {
	size := len(data)
	for _, p := range m.parts {
		size += proto.Size(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.cur[k]; old != nil {
		c.bytes -= old.size
	}
	c.keep(k, &mergeEntry{parts: slices.Clone(m.parts), data: data, size: size})
}

// keep adds e to the current generation, turning it first if it is full.
// Caller holds c.mu.
func (c *Merges) keep(k mergeKey, e *mergeEntry) {
	limit := c.MaxBytes
	if limit <= 0 {
		limit = DefaultMergesBytes
	}
	if c.closed {
		return
	}
	if c.cur == nil || len(c.cur) > 0 && (c.bytes+e.size > limit || time.Since(c.turned) > c.maxAge()) {
		c.turn()
	}
	c.cur[k] = e
	c.bytes += e.size
	if c.timer == nil {
		c.timer = time.AfterFunc(c.maxAge(), c.expire)
	}
}

func (c *Merges) maxAge() time.Duration { return cmp.Or(c.age, mergesAge) }

// turn makes the current generation the previous one. Caller holds c.mu.
func (c *Merges) turn() {
	c.prev, c.cur, c.bytes, c.turned = c.cur, make(map[mergeKey]*mergeEntry), 0, time.Now()
}

// expire runs on c.timer: it turns the current generation if it is old,
// and stops once nothing is kept.
func (c *Merges) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if time.Since(c.turned) >= c.maxAge() {
		c.turn()
	}
	if len(c.cur)+len(c.prev) == 0 {
		c.timer = nil
		return
	}
	c.timer.Reset(c.maxAge())
}

// Close stops c's timer and drops what it keeps; c keeps nothing after
// (lookups find nothing, sessions encode their own).
func (c *Merges) Close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.cur, c.prev, c.bytes = nil, nil, 0
}

// entries returns how many encodings c keeps (for tests; how many lookups
// found one is eventedge_coalesced_encodings_total{result="shared"}, which
// Session.encode counts).
func (c *Merges) entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
