package session

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// newRoomEnv is a node's Env for sessions made by roomSessions, sharing
// coalesced encodings (Merges).
func newRoomEnv(tb testing.TB, opts Options) *Env {
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop(), Options: opts.WithDefaults(), Merges: &Merges{}}
	tb.Cleanup(env.Merges.Close) // its timer
	return env
}

// roomSessions returns n sessions of env in mode, each a client of project
// p1 whose writer is the test (takeAsWriter, takeFrame).
func roomSessions(env *Env, n int, mode protocol.Mode) []*Session {
	out := make([]*Session, n)
	for i := range out {
		s := New(env, nil, Info{ID: fmt.Sprint("s", i), RemoteAddr: "192.0.2.1:4000", UserAgent: "test/1", Mode: mode})
		s.setClaims(&auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead}, Projects: []string{"p1"}, ExpiresAt: time.Now().Add(time.Hour)})
		s.writer = writerDone
		out[i] = s
	}
	return out
}

// takeFrame takes what s has queued into one frame, as its writer does,
// and returns a copy of it and the first message's bytes as the session
// holds them (not copied: to compare where two sessions' bytes are).
func takeFrame(s *Session) (frame string, first []byte) {
	s.mu.Lock()
	batch := s.takeLocked()
	s.mu.Unlock()
	f, pooled := s.joinFrame(batch)
	frame = string(f)
	if len(batch) > 0 {
		first = batch[0].data
	}
	releaseFrame(pooled)
	return frame, first
}

// lineEvent is task t1's progress in p1's room at seq with one log line
// per entry of lines ("" for an event with none).
func lineEvent(tb testing.TB, seq uint64, lines ...string) *hub.Outbound {
	tb.Helper()
	o := progressWithLog(tb, seq, &pb.LogEntry{})
	o.Event.GetTaskProgress().Logs = nil
	o.Event.GetTaskProgress().Progress = float64(seq) / 100
	for _, l := range lines {
		o.Event.GetTaskProgress().Logs = append(o.Event.GetTaskProgress().Logs, &pb.LogEntry{Line: l})
	}
	data, err := protocol.JSON.Event(o.Room, seq, o.Event)
	if err != nil {
		tb.Fatal(err)
	}
	o.Data = data
	return o
}

// merges returns how many merged events env's sessions found encoded by
// another (shared) and encoded themselves (eventedge_coalesced_encodings_total).
func merges(env *Env) (shared, encoded float64) {
	return testutil.ToFloat64(env.Metrics.MergesShared), testutil.ToFloat64(env.Metrics.MergesEncoded)
}

// logLines returns the log lines of the task_progress in a JSON message.
func logLines(tb testing.TB, msg string) []string {
	tb.Helper()
	var out []string
	for _, part := range strings.Split(strings.ReplaceAll(msg, " ", ""), `{"line":"`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// TestMergedEncodingShared: clients of one node that coalesced the same
// progress events send the same bytes, encoded once per mode; the merged
// event is the newest with every log line, in order.
func TestMergedEncodingShared(t *testing.T) {
	env := newRoomEnv(t, Options{ProgressRate: 1e9, ClientRate: 1e9, ClientBurst: 1 << 20})
	long := strings.Repeat("x", 2000) // the first event outweighs the others: no JSON encoding before the send
	var events []*hub.Outbound
	for seq := uint64(1); seq <= 5; seq++ {
		line := fmt.Sprint("line-", seq)
		if seq == 1 {
			line += long
		}
		events = append(events, lineEvent(t, seq, line))
	}
	// send delivers the events to clients (queued, then each newer one
	// coalesced into it) and takes their frames.
	send := func(clients []*Session) (frames []string, firsts [][]byte) {
		for _, o := range events {
			for _, s := range clients {
				s.Deliver(o)
			}
		}
		for _, s := range clients {
			f, first := takeFrame(s)
			frames, firsts = append(frames, f), append(firsts, first)
		}
		return frames, firsts
	}

	frames, firsts := send(roomSessions(env, 3, protocol.JSON))
	if !strings.Contains(frames[0], `"seq":5,`) || !slices.Equal(logLines(t, frames[0]), []string{"line-1" + long, "line-2", "line-3", "line-4", "line-5"}) {
		t.Fatalf("merged progress sent as %s; want seq 5 with lines 1…5", frames[0])
	}
	for i := 1; i < len(frames); i++ {
		if frames[i] != frames[0] || &firsts[i][0] != &firsts[0][0] {
			t.Fatalf("JSON client %d sent %q (its own bytes: %v); want client 0's bytes, shared", i, frames[i], &firsts[i][0] != &firsts[0][0])
		}
	}
	if hits, misses := merges(env); hits != 2 || misses != 1 {
		t.Fatalf("eventedge_coalesced_encodings_total: shared %v, encoded %v; want 2, 1", hits, misses)
	}

	// The same events to two protobuf clients of the node: an encoding of
	// their own (the JSON one is kept under the same events), shared.
	frames, firsts = send(roomSessions(env, 2, protocol.Protobuf))
	var msg pb.ServerMessage
	if err := (proto.UnmarshalOptions{}).Unmarshal(protobufBody(t, firsts[0]), &msg); err != nil {
		t.Fatalf("protobuf client sent %q: %v", frames[0], err)
	}
	if ev := msg.GetEvent(); ev.GetSeq() != 5 || len(ev.GetEvent().GetTaskProgress().GetLogs()) != 5 {
		t.Fatalf("protobuf merged event %v; want seq 5 with 5 log lines", ev)
	}
	if frames[1] != frames[0] || &firsts[1][0] != &firsts[0][0] {
		t.Fatal("the second protobuf client encoded its own merged event; want the first one's bytes")
	}
	if hits, misses := merges(env); hits-2 != misses-1 || misses < 2 {
		t.Fatalf("merges after the protobuf clients: %v shared, %v encoded; want each protobuf encoding shared once", hits, misses)
	}
}

// protobufBody strips the length prefix of one protobuf message.
func protobufBody(tb testing.TB, msg []byte) []byte {
	tb.Helper()
	n, k := protowire.ConsumeVarint(msg)
	if k <= 0 || uint64(k)+n != uint64(len(msg)) {
		tb.Fatalf("not one length-delimited message: %d bytes, prefix %d (%d bytes)", len(msg), n, k)
	}
	return msg[k:]
}

// TestMergedEncodingComparesEveryPart: two clients whose merged events
// start and end with the same events, with as many between, but not the
// same ones (which a room's clients never have: the cache must not trust
// its key) each get their own.
func TestMergedEncodingComparesEveryPart(t *testing.T) {
	env := newRoomEnv(t, Options{ProgressRate: 1e9, ClientRate: 1e9, ClientBurst: 1 << 20})
	c := roomSessions(env, 2, protocol.JSON)
	e := make([]*hub.Outbound, 5)
	for i := range e {
		e[i] = lineEvent(t, uint64(i+1), fmt.Sprint("line-", i+1))
	}
	for _, o := range []*hub.Outbound{e[0], e[1], e[3]} {
		c[0].Deliver(o)
	}
	for _, o := range []*hub.Outbound{e[0], e[2], e[3]} {
		c[1].Deliver(o)
	}
	f0, _ := takeFrame(c[0])
	f1, _ := takeFrame(c[1])
	if got := logLines(t, f0); !slices.Equal(got, []string{"line-1", "line-2", "line-4"}) {
		t.Fatalf("client 0 sent lines %v; want 1, 2, 4", got)
	}
	if got := logLines(t, f1); !slices.Equal(got, []string{"line-1", "line-3", "line-4"}) {
		t.Fatalf("client 1 sent lines %v; want 1, 3, 4 (its own, not client 0's)", got)
	}
	if hits, misses := merges(env); hits != 0 || misses == 0 {
		t.Fatalf("merges: %v shared, %v encoded; want none shared", hits, misses)
	}
}

// TestMergedPartsPruned: whatever the events, a coalesced event keeps at
// most MaxCoalescedLogs+1 of them, and the event it builds is the newest
// with the last MaxCoalescedLogs log lines of all of them, in order — what
// merging the events one by one gives.
func TestMergedPartsPruned(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, maxLogs := range []int{1, 3, 10} {
		for round := range 200 {
			m := &merged{}
			var want []string
			var last *pb.Event
			for i := range 1 + rng.IntN(40) {
				var lines []*pb.LogEntry
				for range rng.IntN(4) { // 0…3 lines; 0 often
					line := fmt.Sprint(i, ".", len(lines))
					lines = append(lines, &pb.LogEntry{Line: line})
					want = append(want, line)
				}
				last = &pb.Event{Type: "task_progress", Payload: &pb.Event_TaskProgress{TaskProgress: &pb.TaskProgress{TaskId: "t1", Progress: float64(i), Logs: lines}}}
				m.add(last, maxLogs)
				if len(m.parts) > maxLogs+1 {
					t.Fatalf("max %d, round %d: %d parts kept; want at most %d", maxLogs, round, len(m.parts), maxLogs+1)
				}
			}
			if over := len(want) - maxLogs; over > 0 {
				want = want[over:]
			}
			ev := m.event(maxLogs)
			var got []string
			for _, l := range ev.GetTaskProgress().GetLogs() {
				got = append(got, l.GetLine())
			}
			if !slices.Equal(got, want) || ev.GetTaskProgress().GetProgress() != last.GetTaskProgress().GetProgress() {
				t.Fatalf("max %d, round %d: merged lines %v, progress %v; want %v, %v", maxLogs, round, got, ev.GetTaskProgress().GetProgress(), want, last.GetTaskProgress().GetProgress())
			}
			if len(last.GetTaskProgress().GetLogs()) > 0 && &ev.GetTaskProgress().GetLogs()[0] == &last.GetTaskProgress().GetLogs()[0] {
				t.Fatal("the merged event shares its log slice with an event of the hub's")
			}
		}
	}
}

// TestMergesBounded: the cache holds about two generations of MaxBytes of
// encodings; a recent entry is found, one used again survives the turn of
// a generation, and an old one is dropped.
func TestMergesBounded(t *testing.T) {
	c := &Merges{MaxBytes: 1000}
	t.Cleanup(c.Close)
	part := func() *merged {
		return &merged{parts: []*pb.Event{{Type: "task_progress"}}}
	}
	parts := make([]*merged, 50)
	for i := range parts {
		parts[i] = part()
		c.put(keyOf("project:p1", uint64(i), parts[i], protocol.JSON), parts[i], make([]byte, 100))
	}
	if n := c.entries(); n > 20 {
		t.Fatalf("%d entries of 100 bytes kept with MaxBytes 1000; want at most 20", n)
	}
	if _, ok := c.get(keyOf("project:p1", 49, parts[49], protocol.JSON), parts[49]); !ok {
		t.Fatal("the newest entry is not found")
	}
	if _, ok := c.get(keyOf("project:p1", 0, parts[0], protocol.JSON), parts[0]); ok {
		t.Fatal("the oldest of 50 entries is still kept")
	}
	// The oldest entry kept is in the previous generation: used again, it
	// moves to the current one and survives the next turn.
	oldest := -1
	for i := range parts {
		if _, ok := c.get(keyOf("project:p1", uint64(i), parts[i], protocol.JSON), parts[i]); ok {
			oldest = i
			break
		}
	}
	if oldest < 0 {
		t.Fatal("no entry kept")
	}
	for i := range 9 {
		p := part()
		c.put(keyOf("project:p2", uint64(i), p, protocol.JSON), p, make([]byte, 100))
	}
	if _, ok := c.get(keyOf("project:p1", uint64(oldest), parts[oldest], protocol.JSON), parts[oldest]); !ok {
		t.Fatalf("entry %d, used again, was dropped by the next generation", oldest)
	}
}

// TestMergesTurnByAge: a generation older than the cache's age turns at
// the next entry, so a node that coalesces little does not keep an entry
// (and the events it holds) for long: two turns drop it. A node that stops
// coalescing lets its entries go on the timer.
func TestMergesTurnByAge(t *testing.T) {
	c := &Merges{age: 20 * time.Millisecond}
	t.Cleanup(c.Close)
	put := func(seq uint64) (mergeKey, *merged) {
		m := &merged{parts: []*pb.Event{{Type: "task_progress"}}}
		k := keyOf("project:p1", seq, m, protocol.JSON)
		c.put(k, m, []byte("x"))
		return k, m
	}
	k, m := put(1)
	time.Sleep(30 * time.Millisecond)
	put(2) // turns: entry 1 is in the previous generation
	if _, ok := c.get(k, m); !ok {
		t.Fatal("entry 1 dropped at the first turn; want it in the previous generation")
	}
	k, m = put(3)
	time.Sleep(30 * time.Millisecond)
	put(4) // entry 3 to the previous generation
	time.Sleep(30 * time.Millisecond)
	put(5) // and out
	if _, ok := c.get(k, m); ok {
		t.Fatal("entry 3 kept through two turns by age")
	}
	if n := c.entries(); n > 2 {
		t.Fatalf("%d entries kept; want at most 2 (entries 4 and 5)", n)
	}
	// No more entries: the timer turns the generations out, and stops.
	deadline := time.Now().Add(10 * time.Second)
	for c.entries() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	n, timer := len(c.cur)+len(c.prev), c.timer
	c.mu.Unlock()
	if n != 0 || timer != nil {
		t.Fatalf("a quiet cache keeps %d entries (timer %v); want none, and no timer", n, timer != nil)
	}
	// Close: nothing kept after, no timer.
	put(6)
	c.Close()
	put(7)
	if n := c.entries(); n != 0 || c.timer != nil {
		t.Fatalf("after Close: %d entries, timer %v; want none", n, c.timer != nil)
	}
	var nilMerges *Merges
	nilMerges.Close() // a node that did not get as far as making one
}

// TestMergedEncodingConcurrent: the writers of several sessions (one per
// flusher) encode the same merged event at once (run with -race).
func TestMergedEncodingConcurrent(t *testing.T) {
	env := newRoomEnv(t, Options{ProgressRate: 1e9, ClientRate: 1e9, ClientBurst: 1 << 20})
	clients := roomSessions(env, 8, protocol.JSON)
	for round := range 20 {
		for i := range 3 {
			o := lineEvent(t, uint64(round*3+i+1), fmt.Sprint("line-", round*3+i+1))
			for _, s := range clients {
				s.Deliver(o)
			}
		}
		frames := make([]string, len(clients))
		var wg sync.WaitGroup
		for i, s := range clients {
			wg.Go(func() { frames[i], _ = takeFrame(s) })
		}
		wg.Wait()
		want := []string{fmt.Sprint("line-", round*3+1), fmt.Sprint("line-", round*3+2), fmt.Sprint("line-", round*3+3)}
		for i, f := range frames {
			if got := logLines(t, f); !slices.Equal(got, want) {
				t.Fatalf("round %d: client %d sent lines %v; want %v", round, i, got, want)
			}
		}
	}
	if hits, misses := merges(env); hits+misses < 20*8 || misses < 20 {
		t.Fatalf("merges: %v shared, %v encoded; want 160 or more in all (8 clients, 20 rounds), at least one encoding per round", hits, misses)
	}
}

// BenchmarkCoalescedRoom: a task reporting faster than its clients are
// sent (one log line per event) to 256 clients of its room, each sent a
// frame every 10 events: what a room pays per event and client, the
// coalescing and the merged event's encoding together (ns/delivery).
func BenchmarkCoalescedRoom(b *testing.B) {
	env := newRoomEnv(b, Options{ProgressRate: 1e9, ClientRate: 1e9, ClientBurst: 1 << 30})
	clients := roomSessions(env, 256, protocol.JSON)
	events := make([]*hub.Outbound, 64)
	for i := range events {
		events[i] = progressWithLog(b, uint64(i+1), &pb.LogEntry{Timestamp: timestamppb.Now(), Line: fmt.Sprintf("step %d: compiled 42 files in 1.3s", i)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o := events[i%len(events)]
		o.Seq = uint64(i + 1)
		for _, s := range clients {
			s.Deliver(o)
		}
		if i%10 == 9 {
			for _, s := range clients {
				takeAsWriter(s, nil)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(clients)), "ns/delivery")
}
