package hub

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// newHubJS is newHub with a project rule (maxClients 50, for the policy
// in snapshots) that also returns a JetStream context to publish with.
func newHubJS(tb testing.TB) (*Hub, jetstream.JetStream) {
	tb.Helper()
	return newHubWith(tb, "defaults:\n  ttl: 0s\nrooms:\n  - match: project\n    maxClients: 50\n")
}

func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRoomSnapshots: a room's snapshot shows its subscribers grouped by
// permissions and by event filter, its NATS state, position and policy,
// and counts a gap repaired from the stream.
func TestRoomSnapshots(t *testing.T) {
	h, js := newHubJS(t)
	p1 := room.Project("p1")
	join := func(perms []string, filter []string) (*sink, *Subscription) {
		s := &sink{claims: &auth.Claims{Subject: "u", Permissions: perms, Projects: []string{"p1"}}}
		sub := NewSubscription(p1, s, filter, false)
		if err := h.Join(context.Background(), sub, 0, nil); err != nil {
			t.Fatal(err)
		}
		return s, sub
	}
	a, subA := join([]string{"tasks:read"}, nil)
	join([]string{"logs:read", "tasks:read"}, []string{"task_updated"})
	join([]string{"tasks:read", "logs:read", "tasks:read"}, []string{"task_progress", "task_updated"})

	snaps := h.RoomSnapshots("")
	if len(snaps) != 1 {
		t.Fatalf("%d rooms, want 1", len(snaps))
	}
	r := snaps[0]
	if r.Name != "project:p1" || r.Subscribers != 3 || r.State != StateSubscribed || !r.Known || r.LastSeq != 0 || r.Repairs != 0 || r.Rule.MaxClients != 50 {
		t.Fatalf("room = %+v", r)
	}
	wantPerms := []Group{{Key: []string{"logs:read", "tasks:read"}, Subscribers: 2}, {Key: []string{"tasks:read"}, Subscribers: 1}}
	if !slices.EqualFunc(r.Permissions, wantPerms, groupEqual) {
		t.Errorf("permission groups = %+v, want %+v", r.Permissions, wantPerms)
	}
	wantFilters := []Group{{Key: []string{}, Subscribers: 1}, {Key: []string{"task_progress", "task_updated"}, Subscribers: 1}, {Key: []string{"task_updated"}, Subscribers: 1}}
	if !slices.EqualFunc(r.Filters, wantFilters, groupEqual) {
		t.Errorf("filter groups = %+v, want %+v", r.Filters, wantFilters)
	}
	for _, name := range []string{"project:p2", "no such room", "user:p1"} {
		if got := h.RoomSnapshots(name); len(got) != 0 {
			t.Errorf("RoomSnapshots(%q) = %+v, want none", name, got)
		}
	}
	if got := h.RoomSnapshots("project:p1"); len(got) != 1 || got[0].Name != "project:p1" || got[0].Subscribers != r.Subscribers {
		t.Errorf("RoomSnapshots(project:p1) = %+v, want the room alone, as listed", got)
	}

	// A gap: the room's live subscription misses three events (it is
	// cut here), which a re-check then reads back from the stream.
	rs := h.room(p1.LiveSubject())
	if err := rs.natsSub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for range 3 {
		ack, err := events.Publish(context.Background(), js, events.TaskUpdated(p1, "u7", "t1", &pb.Task{Title: "v"}, "title"))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	h.Resync(p1.LiveSubject())
	eventually(t, func() bool { return h.RoomSnapshots("project:p1")[0].LastSeq == last }, "the gap repaired")
	r = h.RoomSnapshots("project:p1")[0]
	if r.Repairs != 1 || r.RepairedEvents != 3 || r.RepairFailures != 0 || r.State != StateUnsubscribed {
		t.Fatalf("after the repair: %+v", r)
	}
	a.mu.Lock()
	got := a.count
	a.mu.Unlock()
	if got != 3 {
		t.Errorf("subscriber got %d repaired events, want 3", got)
	}
	if s := subA.Snapshot(); s.Room != "project:p1" || s.Position != last || s.CatchingUp || len(s.Events) != 0 {
		t.Errorf("subscription snapshot = %+v", s)
	}
}

func groupEqual(a, b Group) bool { return a.Subscribers == b.Subscribers && slices.Equal(a.Key, b.Key) }
