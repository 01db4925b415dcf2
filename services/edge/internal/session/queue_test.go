package session

import (
	"fmt"
	"testing"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

func ev(room string, seq uint64, prio pb.Priority) item {
	return item{room: room, seq: seq, prio: prio, data: []byte(fmt.Sprintf("%s/%d", room, seq))}
}

func names(items []item) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.data))
	}
	return out
}

// TestQueueOrder: control messages first, then rooms by the priority of
// their oldest event (oldest first on a tie), and each room in seq order
// even when a later event of it has a higher priority.
func TestQueueOrder(t *testing.T) {
	q := newQueue()
	q.push(ev("low", 1, pb.Priority_PRIORITY_LOW))
	q.push(ev("normal", 2, pb.Priority_PRIORITY_NORMAL))
	q.push(ev("low", 3, pb.Priority_PRIORITY_HIGH)) // behind a low event of its room
	q.push(ev("high", 4, pb.Priority_PRIORITY_HIGH))
	q.push(ev("normal2", 5, pb.Priority_PRIORITY_NORMAL))
	q.pushControl([]byte("reply"))
	if q.msgs != 6 {
		t.Fatalf("msgs = %d", q.msgs)
	}
	got := names(q.take(nil, 1<<20))
	want := []string{"reply", "high/4", "normal/2", "normal2/5", "low/1", "low/3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	if q.msgs != 0 || q.bytes != 0 {
		t.Fatalf("after take: msgs %d bytes %d", q.msgs, q.bytes)
	}
}

// TestQueueTakeBounded: take stops at maxBytes but always takes one.
func TestQueueTakeBounded(t *testing.T) {
	q := newQueue()
	for i := range 10 {
		q.push(ev("r", uint64(i+1), pb.Priority_PRIORITY_NORMAL)) // 3-4 bytes each
	}
	if got := q.take(nil, 10); len(got) != 3 {
		t.Fatalf("took %d items within 10 bytes, want 3", len(got))
	}
	if got := q.take(nil, 1); len(got) != 1 {
		t.Fatalf("took %d items within 1 byte, want 1", len(got))
	}
	if q.msgs != 6 {
		t.Fatalf("msgs = %d, want 6", q.msgs)
	}
}

// TestQueueKillAndFind: a coalesced item is skipped and uncounted.
func TestQueueKillAndFind(t *testing.T) {
	q := newQueue()
	a := ev("r", 1, pb.Priority_PRIORITY_LOW)
	a.task = "t1"
	q.push(a)
	q.push(ev("r", 2, pb.Priority_PRIORITY_NORMAL))
	old := q.findProgress("r", "t1")
	if old == nil || old.seq != 1 {
		t.Fatalf("findProgress = %+v", old)
	}
	q.kill(old)
	if q.findProgress("r", "t1") != nil {
		t.Fatal("killed item still found")
	}
	if got := names(q.take(nil, 1<<20)); fmt.Sprint(got) != "[r/2]" {
		t.Fatalf("took %v", got)
	}
	q.forget()
	if l := q.lane("r"); l == nil || len(l.items) != 0 || l.head != 0 {
		t.Fatalf("lane after forget: %+v, want kept and empty", l)
	}
	q.dropRoom("r")
	if len(q.lanes) != 0 {
		t.Fatalf("%d lanes left after dropRoom", len(q.lanes))
	}
}

// TestQueueForgetReleasesBacklog: an emptied lane gives its backing array
// back to the pool (an idle session holds none), and takes one again for
// its room's next event.
func TestQueueForgetReleasesBacklog(t *testing.T) {
	q := newQueue()
	for i := range 100 {
		q.push(ev("big", uint64(i+1), pb.Priority_PRIORITY_NORMAL))
	}
	q.push(ev("small", 1, pb.Priority_PRIORITY_NORMAL))
	if got := len(q.take(nil, 1<<30)); got != 101 {
		t.Fatalf("took %d, want 101", got)
	}
	q.forget()
	if c := cap(q.lane("big").items); c != 0 {
		t.Fatalf("backlog lane keeps cap %d, want 0", c)
	}
	if c := cap(q.lane("small").items); c != 0 {
		t.Fatalf("small lane keeps cap %d, want 0", c)
	}
	q.push(ev("small", 2, pb.Priority_PRIORITY_NORMAL))
	if got := names(q.take(nil, 1<<20)); fmt.Sprint(got) != "[small/2]" {
		t.Fatalf("took %v", got)
	}
}

// BenchmarkQueuePushTake: queueing an event and taking it into a frame,
// the per-delivery cost of a client's queue, across 4 rooms.
func BenchmarkQueuePushTake(b *testing.B) {
	q := newQueue()
	rooms := []string{"project:a", "project:b", "project:c", "user:u1"}
	data := make([]byte, 200)
	batch := make([]item, 0, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for range 16 {
			q.push(item{room: rooms[i%len(rooms)], seq: uint64(i), prio: pb.Priority_PRIORITY_NORMAL, data: data})
			i++
		}
		batch = q.take(batch[:0], 64<<10)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/16, "ns/event")
}
