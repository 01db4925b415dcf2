package session

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// snapshotSession is an authenticated session without a connection whose
// writer never starts, so what is queued stays queued.
func snapshotSession(opts Options) *Session {
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop(), Options: opts}
	s := New(env, nil, Info{ID: "s1", RemoteAddr: "192.0.2.1:4000", UserAgent: "test/1", Mode: protocol.JSON})
	s.setClaims(&auth.Claims{Subject: "u1", Permissions: []string{auth.PermTasksRead}, Projects: []string{"p1"}, ExpiresAt: time.Now().Add(time.Hour)})
	s.writer = writerDone
	return s
}

func lowOutbound(seq uint64, task string) *hub.Outbound {
	o := &hub.Outbound{Room: "project:p1", Seq: seq, Type: "task_updated", Priority: pb.Priority_PRIORITY_LOW, Timestamp: time.Now(), Data: make([]byte, 100)}
	if task != "" {
		o.Type, o.Task = "task_progress", task
		o.Event = events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: task, Progress: 0.5})
	}
	return o
}

// TestSnapshotCounts: the session's snapshot counts what flow control did
// to its events, by reason.
func TestSnapshotCounts(t *testing.T) {
	s := snapshotSession(Options{ClientRate: 0.001, ClientBurst: 1})
	s.Deliver(lowOutbound(1, ""))   // spends the client's only token: queued
	s.Deliver(lowOutbound(2, ""))   // over the budget: dropped (throttled)
	s.Deliver(lowOutbound(3, ""))   // again
	s.Deliver(lowOutbound(4, "t1")) // progress over the budget: held (throttled)
	s.Deliver(lowOutbound(5, "t1")) // supersedes the held one (coalesced)
	stopReleases(t, s)              // the held event's release timer
	snap := s.Snapshot()
	if snap.Drops != (Drops{Throttled: 2}) || snap.Throttled != 1 || snap.Coalesced != 1 {
		t.Errorf("drops %+v, throttled %d, coalesced %d; want 2 dropped (throttled), 1 held, 1 coalesced", snap.Drops, snap.Throttled, snap.Coalesced)
	}
	if snap.QueueMessages != 1 || snap.QueueBytes != 100 || snap.Closing != "" {
		t.Errorf("queue %d messages, %d bytes, closing %q; want 1, 100, none", snap.QueueMessages, snap.QueueBytes, snap.Closing)
	}
	if snap.ID != "s1" || snap.User != "u1" || snap.Mode != "json" || snap.RemoteAddr != "192.0.2.1:4000" || snap.UserAgent != "test/1" ||
		!snap.LastActivity.Equal(snap.Since) || len(snap.Rooms) != 0 || snap.ExpiresAt.IsZero() {
		t.Errorf("snapshot %+v", snap)
	}

	// A normal event that does not fit closes the session as a slow consumer.
	s = snapshotSession(Options{QueueMessages: 2})
	for seq := range uint64(3) {
		s.Deliver(normalOutbound(seq + 1))
	}
	snap = s.Snapshot()
	if snap.Drops != (Drops{SlowConsumer: 1}) || snap.Closing != "slow_consumer" || !s.IsClosing() {
		t.Errorf("drops %+v, closing %q; want 1 slow consumer, closing", snap.Drops, snap.Closing)
	}
}
