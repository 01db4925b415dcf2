package hub

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// notifySink signals each delivery on a channel.
type notifySink struct {
	claims *auth.Claims
	got    chan struct{}
}

func (s *notifySink) Deliver(batch ...*Outbound) {
	for range batch {
		s.got <- struct{}{}
	}
}
func (s *notifySink) DeliverWait(_ context.Context, o *Outbound) error { s.Deliver(o); return nil }
func (s *notifySink) Reset(string, string, uint64, bool)               {}
func (s *notifySink) Claims() *auth.Claims                             { return s.claims }

// BenchmarkLiveEventDuringResyncAll: publish → delivery of one live event
// in a hub of 1,000 rooms on an embedded NATS server (shards: GOMAXPROCS),
// idle, and just after a reconnect, while ResyncAll re-checks the rooms
// (none missed anything; started on a goroutine of its own, as the node
// does). Reported as ms/event.
func BenchmarkLiveEventDuringResyncAll(b *testing.B) {
	for _, resync := range []bool{false, true} {
		name := "idle"
		if resync {
			name = "resyncAll"
		}
		b.Run(name, func(b *testing.B) {
			h, js := newHubJS(b)
			var first *notifySink
			rooms := make([]room.Room, 1000)
			for i := range rooms {
				rooms[i] = room.Project("r" + strconv.Itoa(i))
				s := &notifySink{claims: &auth.Claims{Subject: "u", Permissions: []string{"tasks:read"}, Projects: []string{rooms[i].ID}}, got: make(chan struct{}, 16)}
				if err := h.Join(context.Background(), NewSubscription(rooms[i], s, nil, false), 0, nil); err != nil {
					b.Fatal(err)
				}
				if i == 0 {
					first = s
				}
			}
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				done := make(chan struct{})
				if resync {
					go func() { h.ResyncAll(); close(done) }()
				} else {
					close(done)
				}
				start := time.Now()
				if _, err := events.Publish(context.Background(), js, events.TaskUpdated(rooms[0], "u7", "t1", &pb.Task{Title: "v"}, "title")); err != nil {
					b.Fatal(err)
				}
				<-first.got
				total += time.Since(start)
				<-done
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/event")
		})
	}
}
