package session

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// progressIn is a low-priority task_progress of task in project p's room
// (100 bytes encoded).
func progressIn(p string, seq uint64, task string) *hub.Outbound {
	return &hub.Outbound{Room: room.Project(p).String(), Seq: seq, Type: "task_progress", Task: task, Priority: pb.Priority_PRIORITY_LOW,
		Timestamp: time.Now(), Data: make([]byte, 100),
		Event: events.TaskProgress(room.Project(p), &pb.TaskProgress{TaskId: task, Progress: 0.5})}
}

// progressWithLog is progressIn("p1", seq, "t1") carrying the log entry
// line, encoded as the hub would (its size is the real one).
func progressWithLog(tb testing.TB, seq uint64, line *pb.LogEntry) *hub.Outbound {
	tb.Helper()
	o := progressIn("p1", seq, "t1")
	o.Event.GetTaskProgress().Logs = []*pb.LogEntry{line}
	data, err := protocol.JSON.Event(o.Room, seq, o.Event)
	if err != nil {
		tb.Fatal(err)
	}
	o.Data = data
	return o
}

// normalIn is a normal-priority task_updated in project p's room.
func normalIn(p string, seq uint64) *hub.Outbound {
	return &hub.Outbound{Room: room.Project(p).String(), Seq: seq, Type: "task_updated", Priority: pb.Priority_PRIORITY_NORMAL,
		Timestamp: time.Now(), Handled: time.Now(), Data: make([]byte, 100),
		Event: &pb.Event{Type: "task_updated", Priority: pb.Priority_PRIORITY_NORMAL}}
}

// stopReleases stops s's release timer when the test ends.
func stopReleases(tb testing.TB, s *Session) {
	tb.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		if s.flow.timer != nil {
			s.flow.timer.Stop()
		}
		s.mu.Unlock()
	})
}

// heldSize is what s holds, counted item by item.
func heldSize(s *Session) (n, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range s.flow.held.all() {
		n++
		bytes += it.size()
	}
	return n, bytes
}

// TestHeldProgressCountsTowardQueueBounds: throttled progress events are
// held, one per task, only while the queued and held messages (and bytes)
// together are within the queue's bounds. Past them, a client that keeps
// up (its queue below the high-water mark: only the rates hold its events)
// gets the next task's progress queued at once, over its limits; a client
// that is behind is closed as a slow consumer (it resumes from its last
// seq). Either way nothing is held without bound, and a newer progress of a
// task already held still supersedes it.
func TestHeldProgressCountsTowardQueueBounds(t *testing.T) {
	t.Run("keeping up", func(t *testing.T) {
		// 16 messages, high water at 12: at most 3 held (maxHeld).
		s := snapshotSession(Options{QueueMessages: 16, ClientRate: 0.001, ClientBurst: 1})
		stopReleases(t, s)
		s.Deliver(progressIn("p1", 1, "t0")) // spends the client's only token: queued
		takeAsWriter(s, nil)                 // and sent: the client keeps up
		for i := 1; i <= 3; i++ {
			s.Deliver(progressIn("p1", uint64(1+i), fmt.Sprint("t", i))) // over the budget: held
		}
		s.Deliver(progressIn("p1", 5, "t2")) // t2 is held: superseded, nothing more held
		snap := s.Snapshot()
		if snap.QueueMessages != 0 || snap.HeldMessages != 3 || snap.HeldBytes != 400 || snap.Throttled != 3 || snap.Coalesced != 1 || snap.Closing != "" {
			t.Fatalf("queue %d, held %d (%d bytes), throttled %d, coalesced %d, closing %q; want 0 queued, 3 held (400 bytes: t2's estimated), 3 throttled, 1 coalesced, open",
				snap.QueueMessages, snap.HeldMessages, snap.HeldBytes, snap.Throttled, snap.Coalesced, snap.Closing)
		}
		if n, bytes := heldSize(s); n != 3 || bytes != snap.HeldBytes {
			t.Fatalf("held items %d of %d bytes; the count says %+v", n, bytes, snap)
		}
		s.Deliver(progressIn("p1", 6, "t4")) // a fourth task: the 3 held go now, it is held in their place
		snap = s.Snapshot()
		if snap.Closing != "" || snap.QueueMessages != 3 || snap.HeldMessages != 1 || snap.Throttled != 4 {
			t.Fatalf("a task more than maxHeld: closing %q, queued %d, held %d, throttled %d; want open, 3 queued, 1 held, 4 throttled",
				snap.Closing, snap.QueueMessages, snap.HeldMessages, snap.Throttled)
		}
		s.Deliver(progressIn("p1", 7, "t5"), normalIn("p1", 8)) // as a hub run: one more held, then a normal event releases the room's
		s.Deliver(progressIn("p1", 9, "t6"))
		snap = s.Snapshot()
		if snap.Closing != "" || snap.QueueMessages != 6 || snap.HeldMessages != 1 {
			t.Fatalf("after the release: closing %q, queued %d, held %d; want open, 6 queued (2, 3, 5, 6, 7, 8), t6 held", snap.Closing, snap.QueueMessages, snap.HeldMessages)
		}
		if got := fmt.Sprint(takeAsWriter(s, []uint64{})); got != "[2 4 5 6 7 8]" {
			t.Fatalf("sent %s; want [2 4 5 6 7 8] (t2's 3 superseded by 5), in seq order", got)
		}
	})
	t.Run("behind", func(t *testing.T) {
		s := snapshotSession(Options{QueueMessages: 16, ClientRate: 0.001, ClientBurst: 1})
		stopReleases(t, s)
		for seq := range uint64(12) {
			s.Deliver(normalIn("p1", seq+1)) // never throttled; 12 of 16 is the high-water mark
		}
		for i := 1; i <= 3; i++ {
			s.Deliver(progressIn("p1", uint64(12+i), fmt.Sprint("t", i))) // above the high-water mark: held
		}
		if snap := s.Snapshot(); snap.HeldMessages != 3 || snap.Closing != "" {
			t.Fatalf("held %d, closing %q; want 3, open", snap.HeldMessages, snap.Closing)
		}
		s.Deliver(progressIn("p1", 16, "t4"))
		snap := s.Snapshot()
		if snap.Closing != "slow_consumer" || snap.Drops != (Drops{SlowConsumer: 1}) || snap.HeldMessages != 3 || snap.QueueMessages != 12 {
			t.Fatalf("one task more, behind: closing %q, drops %+v, held %d, queued %d; want slow_consumer, 1, 3, 12", snap.Closing, snap.Drops, snap.HeldMessages, snap.QueueMessages)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		// 1,000 bytes, high water at 750: at most 250 bytes held.
		s := snapshotSession(Options{QueueBytes: 1000, ClientRate: 0.001, ClientBurst: 1})
		stopReleases(t, s)
		s.Deliver(progressIn("p1", 1, "t0")) // queued: 100 bytes
		s.Deliver(progressIn("p1", 2, "t1")) // held: 100
		s.Deliver(progressIn("p1", 3, "t2")) // held: 200
		if snap := s.Snapshot(); snap.HeldMessages != 2 || snap.HeldBytes != 200 || snap.Closing != "" {
			t.Fatalf("held %d (%d bytes), closing %q; want 2 (200 bytes), open", snap.HeldMessages, snap.HeldBytes, snap.Closing)
		}
		s.Deliver(progressIn("p1", 4, "t3")) // 300 of 250 held, not behind: the held go, it is held
		if snap := s.Snapshot(); snap.Closing != "" || snap.HeldMessages != 1 || snap.QueueBytes != 300 {
			t.Fatalf("past the held byte bound: closing %q, held %d, queued %d bytes; want open, 1 held, 300 bytes queued", snap.Closing, snap.HeldMessages, snap.QueueBytes)
		}
	})
}

// TestHeldReleasedWhenDue: the release timer queues a held event once its
// task's rate allows it, and the held count goes back to nothing.
func TestHeldReleasedWhenDue(t *testing.T) {
	s := snapshotSession(Options{ProgressRate: 20}) // a token every 50 ms, burst 1
	stopReleases(t, s)
	s.Deliver(progressIn("p1", 1, "t1")) // the task's token: queued
	takeAsWriter(s, nil)
	s.Deliver(progressIn("p1", 2, "t1")) // over the rate: held
	if snap := s.Snapshot(); snap.HeldMessages != 1 || snap.QueueMessages != 0 {
		t.Fatalf("held %d, queued %d; want 1, 0", snap.HeldMessages, snap.QueueMessages)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		snap := s.Snapshot()
		if snap.HeldMessages == 0 && snap.QueueMessages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("held %d, queued %d 10 s later; want the held event released into the queue", snap.HeldMessages, snap.QueueMessages)
		}
	}
	s.mu.Lock()
	held, timer := s.flow.held, s.flow.timer
	s.mu.Unlock()
	if held != nil || timer != nil {
		t.Fatalf("after the release: held %+v, timer %v; want neither kept", held, timer)
	}
	if got := fmt.Sprint(takeAsWriter(s, []uint64{})); got != "[2]" {
		t.Fatalf("sent %s; want [2]", got)
	}
}

// TestHeldReleasedWithTheirRoom: an event of a room takes that room's held
// progress events out ahead of it, in seq order, and leaves other rooms'
// held; leaving a room forgets its held events and their size.
func TestHeldReleasedWithTheirRoom(t *testing.T) {
	s := snapshotSession(Options{ClientRate: 0.001, ClientBurst: 1})
	stopReleases(t, s)
	s.Deliver(progressIn("a", 1, "t1")) // spends the only token: queued
	s.Deliver(progressIn("a", 3, "t3")) // held
	s.Deliver(progressIn("a", 2, "t2")) // held (seqs out of order on purpose: the release sorts)
	s.Deliver(progressIn("b", 10, "t1"))
	s.Deliver(progressIn("c", 20, "t1"))
	if snap := s.Snapshot(); snap.HeldMessages != 4 || snap.QueueMessages != 1 {
		t.Fatalf("held %d, queued %d; want 4 held (a's 2, b's, c's), 1 queued", snap.HeldMessages, snap.QueueMessages)
	}
	s.Deliver(normalIn("b", 11)) // b's held progress goes out before it; a's and c's stay
	if snap := s.Snapshot(); snap.HeldMessages != 3 || snap.HeldBytes != 300 || snap.QueueMessages != 3 {
		t.Fatalf("after b's event: held %d (%d bytes), queued %d; want a's 2 and c's held (300 bytes), 3 queued", snap.HeldMessages, snap.HeldBytes, snap.QueueMessages)
	}
	s.Deliver(normalIn("a", 4)) // a's held (2, 3) go in before it
	// Each room's lane in seq order; between rooms, the higher priority
	// head, else the older: a1 (low, first queued), b10 (low, queued before
	// a2), b11 (normal), then a2, a3, a4.
	if got := fmt.Sprint(takeAsWriter(s, []uint64{})); got != "[1 10 11 2 3 4]" {
		t.Fatalf("sent %s; want [1 10 11 2 3 4] (a's held released in seq order ahead of 4)", got)
	}
	if snap := s.Snapshot(); snap.HeldMessages != 1 {
		t.Fatalf("after a's event: held %d; want c's 1", snap.HeldMessages)
	}
	s.mu.Lock()
	s.dropRoomLocked(room.Project("c").String())
	s.mu.Unlock()
	if snap := s.Snapshot(); snap.HeldMessages != 0 || snap.HeldBytes != 0 {
		t.Fatalf("after leaving c: held %d (%d bytes); want none", snap.HeldMessages, snap.HeldBytes)
	}
}

// TestCoalescedEncodedWhenSent: progress events coalesced into a held one
// are encoded once, when the merged event is taken to be sent: the frame
// carries the newest seq and every carried log line in order, and the
// queue's and the held events' byte counts come back to zero.
func TestCoalescedEncodedWhenSent(t *testing.T) {
	s := snapshotSession(Options{ProgressRate: 0.001})
	stopReleases(t, s)
	withLog := func(seq uint64) *hub.Outbound {
		return progressWithLog(t, seq, &pb.LogEntry{Line: fmt.Sprint("line-", seq)})
	}
	s.Deliver(withLog(1)) // queued
	takeAsWriter(s, nil)
	for seq := uint64(2); seq <= 40; seq++ {
		s.Deliver(withLog(seq)) // 2 held (over the task's rate), then coalesced into it
	}
	if snap := s.Snapshot(); snap.HeldMessages != 1 || snap.Coalesced != 38 {
		t.Fatalf("held %d, coalesced %d; want 1, 38", snap.HeldMessages, snap.Coalesced)
	}
	s.mu.Lock()
	h := s.flow.held.get("project:p1", "t1")
	stale := h.pending > 0 && !strings.Contains(string(h.data), `"seq":40,`)
	s.mu.Unlock()
	if !stale {
		t.Fatal("the held event was encoded as it was coalesced; want it encoded when sent")
	}
	s.Deliver(normalIn("p1", 41)) // releases the held event ahead of it
	s.mu.Lock()
	batch := s.takeLocked() // as the writer takes its next frame
	qBytes, held := s.q.bytes, s.flow.held
	s.mu.Unlock()
	frame, pooled := s.joinFrame(batch) // and builds it, outside the lock
	frames := strings.Split(string(frame), "\n")
	releaseFrame(pooled)
	if len(frames) != 2 {
		t.Fatalf("took %d messages; want the merged progress and the normal event", len(frames))
	}
	var lines []string
	for seq := 2; seq <= 40; seq++ {
		lines = append(lines, fmt.Sprintf(`{"line":"line-%d"}`, seq))
	}
	if want := `"seq":40,`; !strings.Contains(frames[0], want) || !strings.Contains(strings.ReplaceAll(frames[0], " ", ""), `"logs":[`+strings.Join(lines, ",")+`]`) {
		t.Fatalf("merged progress sent as %s; want seq 40 with lines 2…40", frames[0])
	}
	if qBytes != 0 || held != nil {
		t.Fatalf("after taking everything: %d bytes counted in the queue, held %+v; want 0, none", qBytes, held)
	}
}

// BenchmarkDeliverBesideHeldProgress: a normal event queued for a session
// holding 512 throttled progress events of 16 other rooms (a dashboard in
// busy project rooms with its budget spent), taken into a frame every 64
// events. An event finds its own room's held events only.
func BenchmarkDeliverBesideHeldProgress(b *testing.B) {
	s := snapshotSession(Options{QueueMessages: 4096, ClientRate: 0.001, ClientBurst: 1}) // room for 512 held
	stopReleases(b, s)
	s.Deliver(progressIn("r0", 1, "t0"))
	for i := range 512 {
		s.Deliver(progressIn(fmt.Sprint("r", i%16), uint64(2+i), fmt.Sprint("h", i)))
	}
	if snap := s.Snapshot(); snap.HeldMessages != 512 {
		b.Fatalf("held %d; want 512", snap.HeldMessages)
	}
	o := normalIn("live", 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o.Seq = uint64(i + 1)
		s.Deliver(o)
		if i%64 == 63 {
			takeAsWriter(s, nil)
		}
	}
}

// BenchmarkCoalesceIntoHeld: a task's progress events (one log line each)
// to a client that holds the task's progress (over its ProgressRate): each
// supersedes the held one, its log line appended. What every client in a
// room pays per event of a task reporting faster than ProgressRate.
func BenchmarkCoalesceIntoHeld(b *testing.B) {
	s := snapshotSession(Options{ProgressRate: 0.001})
	stopReleases(b, s)
	mk := func(seq uint64) *hub.Outbound {
		return progressWithLog(b, seq, &pb.LogEntry{Timestamp: timestamppb.Now(), Line: fmt.Sprintf("step %d: compiled 42 files in 1.3s", seq)})
	}
	s.Deliver(mk(1)) // queued
	takeAsWriter(s, nil)
	s.Deliver(mk(2)) // over the task's rate: held
	if snap := s.Snapshot(); snap.HeldMessages != 1 {
		b.Fatalf("held %d; want 1", snap.HeldMessages)
	}
	events := make([]*hub.Outbound, 256)
	for i := range events {
		events[i] = mk(uint64(3 + i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o := events[i%len(events)]
		o.Seq = uint64(3 + i)
		s.Deliver(o)
	}
}

// TestProgressOfHigherPriorityDeliveredAsIs: a task_progress published
// with a priority above low is neither coalesced nor throttled: every one
// is queued, in order, whatever the task's rate.
func TestProgressOfHigherPriorityDeliveredAsIs(t *testing.T) {
	s := snapshotSession(Options{ProgressRate: 0.001})
	stopReleases(t, s)
	for seq := uint64(1); seq <= 3; seq++ {
		o := progressIn("p1", seq, "t1")
		o.Priority = pb.Priority_PRIORITY_NORMAL
		s.Deliver(o)
	}
	if snap := s.Snapshot(); snap.QueueMessages != 3 || snap.Coalesced != 0 || snap.Throttled != 0 || snap.HeldMessages != 0 {
		t.Fatalf("queued %d, coalesced %d, throttled %d, held %d; want all 3 queued, none coalesced, throttled or held",
			snap.QueueMessages, snap.Coalesced, snap.Throttled, snap.HeldMessages)
	}
	if got := fmt.Sprint(takeAsWriter(s, []uint64{})); got != "[1 2 3]" {
		t.Fatalf("sent %s; want [1 2 3]", got)
	}
}

// TestClientBudgetAcrossEventKinds: the client's budget is one, whatever
// spends it: normal events (never refused) and low ones (refused over it)
// in turn let through no more low events than the budget's burst and rate
// allow — also when the normal events come with an older fan-out time
// than the low ones (rooms on different shards): a limiter told an
// earlier time would move its clock back and credit the difference again
// (rateTime).
func TestClientBudgetAcrossEventKinds(t *testing.T) {
	s := snapshotSession(Options{ClientRate: 100, ClientBurst: 100, QueueMessages: 4096})
	stopReleases(t, s)
	start := time.Now()
	const rounds = 100
	for i := range rounds {
		normal := normalIn("p1", uint64(2*i+1))
		normal.Handled = time.Now().Add(-50 * time.Millisecond) // fanned out 50 ms before the low event
		s.Deliver(normal)
		s.Deliver(lowOutbound(uint64(2*i+2), ""))
	}
	// The burst and what the rate added since, shared by the two kinds
	// in turn: about half to the low events.
	allowed := (100+int(100*time.Since(start).Seconds()))/2 + 2
	if low := s.Snapshot().QueueMessages - rounds; low > allowed {
		t.Fatalf("%d low-priority events queued beside %d normal ones in %s; the budget (burst 100, 100/s) allows at most %d",
			low, rounds, time.Since(start).Round(time.Millisecond), allowed)
	}
}

// TestUnixNanoOutOfRange: an event timestamp an int64 of nanoseconds
// cannot hold is no latency sample (0), not a wrapped one.
func TestUnixNanoOutOfRange(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 0},
		{now, now.UnixNano()},
	} {
		if got := unixNano(tc.t); got != tc.want {
			t.Errorf("unixNano(%s) = %d; want %d", tc.t, got, tc.want)
		}
	}
}
