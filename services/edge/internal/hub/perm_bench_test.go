package hub

import (
	"context"
	"fmt"
	"testing"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// BenchmarkFanoutPermission20000: events requiring logs:read to 20,000
// subscribers of one room, each with claims of its own (a node's clients:
// far more than the CPU's caches hold), all allowed. Per delivery, the
// subscription's filter and the hand-off to its sink (ns/delivery).
func BenchmarkFanoutPermission20000(b *testing.B) {
	h := newHub(b)
	sinks := make([]*sink, 20000)
	for i := range sinks {
		sinks[i] = &sink{claims: &auth.Claims{Subject: fmt.Sprint("u", i), Permissions: []string{auth.PermTasksRead, auth.PermLogsRead}, Projects: []string{"p1"}}}
		if err := h.Join(context.Background(), NewSubscription(room.Project("p1"), sinks[i], nil, false), 0, nil); err != nil {
			b.Fatal(err)
		}
	}
	rs := h.room(room.Project("p1").LiveSubject())
	body := liveMsg(b, logEvent(), 1).Data
	seq, sh := uint64(0), &shard{}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		seq++
		fanout1(h, sh, rs, seq, body)
	}
	delivered := 0
	for _, s := range sinks {
		delivered += s.count
	}
	if want := int(seq) * len(sinks); delivered != want {
		b.Fatalf("delivered %d, want %d", delivered, want)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(delivered), "ns/delivery")
}
