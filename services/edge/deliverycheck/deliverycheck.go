package deliverycheck

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/eventedge/eventedge/services/edge/client"
)

// Log records what was published: per room, the seqs of its events. It is
// safe for concurrent use. The zero value is not usable; call NewLog.
type Log struct {
	mu    sync.Mutex
	rooms map[string]*logRoom // guarded by mu
}

type logRoom struct {
	seqs []uint64
	// ascending reports whether seqs is strictly ascending. Concurrent
	// publishers may record their acks out of order, or record a retried
	// publish twice; the room is sorted and de-duplicated on first read.
	ascending bool
}

// NewLog returns an empty Log.
func NewLog() *Log {
	return &Log{rooms: make(map[string]*logRoom)}
}

// Add records that the event stored at seq was published to room. Adding
// the same seq to a room twice records it once.
func (l *Log) Add(room string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rooms[room]
	if r == nil {
		r = &logRoom{ascending: true}
		l.rooms[room] = r
	}
	if n := len(r.seqs); n > 0 && seq <= r.seqs[n-1] {
		r.ascending = false
	}
	r.seqs = append(r.seqs, seq)
}

// Rooms returns the rooms with at least one published event, sorted.
func (l *Log) Rooms() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.rooms))
}

// Seqs returns a copy of the seqs published to room, ascending, each once;
// nil if none.
func (l *Log) Seqs(room string) []uint64 {
	return l.appendSeqs(nil, room)
}

// appendSeqs appends the seqs of room, ascending, to dst.
func (l *Log) appendSeqs(dst []uint64, room string) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rooms[room]
	if r == nil {
		return dst
	}
	if !r.ascending {
		slices.Sort(r.seqs)
		r.seqs = slices.Compact(r.seqs)
		r.ascending = true
	}
	return append(dst, r.seqs...)
}

// Received records what one client received, per room, in arrival order. It
// is safe for concurrent use; arrivals of one room are recorded in the order
// the Add calls happen, so add them from the goroutine that reads the
// client's connection. The zero value is not usable; call NewReceived.
type Received struct {
	client string // static after construction

	mu    sync.Mutex
	rooms map[string]*receivedRoom // guarded by mu
}

type receivedRoom struct {
	arrivals []uint64
	resetAt  uint64 // the highest reset seen; 0 = none
}

// NewReceived returns an empty record for the named client. The name is
// only copied into Reports.
func NewReceived(client string) *Received {
	return &Received{client: client, rooms: make(map[string]*receivedRoom)}
}

// Add records that the event at seq of room arrived.
func (r *Received) Add(room string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.room(room)
	rr.arrivals = append(rr.arrivals, seq)
}

// Record records m, a message of the Go client (an event of client.Conn's
// Messages or client.Client's Events): an event as an arrival (Add), a
// reset as a reset (Reset); other ops are ignored. It reports whether m
// was an event.
func (r *Received) Record(m *client.Message) bool {
	switch m.Op {
	case "event":
		r.Add(m.Room, m.Seq)
		return true
	case "reset":
		r.Reset(m.Room, m.Seq)
	}
	return false
}

// Reset records that the client was told its history for room was truncated
// at seq at (the server's reset): events of room with seq <= at are then not
// expected from it, later ones still are. Of several resets of a room the
// highest counts. A reset changes only what is lost; arrivals are judged
// for order and duplicates as before.
func (r *Received) Reset(room string, at uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.room(room)
	rr.resetAt = max(rr.resetAt, at)
}

// room returns the record of name, creating it. r.mu must be held.
func (r *Received) room(name string) *receivedRoom {
	rr := r.rooms[name]
	if rr == nil {
		rr = &receivedRoom{}
		r.rooms[name] = rr
	}
	return rr
}

func (r *Received) roomNames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Collect(maps.Keys(r.rooms))
}

// appendArrivals appends the arrivals of room to dst and returns it with the
// room's reset.
func (r *Received) appendArrivals(dst []uint64, room string) ([]uint64, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := r.rooms[room]
	if rr == nil {
		return dst, 0
	}
	return append(dst, rr.arrivals...), rr.resetAt
}

// Expectation says which events of one room a client must have received.
// Several Expectations of the same room add up: a seq is expected if any of
// them expects it.
type Expectation struct {
	// Room is the room the expectation is about.
	Room string
	// From is the seq after which the client is expected to have every
	// event of Room (exclusive). 0 = from the first published.
	From uint64
	// Until, when non-zero, bounds the expectation (inclusive). 0 = up to
	// the last published event of Room. Until <= From expects nothing.
	Until uint64
	// Coalesced, when non-nil, reports seqs that may legitimately be
	// missing, e.g. low-priority events superseded by a later one. Check
	// calls it once per published seq of the window, from its own
	// goroutine. Nil = every seq of the window is expected.
	Coalesced func(seq uint64) bool
}

// Report is the verdict on one client. Every list is ascending; seqs are
// stream positions, unique across rooms, so each names one event.
// Expected == Delivered + len(Lost).
type Report struct {
	Client string
	// Expected counts the distinct seqs the Expectations ask for, leaving
	// out coalesced seqs and seqs at or below a reset of their room.
	// Delivered counts those of them that arrived at least once.
	Expected, Delivered int
	// Lost lists the expected seqs that never arrived.
	Lost []uint64
	// Duplicates lists a seq once per extra copy that arrived.
	Duplicates []uint64
	// OutOfOrder lists the seqs whose first arrival came after a larger
	// seq of the same room.
	OutOfOrder []uint64
	// Unexpected lists, once per arrival, the seqs that arrived in a room
	// they were never published to.
	Unexpected []uint64
}

// OK reports whether nothing was lost, duplicated, out of order or
// unexpected.
func (r Report) OK() bool {
	return r.problems() == 0
}

func (r Report) problems() int {
	return len(r.Lost) + len(r.Duplicates) + len(r.OutOfOrder) + len(r.Unexpected)
}

// maxListed is how many offending seqs String shows per category.
const maxListed = 5

// String returns a one-line summary with the first few offending seqs of
// each category that has any, e.g.
//
//	client "c1" FAIL: expected 10, delivered 8; lost 2 [3 7]; duplicates 1 [4]
func (r Report) String() string {
	var b strings.Builder
	verdict := "ok"
	if !r.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "client %q %s: expected %d, delivered %d", r.Client, verdict, r.Expected, r.Delivered)
	writeList(&b, "lost", r.Lost)
	writeList(&b, "duplicates", r.Duplicates)
	writeList(&b, "out-of-order", r.OutOfOrder)
	writeList(&b, "unexpected", r.Unexpected)
	return b.String()
}

func writeList(b *strings.Builder, name string, seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	fmt.Fprintf(b, "; %s %d [", name, len(seqs))
	for i, seq := range seqs[:min(len(seqs), maxListed)] {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(b, seq)
	}
	if len(seqs) > maxListed {
		b.WriteString(" ...")
	}
	b.WriteByte(']')
}

// Per published seq of the room being checked.
const (
	seen     uint8 = 1 << iota // arrived at least once
	expected                   // asked for by an Expectation
)

// Check judges what got received against what log says was published, under
// exp. Rooms the client received are checked for duplicates, order and
// unexpected seqs whether or not an Expectation names them; only rooms named
// by an Expectation can have lost events. With no Expectation nothing is
// lost.
//
// Check takes O(n log n) time for n published and received events and memory
// for one room at a time besides the Report. It calls no Coalesced while
// holding a lock of log or got.
func Check(log *Log, got *Received, exp ...Expectation) Report {
	rep := Report{Client: got.client}
	byRoom := make(map[string][]Expectation)
	for _, e := range exp {
		byRoom[e.Room] = append(byRoom[e.Room], e)
	}
	rooms := append(got.roomNames(), slices.Collect(maps.Keys(byRoom))...)
	slices.Sort(rooms)
	rooms = slices.Compact(rooms)

	// Buffers reused from room to room.
	var (
		pub, arrivals []uint64
		state         []uint8 // per index of pub: seen | expected
	)
	for _, room := range rooms {
		pub = log.appendSeqs(pub[:0], room)
		var resetAt uint64
		arrivals, resetAt = got.appendArrivals(arrivals[:0], room)
		state = slices.Grow(state[:0], len(pub))[:len(pub)]
		clear(state)

		var highest uint64 // highest published seq arrived so far
		next := 0          // index in pub of the seq that would arrive next in order
		for _, seq := range arrivals {
			i := next
			if i >= len(pub) || pub[i] != seq {
				var found bool
				if i, found = slices.BinarySearch(pub, seq); !found {
					rep.Unexpected = append(rep.Unexpected, seq)
					continue
				}
			}
			next = i + 1
			switch {
			case state[i]&seen != 0:
				rep.Duplicates = append(rep.Duplicates, seq)
			case seq < highest:
				state[i] |= seen
				rep.OutOfOrder = append(rep.OutOfOrder, seq)
			default:
				state[i] |= seen
				highest = seq
			}
		}

		for _, e := range byRoom[room] {
			lo := indexAfter(pub, max(e.From, resetAt))
			hi := len(pub)
			if e.Until != 0 {
				hi = indexAfter(pub, e.Until)
			}
			for i := lo; i < hi; i++ {
				if e.Coalesced == nil || !e.Coalesced(pub[i]) {
					state[i] |= expected
				}
			}
		}
		for i, st := range state {
			if st&expected == 0 {
				continue
			}
			rep.Expected++
			if st&seen != 0 {
				rep.Delivered++
			} else {
				rep.Lost = append(rep.Lost, pub[i])
			}
		}
	}
	slices.Sort(rep.Lost)
	slices.Sort(rep.Duplicates)
	slices.Sort(rep.OutOfOrder)
	slices.Sort(rep.Unexpected)
	return rep
}

// indexAfter returns the index of the first seq in the ascending pub that is
// greater than seq.
func indexAfter(pub []uint64, seq uint64) int {
	i, found := slices.BinarySearch(pub, seq)
	if found {
		i++
	}
	return i
}

// Summary aggregates the Reports of many clients.
type Summary struct {
	// Clients counts the reports; the other counts are their totals, each
	// list counted by its length.
	Clients, Expected, Delivered, Lost, Duplicates, OutOfOrder, Unexpected int
	// Failed holds every report that is not OK, worst first: most offending
	// seqs, then by Client.
	Failed []Report
}

// Summarize aggregates reports. It does not modify them.
func Summarize(reports []Report) Summary {
	s := Summary{Clients: len(reports)}
	for _, r := range reports {
		s.Expected += r.Expected
		s.Delivered += r.Delivered
		s.Lost += len(r.Lost)
		s.Duplicates += len(r.Duplicates)
		s.OutOfOrder += len(r.OutOfOrder)
		s.Unexpected += len(r.Unexpected)
		if !r.OK() {
			s.Failed = append(s.Failed, r)
		}
	}
	slices.SortStableFunc(s.Failed, func(a, b Report) int {
		return cmp.Or(cmp.Compare(b.problems(), a.problems()), strings.Compare(a.Client, b.Client))
	})
	return s
}

// OK reports whether every client's report was OK.
func (s Summary) OK() bool {
	return len(s.Failed) == 0
}

// maxWorst is how many failed clients Summary.String describes.
const maxWorst = 3

// String returns the totals on one line, followed, when clients failed, by
// one line for each of the worst few.
func (s Summary) String() string {
	var b strings.Builder
	verdict := "ok"
	if !s.OK() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%d clients %s: expected %d, delivered %d; lost %d, duplicates %d, out-of-order %d, unexpected %d",
		s.Clients, verdict, s.Expected, s.Delivered, s.Lost, s.Duplicates, s.OutOfOrder, s.Unexpected)
	if len(s.Failed) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "; %d failed", len(s.Failed))
	if len(s.Failed) > maxWorst {
		fmt.Fprintf(&b, ", worst %d", maxWorst)
	}
	b.WriteByte(':')
	for _, r := range s.Failed[:min(len(s.Failed), maxWorst)] {
		b.WriteString("\n  ")
		b.WriteString(r.String())
	}
	return b.String()
}
