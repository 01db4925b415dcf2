package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// benchSessions returns n authenticated sessions without connections whose
// writer never starts: the caller takes their queues as the writer would.
func benchSessions(tb testing.TB, n int) []*Session {
	tb.Helper()
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop()}
	out := make([]*Session, n)
	for i := range out {
		s := New(env, nil, Info{ID: fmt.Sprint("s", i)})
		s.setClaims(&auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead}})
		s.writer = writerDone // no goroutine, no connection: the benchmark takes the queue
		out[i] = s
	}
	return out
}

// takeAsWriter takes s's queue into a frame's batch as the writer does
// (arrays from the pool and back) and appends the seqs taken to seqs
// (none when seqs is nil).
func takeAsWriter(s *Session, seqs []uint64) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batchPool = getItems()
	s.batch = s.q.take(*s.batchPool, s.opts.MaxBatchBytes)
	s.freshen(s.batch) // as joinFrame does
	for _, it := range s.batch {
		if seqs != nil {
			seqs = append(seqs, it.seq)
		}
	}
	clear(s.batch)
	s.q.forget()
	putItems(s.batchPool, s.batch)
	s.batch, s.batchPool = nil, nil
	return seqs
}

func normalOutbound(seq uint64) *hub.Outbound {
	return &hub.Outbound{Room: "project:p1", Seq: seq, Type: "task_updated", Priority: pb.Priority_PRIORITY_NORMAL, Timestamp: time.Now(), Handled: time.Now(), Data: make([]byte, 300),
		Event: &pb.Event{Type: "task_updated", Priority: pb.Priority_PRIORITY_NORMAL}}
}

// TestDeliverAllocsNothingPerClient: once an event is encoded, queueing it
// for a client and taking it into that client's frame allocates nothing.
func TestDeliverAllocsNothingPerClient(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (sync.Pool drops items on purpose); make test runs this test again without -race")
	}
	sessions := benchSessions(t, 100)
	for i, s := range sessions {
		// Every other session in protobuf mode: the event's protobuf form
		// is encoded once per event, not per client.
		s.info.Mode = protocol.Mode(i % 2)
	}
	seq := uint64(0)
	round := func() {
		seq++
		o := normalOutbound(seq)
		for _, s := range sessions {
			s.Deliver(o)
		}
		for _, s := range sessions {
			takeAsWriter(s, nil)
		}
	}
	round() // the lanes and batches exist from the first event on
	o := normalOutbound(0)
	taken := make([][]uint64, len(sessions))
	for i := range taken {
		taken[i] = make([]uint64, 0, 1)
	}
	allocs := testing.AllocsPerRun(20, func() {
		seq++
		o.Seq = seq
		for _, s := range sessions {
			s.Deliver(o)
		}
		for i, s := range sessions {
			taken[i] = takeAsWriter(s, taken[i][:0])
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event delivered to %d clients, want 0", allocs, len(sessions))
	}
	for i := range sessions {
		if len(taken[i]) != 1 || taken[i][0] != seq {
			t.Fatalf("session %d took %v, want the event %d", i, taken[i], seq)
		}
	}
}

// BenchmarkDeliver1000: one encoded event queued for 1,000 clients (flow
// control, the client's queue) and taken into each client's next frame:
// the per-client cost of a delivery on the edge before the socket write.
func BenchmarkDeliver1000(b *testing.B) {
	sessions := benchSessions(b, 1000)
	o := normalOutbound(0)
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		o.Seq = seq
		for _, s := range sessions {
			s.Deliver(o)
		}
		for _, s := range sessions {
			takeAsWriter(s, nil)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sessions)), "ns/delivery")
}

// BenchmarkDeliverBacklog1000: as BenchmarkDeliver1000, but 12 events
// reach each of 1,000 clients between two of its frames, as under
// overload: per delivery, and what the lanes and batches allocate (they
// come from a pool, so allocs/op stays near 0).
func BenchmarkDeliverBacklog1000(b *testing.B) {
	sessions := benchSessions(b, 1000)
	outs := make([]*hub.Outbound, 12)
	for i := range outs {
		outs[i] = normalOutbound(0)
	}
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		for _, o := range outs {
			seq++
			o.Seq = seq
			for _, s := range sessions {
				s.Deliver(o)
			}
		}
		for _, s := range sessions {
			takeAsWriter(s, nil)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sessions)*len(outs)), "ns/delivery")
}

// TestDeliverBatch: a batch is queued in order under one lock; a high or
// normal event of it that does not fit closes the session as a slow
// consumer, counted once, and the rest of the batch (and anything
// delivered later) is not queued.
func TestDeliverBatch(t *testing.T) {
	s := snapshotSession(Options{QueueMessages: 4})
	s.Deliver(normalOutbound(1), normalOutbound(2), normalOutbound(3))
	if snap := s.Snapshot(); snap.QueueMessages != 3 || snap.Closing != "" {
		t.Fatalf("after a batch of 3: %d queued, closing %q; want 3, open", snap.QueueMessages, snap.Closing)
	}
	s.Deliver(normalOutbound(4), normalOutbound(5), normalOutbound(6))
	s.Deliver(normalOutbound(7))
	snap := s.Snapshot()
	if snap.QueueMessages != 4 || snap.Drops != (Drops{SlowConsumer: 1}) || snap.Closing != "slow_consumer" {
		t.Fatalf("after an overflowing batch: %d queued, drops %+v, closing %q; want 4 (seq 1-4), 1 slow consumer, closing",
			snap.QueueMessages, snap.Drops, snap.Closing)
	}
	if got := takeAsWriter(s, []uint64{}); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Fatalf("queued seqs %v, want [1 2 3 4]", got)
	}
}
