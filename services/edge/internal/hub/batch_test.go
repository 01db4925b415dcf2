package hub

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// inOrder is the message the stream re-publishes for ev at seq, after prev
// (the previous sequence of the same subject: no gap when it is the room's
// last).
func inOrder(tb testing.TB, ev *pb.Event, seq, prev uint64) *nats.Msg {
	m := liveMsg(tb, ev, seq)
	m.Header.Set(events.HeaderLastSequence, strconv.FormatUint(prev, 10))
	return m
}

func updated(r room.Room) *pb.Event {
	return events.TaskUpdated(r, "u1", "t1", &pb.Task{Title: "x"}, "title")
}

// joinRoom subscribes n keeping sinks to r, every other one holding
// logs:read.
func joinRoom(tb testing.TB, h *Hub, r room.Room, n int) []*sink {
	tb.Helper()
	return joinSinks(tb, h, r, n, true, "p1", "p2")
}

// tasksSink is a keeping sink of user u1 with tasks:read in projects.
func tasksSink(projects ...string) *sink {
	return &sink{claims: &auth.Claims{Subject: "u1", Permissions: []string{auth.PermTasksRead}, Projects: projects}, keep: true}
}

// mustJoin joins sub to its room.
func mustJoin(tb testing.TB, h *Hub, sub *Subscription) {
	tb.Helper()
	if err := h.Join(context.Background(), sub, 0, nil); err != nil {
		tb.Fatal(err)
	}
}

func seqs(got []*Outbound) []uint64 {
	out := make([]uint64, len(got))
	for i, o := range got {
		out[i] = o.Seq
	}
	return out
}

// TestDispatchRunDeliversOncePerSubscriber: consecutive live events of one
// room taken from the channel together reach each subscriber in one
// Deliver, in order, each subscriber's permissions still applied per
// event; the room's position is the run's last.
func TestDispatchRunDeliversOncePerSubscriber(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	sinks := joinRoom(t, h, p1, 6)
	dispatchAll(h,
		inOrder(t, updated(p1), 1, 0),
		inOrder(t, logEvent(), 2, 1), // logs:read only
		inOrder(t, updated(p1), 3, 2),
		inOrder(t, updated(p1), 4, 3))
	for i, s := range sinks {
		want := []uint64{1, 3, 4}
		if i%2 == 0 {
			want = []uint64{1, 2, 3, 4}
		}
		if got := seqs(s.got); !slices.Equal(got, want) || s.calls != 1 {
			t.Errorf("subscriber %d: seqs %v in %d Deliver calls, want %v in 1", i, got, s.calls, want)
		}
	}
	if got := h.room(p1.LiveSubject()).lastSeq.Load(); got != 4 {
		t.Fatalf("room position %d, want 4", got)
	}
	var run dto.Metric
	if err := h.m.FanoutRun.(prometheus.Metric).Write(&run); err != nil {
		t.Fatal(err)
	}
	if n, sum := run.GetHistogram().GetSampleCount(), run.GetHistogram().GetSampleSum(); n != 1 || sum != 4 {
		t.Fatalf("eventedge_fanout_run_events: %d runs of %v events in all, want 1 run of 4", n, sum)
	}
}

// TestDispatchRunsSplitByRoom: a batch interleaving two rooms is fanned out
// as runs of consecutive events of one room, so each room's subscribers
// get its events in stream order, and a duplicate inside a run is dropped.
func TestDispatchRunsSplitByRoom(t *testing.T) {
	h := newHub(t)
	p1, p2 := room.Project("p1"), room.Project("p2")
	s1, s2 := joinRoom(t, h, p1, 2), joinRoom(t, h, p2, 2)
	dispatchAll(h,
		inOrder(t, updated(p1), 1, 0),
		inOrder(t, updated(p1), 2, 1),
		inOrder(t, updated(p1), 2, 1), // the same message again
		inOrder(t, updated(p2), 1, 0),
		inOrder(t, updated(p1), 3, 2),
		inOrder(t, updated(p2), 2, 1))
	for i, s := range s1 {
		if got := seqs(s.got); !slices.Equal(got, []uint64{1, 2, 3}) || s.calls != 2 {
			t.Errorf("p1 subscriber %d: seqs %v in %d calls, want [1 2 3] in 2", i, got, s.calls)
		}
	}
	for i, s := range s2 {
		if got := seqs(s.got); !slices.Equal(got, []uint64{1, 2}) || s.calls != 2 {
			t.Errorf("p2 subscriber %d: seqs %v in %d calls, want [1 2] in 2", i, got, s.calls)
		}
	}
}

// TestDispatchRunSkipsInvalidEvent: an invalid event inside a run reaches
// no one but still moves the room's position, so the next event (whose
// previous sequence is the invalid one) is not taken for a gap.
func TestDispatchRunSkipsInvalidEvent(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	sinks := joinRoom(t, h, p1, 2)
	bad := inOrder(t, updated(p1), 2, 1)
	bad.Data = []byte("not protobuf")
	dispatchAll(h, inOrder(t, updated(p1), 1, 0), bad, inOrder(t, updated(p1), 3, 2))
	dispatchAll(h, inOrder(t, updated(p1), 4, 3))
	rs := h.room(p1.LiveSubject())
	for i, s := range sinks {
		if got := seqs(s.got); !slices.Equal(got, []uint64{1, 3, 4}) {
			t.Errorf("subscriber %d: seqs %v, want [1 3 4]", i, got)
		}
	}
	if rs.lastSeq.Load() != 4 || rs.repairs.Load() != 0 {
		t.Fatalf("room position %d, repairs %d: want 4 and none", rs.lastSeq.Load(), rs.repairs.Load())
	}
}

// BenchmarkFanout1000Run8: runs of 8 events to 1,000 subscribers of one
// room (half with the events' permission), as a shard fans out the
// events that waited in its channel while the writers ran. Compare
// BenchmarkFanout1000 (runs of one).
func BenchmarkFanout1000Run8(b *testing.B) {
	h, sinks, rs, body := benchRoom(b)
	seq, sh := uint64(0), &shard{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		sh.run = rs
		for range 8 {
			seq++
			sh.evs = append(sh.evs, liveEvent{seq: seq, body: body, contentType: events.ContentTypeProtobuf})
		}
		h.flush(sh)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq)/500, "ns/delivery")
	if sinks[0].count != int(seq) {
		b.Fatalf("subscriber 0 received %d of %d events", sinks[0].count, seq)
	}
}

// TestShardTakesWaitingEventsAsRuns drives a real shard goroutine: while
// it is held up (by a room that is not ready yet), 100 events of p1 wait
// in its channel; it then takes them at most maxBatch at a time and fans
// each batch out as one run, flushing at the batch's end. Every
// subscriber gets all 100 in order, in a few Deliver calls, not 100.
func TestShardTakesWaitingEventsAsRuns(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	sinks := joinRoom(t, h, p1, 4)
	ch := h.shardFor(p1.LiveSubject())

	// A room whose NATS subscription is still being set up: the shard
	// waits for it (ready) before dispatching its message.
	stall := &roomState{name: "project:stall", ready: make(chan struct{}), subs: map[*Subscription]struct{}{}}
	h.mu.Lock()
	h.rooms["test.stall"] = stall
	h.mu.Unlock()
	ch <- &nats.Msg{Subject: "test.stall", Header: nats.Header{}} // no sequence: dropped once ready
	taken := time.Now().Add(10 * time.Second)
	for len(ch) > 0 { // until the shard has taken it
		if time.Now().After(taken) {
			t.Fatal("the shard did not take the stalled room's message")
		}
		runtime.Gosched()
	}
	const n = 100
	for seq := uint64(1); seq <= n; seq++ {
		ch <- inOrder(t, updated(p1), seq, seq-1)
	}
	close(stall.ready)

	deadline := time.Now().Add(10 * time.Second)
	for {
		sinks[0].mu.Lock()
		got := sinks[0].count
		sinks[0].mu.Unlock()
		if got == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber 0 received %d of %d events", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	for i, s := range sinks {
		s.mu.Lock()
		got, calls := seqs(s.got), s.calls
		s.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("subscriber %d: seqs %v, want 1…%d in order", i, got, n)
		}
		// 64 + 36 when all 100 waited; one more when the first of them
		// joined the stalled room's batch (it was taken as the shard
		// took that message).
		if calls < (n+maxBatch-1)/maxBatch || calls > (n+maxBatch-1)/maxBatch+1 {
			t.Errorf("subscriber %d: %d Deliver calls for %d events taken at most %d at a time", i, calls, n, maxBatch)
		}
	}
	h.mu.Lock()
	delete(h.rooms, "test.stall")
	h.mu.Unlock()
}

// TestDispatchGapInsideRun: a gap in the middle of a batch fans out the
// run so far, repairs the gap from the stream, and goes on with a new run;
// a live message the repair already delivered is a duplicate.
func TestDispatchGapInsideRun(t *testing.T) {
	h, js := newHubWith(t, "defaults:\n  ttl: 0s\n")
	p1 := room.Project("p1")
	for range 5 { // stream seqs 1…5, stored before the room has a live subscription
		if _, err := events.Publish(context.Background(), js, updated(p1)); err != nil {
			t.Fatal(err)
		}
	}
	sinks := joinRoom(t, h, p1, 2)
	rs := h.room(p1.LiveSubject())
	rs.mu.Lock() // as if the node and its members had handled none of them yet
	rs.lastSeq.Store(0)
	for sub := range rs.subs {
		sub.mu.Lock()
		sub.pos = 0
		sub.mu.Unlock()
	}
	rs.mu.Unlock()
	dispatchAll(h,
		inOrder(t, updated(p1), 1, 0),
		inOrder(t, updated(p1), 2, 1),
		inOrder(t, updated(p1), 5, 4), // 3 and 4 did not arrive
		inOrder(t, updated(p1), 3, 2), // arrives late: the repair delivered it
		inOrder(t, updated(p1), 6, 5))
	for i, s := range sinks {
		if got := seqs(s.got); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6}) || s.calls != 4 {
			t.Errorf("subscriber %d: seqs %v in %d calls, want 1…6 in 4 ([1 2], 3, 4, [5 6])", i, got, s.calls)
		}
		for _, o := range s.got {
			if o.Repaired != (o.Seq == 3 || o.Seq == 4) {
				t.Errorf("subscriber %d: seq %d repaired %v", i, o.Seq, o.Repaired)
			}
		}
	}
	if rs.repairs.Load() != 1 || rs.lastSeq.Load() != 6 {
		t.Fatalf("repairs %d, position %d: want 1 and 6", rs.repairs.Load(), rs.lastSeq.Load())
	}
}

// TestDispatchJoinBeforeRunFlushed: a member that joins while a run is
// pending starts at the room's position before the run, so it receives
// the whole run.
func TestDispatchJoinBeforeRunFlushed(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	old := joinRoom(t, h, p1, 1)
	sh := &shard{}
	h.dispatch(sh, inOrder(t, updated(p1), 1, 0))
	h.dispatch(sh, inOrder(t, updated(p1), 2, 1))
	late := joinRoom(t, h, p1, 1)
	h.flush(sh)
	for name, s := range map[string]*sink{"member": old[0], "late joiner": late[0]} {
		if got := seqs(s.got); !slices.Equal(got, []uint64{1, 2}) || s.calls != 1 {
			t.Errorf("%s: seqs %v in %d calls, want [1 2] in 1", name, got, s.calls)
		}
	}
}

// TestDispatchControlInsideRun: a control request (resync) between two
// events of a room fans out the run before it is handled.
func TestDispatchControlInsideRun(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	sinks := joinRoom(t, h, p1, 1)
	resync := &nats.Msg{Subject: p1.LiveSubject(), Header: nats.Header{}}
	resync.Header.Set(controlHeader, "resync")
	dispatchAll(h, inOrder(t, updated(p1), 1, 0), inOrder(t, updated(p1), 2, 1), resync, inOrder(t, updated(p1), 3, 2))
	if got := seqs(sinks[0].got); !slices.Equal(got, []uint64{1, 2, 3}) || sinks[0].calls != 2 {
		t.Fatalf("seqs %v in %d calls, want [1 2] then [3]", got, sinks[0].calls)
	}
}

// TestDispatchRunWhileCatchingUp: a subscription whose replay runs holds
// a run's events back in its pending list instead of delivering them.
func TestDispatchRunWhileCatchingUp(t *testing.T) {
	h := newHub(t)
	p1 := room.Project("p1")
	s := tasksSink("p1")
	sub := NewSubscription(p1, s, nil, true)
	mustJoin(t, h, sub)
	dispatchAll(h, inOrder(t, updated(p1), 1, 0), inOrder(t, updated(p1), 2, 1))
	sub.mu.Lock()
	pending := seqs(sub.pending)
	sub.mu.Unlock()
	if s.calls != 0 || !slices.Equal(pending, []uint64{1, 2}) {
		t.Fatalf("%d Deliver calls, pending %v: want none delivered, [1 2] pending", s.calls, pending)
	}
}

// TestDispatchOneSinkTwoRooms: a client in two rooms gets their events in
// the order the shard took them.
func TestDispatchOneSinkTwoRooms(t *testing.T) {
	h := newHub(t)
	p1, p2 := room.Project("p1"), room.Project("p2")
	s := tasksSink("p1", "p2")
	for _, r := range []room.Room{p1, p2} {
		mustJoin(t, h, NewSubscription(r, s, nil, false))
	}
	dispatchAll(h, inOrder(t, updated(p1), 1, 0), inOrder(t, updated(p2), 1, 0), inOrder(t, updated(p1), 2, 1), inOrder(t, updated(p2), 2, 1))
	var got []string
	for _, o := range s.got {
		got = append(got, fmt.Sprint(o.Room, "#", o.Seq))
	}
	if want := []string{"project:p1#1", "project:p2#1", "project:p1#2", "project:p2#2"}; !slices.Equal(got, want) || s.calls != 4 {
		t.Fatalf("got %v in %d calls, want %v in 4", got, s.calls, want)
	}
}
