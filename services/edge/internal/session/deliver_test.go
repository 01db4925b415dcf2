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
)

// benchSessions returns n authenticated sessions without connections whose
// writer never starts: the caller takes their queues as the writer would.
func benchSessions(tb testing.TB, n int) []*Session {
	tb.Helper()
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop()}
	out := make([]*Session, n)
	for i := range out {
		s := New(env, nil, Info{ID: fmt.Sprint("s", i)})
		s.claims.Store(&auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead}})
		s.writer = writerDone // no goroutine, no connection: the benchmark takes the queue
		out[i] = s
	}
	return out
}

func normalOutbound(seq uint64) *hub.Outbound {
	return &hub.Outbound{Room: "project:p1", Seq: seq, Type: "task_updated", Priority: pb.Priority_PRIORITY_NORMAL, Timestamp: time.Now(), Data: make([]byte, 300)}
}

// TestDeliverAllocsNothingPerClient: once an event is encoded, queueing it
// for a client and taking it into that client's frame allocates nothing.
func TestDeliverAllocsNothingPerClient(t *testing.T) {
	sessions := benchSessions(t, 100)
	seq := uint64(0)
	round := func() {
		seq++
		o := normalOutbound(seq)
		for _, s := range sessions {
			s.Deliver(o)
		}
		for _, s := range sessions {
			s.mu.Lock()
			s.batch = s.q.take(s.batch[:0], s.opts.MaxBatchBytes)
			s.q.forget()
			s.mu.Unlock()
		}
	}
	round() // the lanes and batches exist from the first event on
	o := normalOutbound(0)
	allocs := testing.AllocsPerRun(20, func() {
		seq++
		o.Seq = seq
		for _, s := range sessions {
			s.Deliver(o)
		}
		for _, s := range sessions {
			s.mu.Lock()
			s.batch = s.q.take(s.batch[:0], s.opts.MaxBatchBytes)
			s.q.forget()
			s.mu.Unlock()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per event delivered to %d clients, want 0", allocs, len(sessions))
	}
	for i, s := range sessions {
		if len(s.batch) != 1 || s.batch[0].seq != seq {
			t.Fatalf("session %d took %d items (last seq %v), want the event %d", i, len(s.batch), s.batch, seq)
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
			s.mu.Lock()
			s.batch = s.q.take(s.batch[:0], s.opts.MaxBatchBytes)
			s.q.forget()
			s.mu.Unlock()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(sessions)), "ns/delivery")
}
