package hub

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/broker"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
)

// sink records what it is handed.
type sink struct {
	claims *auth.Claims
	mu     sync.Mutex
	got    []*Outbound
	calls  int // Deliver calls
	count  int // events delivered
	keep   bool
}

// dispatchAll hands msgs to h as one batch a shard took from its channel.
func dispatchAll(h *Hub, msgs ...*nats.Msg) {
	sh := &shard{}
	for _, m := range msgs {
		h.dispatch(sh, m)
	}
	h.flush(sh)
}

// fanout1 fans out one live event of rs at seq, as a shard does a run of
// one event.
func fanout1(h *Hub, sh *shard, rs *roomState, seq uint64, body []byte) {
	sh.run = rs
	sh.evs = append(sh.evs, liveEvent{seq: seq, body: body, contentType: events.ContentTypeProtobuf})
	h.flush(sh)
}

func (s *sink) Deliver(batch ...*Outbound) {
	s.mu.Lock()
	s.calls++
	s.count += len(batch)
	if s.keep {
		s.got = append(s.got, batch...)
	}
	s.mu.Unlock()
}
func (s *sink) DeliverWait(_ context.Context, o *Outbound) error { s.Deliver(o); return nil }
func (s *sink) Reset(string, string, uint64, bool)               {}
func (s *sink) Claims() *auth.Claims                             { return s.claims }

func newHub(tb testing.TB) *Hub {
	// Rooms are torn down at once here (the default keeps them 10s).
	h, _ := newHubWith(tb, "defaults:\n  ttl: 0s\n")
	return h
}

// newHubWith returns a hub on a fresh embedded NATS with the room policy
// policyYAML, and a JetStream context to publish with.
func newHubWith(tb testing.TB, policyYAML string) (*Hub, jetstream.JetStream) {
	tb.Helper()
	ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := events.EnsureStreams(context.Background(), js, events.StreamConfig{MemoryStorage: true}); err != nil {
		tb.Fatal(err)
	}
	pol, err := policy.Parse([]byte(policyYAML))
	if err != nil {
		tb.Fatal(err)
	}
	h := New(nc, history.New(js, history.Options{}), Options{Policy: pol}, zerolog.Nop(), metrics.New(prometheus.NewRegistry()))
	tb.Cleanup(h.Close)
	return h, js
}

// liveMsg builds the message the EVENTS stream re-publishes for ev at seq.
func liveMsg(tb testing.TB, ev *pb.Event, seq uint64) *nats.Msg {
	tb.Helper()
	events.Normalize(ev)
	body, err := events.Marshal(ev)
	if err != nil {
		tb.Fatal(err)
	}
	r, _ := room.Parse(ev.Room)
	m := &nats.Msg{Subject: r.LiveSubject(), Data: body, Header: nats.Header{}}
	m.Header.Set(events.HeaderSequence, strconv.FormatUint(seq, 10))
	m.Header.Set(events.HeaderContentType, events.ContentTypeProtobuf)
	return m
}

// join subscribes n sinks to project:p1, every other one holding logs:read.
func join(tb testing.TB, h *Hub, n int, keep bool) []*sink {
	tb.Helper()
	return joinSinks(tb, h, room.Project("p1"), n, keep, "p1")
}

// joinSinks subscribes n sinks to r, every other one holding logs:read;
// each may read projects. keep: the sinks keep what they receive.
func joinSinks(tb testing.TB, h *Hub, r room.Room, n int, keep bool, projects ...string) []*sink {
	tb.Helper()
	sinks := make([]*sink, n)
	for i := range sinks {
		perms := []string{auth.PermTasksRead}
		if i%2 == 0 {
			perms = append(perms, auth.PermLogsRead)
		}
		sinks[i] = &sink{claims: &auth.Claims{Subject: fmt.Sprint("u", i), Permissions: perms, Projects: projects}, keep: keep}
		if err := h.Join(context.Background(), NewSubscription(r, sinks[i], nil, false), 0, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return sinks
}

func logEvent() *pb.Event {
	ev := events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Progress: 0.5, Logs: []*pb.LogEntry{{Line: "building"}}})
	ev.RequiredPermission = auth.PermLogsRead
	return ev
}

// TestDispatchEncodesOncePerRoom: every subscriber that may see an event is
// handed the same encoded bytes; subscribers without the event's permission
// get nothing.
func TestDispatchEncodesOncePerRoom(t *testing.T) {
	h := newHub(t)
	sinks := join(t, h, 10, true)
	dispatchAll(h, liveMsg(t, logEvent(), 7))
	var first *Outbound
	for i, s := range sinks {
		if i%2 == 1 {
			if len(s.got) != 0 {
				t.Fatalf("subscriber %d without logs:read received the event", i)
			}
			continue
		}
		if len(s.got) != 1 {
			t.Fatalf("subscriber %d received %d events", i, len(s.got))
		}
		if first == nil {
			first = s.got[0]
		}
		if s.got[0] != first || &s.got[0].Data[0] != &first.Data[0] {
			t.Fatalf("subscriber %d got its own copy: the event was encoded more than once", i)
		}
	}
	if first.Seq != 7 || first.Room != "project:p1" || first.Priority != pb.Priority_PRIORITY_LOW {
		t.Fatalf("outbound %+v", first)
	}
}

// TestDispatchAllocsIndependentOfSubscribers: fan-out allocates per event,
// never per subscriber.
func TestDispatchAllocsIndependentOfSubscribers(t *testing.T) {
	allocs := func(n int) float64 {
		h := newHub(t)
		sinks := join(t, h, n, false)
		rs, body := h.room(room.Project("p1").LiveSubject()), liveMsg(t, logEvent(), 1).Data
		seq, sh := uint64(0), &shard{}
		fan := func() { seq++; fanout1(h, sh, rs, seq, body) }
		fan() // warm up
		a := testing.AllocsPerRun(50, fan)
		if got := sinks[0].count; got < 51 { // AllocsPerRun adds a warm-up run of its own
			t.Fatalf("subscriber 0 received %d events, want at least 51: the measurement measured nothing", got)
		}
		return a
	}
	few, many := allocs(2), allocs(1000)
	// A per-subscriber allocation would add about 1,000; allow a constant
	// few (the race detector's instrumentation adds one).
	if many > few+5 {
		t.Fatalf("allocations per dispatch: %v with 2 subscribers, %v with 1000", few, many)
	}
}

// TestDispatchRefusesForgedLiveMessages: a message on a live subject
// without the stream's sequence header, or whose room disagrees with its
// subject, reaches no one.
func TestDispatchRefusesForgedLiveMessages(t *testing.T) {
	h := newHub(t)
	sinks := join(t, h, 2, true)
	noSeq := liveMsg(t, events.TaskDeleted(room.Project("p1"), "u1", "t1"), 1)
	noSeq.Header.Del(events.HeaderSequence)
	otherRoom := liveMsg(t, events.TaskDeleted(room.Project("p2"), "u1", "t1"), 2)
	otherRoom.Subject = room.Project("p1").LiveSubject()
	garbage := liveMsg(t, events.TaskDeleted(room.Project("p1"), "u1", "t1"), 3)
	garbage.Data = []byte("not protobuf")
	dispatchAll(h, noSeq, otherRoom, garbage)
	for i, s := range sinks {
		if len(s.got) != 0 {
			t.Fatalf("subscriber %d received a forged message", i)
		}
	}
}

// TestJoinConcurrentFirstSubscribers: many first joins of one room at once
// create one NATS subscription, and the last leave removes it.
func TestJoinConcurrentFirstSubscribers(t *testing.T) {
	h := newHub(t)
	// JetStream requests use one reply subscription of their own; create it
	// first so the count below is about rooms only.
	if _, err := h.hist.Last(context.Background(), "evt.global"); err != nil {
		t.Fatal(err)
	}
	base := h.nc.NumSubscriptions()
	var wg sync.WaitGroup
	subs := make([]*Subscription, 50)
	for i := range subs {
		subs[i] = NewSubscription(room.Project("p1"), &sink{claims: &auth.Claims{Subject: "u"}}, nil, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Join(context.Background(), subs[i], 0, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := h.Rooms(); got != 1 {
		t.Fatalf("rooms = %d, want 1", got)
	}
	if got := h.nc.NumSubscriptions() - base; got != 1 {
		t.Fatalf("NATS subscriptions for the room = %d, want 1", got)
	}
	for _, s := range subs {
		h.Leave(s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.Rooms() != 0 || h.nc.NumSubscriptions() != base {
		if time.Now().After(deadline) {
			t.Fatalf("after the last leave: rooms %d, NATS subscriptions %d (base %d)", h.Rooms(), h.nc.NumSubscriptions(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// benchRoom returns a hub whose room project:p1 has 1,000 counting sinks
// (every other one with logs:read) and the body of a logs:read event.
func benchRoom(b *testing.B) (*Hub, []*sink, *roomState, []byte) {
	h := newHub(b)
	sinks := join(b, h, 1000, false)
	return h, sinks, h.room(room.Project("p1").LiveSubject()), liveMsg(b, logEvent(), 1).Data
}

// BenchmarkFanout1000: one event to 1,000 subscribers of one room, half of
// whom hold the event's required permission.
func BenchmarkFanout1000(b *testing.B) {
	h, sinks, rs, body := benchRoom(b)
	seq := fanoutLoop(b, h, rs, body)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/500, "ns/delivery")
	if sinks[0].count != int(seq) {
		b.Fatalf("subscriber 0 received %d of %d events", sinks[0].count, seq)
	}
}

// fanoutLoop is a benchmark's timed loop: body, one live event of rs at
// seq 1, 2, …, fanned out as a shard does a run of one event. It returns
// the last seq.
func fanoutLoop(b *testing.B, h *Hub, rs *roomState, body []byte) uint64 {
	seq, sh := uint64(0), &shard{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq++
		fanout1(h, sh, rs, seq, body)
	}
	return seq
}

// BenchmarkFanoutPermission20000: events requiring logs:read to 20,000
// subscribers of one room, each with claims of its own (a node's clients:
// far more than the CPU's caches hold), all allowed. Per delivery, the
// subscription's filter and the hand-off to its sink (ns/delivery).
func BenchmarkFanoutPermission20000(b *testing.B) {
	h := newHub(b)
	sinks := make([]*sink, 20000)
	for i := range sinks {
		sinks[i] = &sink{claims: &auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead, auth.PermLogsRead}, Projects: []string{"p1"}}}
		mustJoin(b, h, NewSubscription(room.Project("p1"), sinks[i], nil, false))
	}
	seq := fanoutLoop(b, h, h.room(room.Project("p1").LiveSubject()), liveMsg(b, logEvent(), 1).Data)
	delivered := 0
	for _, s := range sinks {
		delivered += s.count
	}
	if want := int(seq) * len(sinks); delivered != want {
		b.Fatalf("delivered %d, want %d", delivered, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
}

// BenchmarkFanout1000Mixed: events of two kinds fanned out to 1,000
// subscribers of one room in four groups — with and without logs:read,
// with and without an event-type filter — as a dashboard's room has them.
// Half the events are task_progress with requiredPermission logs:read, half
// task_updated. ns/delivery is per event actually handed to a subscriber.
func BenchmarkFanout1000Mixed(b *testing.B) {
	h := newHub(b)
	sinks := make([]*sink, 1000)
	for i := range sinks {
		perms := []string{auth.PermTasksRead}
		if i%2 == 0 {
			perms = append(perms, auth.PermLogsRead)
		}
		var filter []string
		if i%4 >= 2 {
			filter = []string{"task_created", "task_updated", "task_deleted"}
		}
		sinks[i] = &sink{claims: &auth.Claims{Subject: fmt.Sprint("u", i), Permissions: perms, Projects: []string{"p1"}}}
		if err := h.Join(context.Background(), NewSubscription(room.Project("p1"), sinks[i], filter, false), 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	rs := h.room(room.Project("p1").LiveSubject())
	progress := liveMsg(b, logEvent(), 1).Data
	updated := liveMsg(b, events.TaskUpdated(room.Project("p1"), "u1", "t1", &pb.Task{Title: "x"}, "title"), 1).Data
	seq, sh := uint64(0), &shard{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq++
		body := updated
		if seq%2 == 0 {
			body = progress
		}
		fanout1(h, sh, rs, seq, body)
	}
	delivered := 0
	for _, s := range sinks {
		delivered += s.count
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
	// Per 2 events: task_updated to all 1,000, task_progress to the 250
	// with logs:read and no filter.
	if want := int(seq/2)*1250 + int(seq%2)*1000; delivered != want {
		b.Fatalf("delivered %d, want %d", delivered, want)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// TestReplayEncodesOncePerRoom: subscriptions resuming one room from the
// same position are handed the same Outbound for each replayed event —
// read from the stream and encoded once for all of them — and each gets
// every event after its position, in order.
func TestReplayEncodesOncePerRoom(t *testing.T) {
	h, js := newHubWith(t, "defaults:\n  ttl: 0s\n")
	r := room.Project("p1")
	var seqs []uint64
	for i := range 4 {
		ack, err := events.Publish(context.Background(), js, events.TaskDeleted(r, "u1", fmt.Sprint("t", i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	var sinks []*sink
	for i := range 3 {
		s := &sink{claims: &auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead}, Projects: []string{"p1"}}, keep: true}
		sub := NewSubscription(r, s, nil, true)
		if err := h.Join(context.Background(), sub, seqs[0], nil); err != nil {
			t.Fatal(err)
		}
		if err := h.CatchUp(context.Background(), sub); err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, s)
	}
	for i, s := range sinks {
		if len(s.got) != 3 {
			t.Fatalf("subscription %d replayed %d events, want 3", i, len(s.got))
		}
		for k, o := range s.got {
			if o.Seq != seqs[k+1] {
				t.Fatalf("subscription %d event %d: seq %d, want %d", i, k, o.Seq, seqs[k+1])
			}
			if o != sinks[0].got[k] {
				t.Fatalf("subscription %d event %d: its own Outbound, encoded again", i, k)
			}
		}
	}
}
