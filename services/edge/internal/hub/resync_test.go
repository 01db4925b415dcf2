package hub

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// missed publishes n events of r to the stream after cutting the room's
// live subscription, so the room misses them; it returns their sequences.
func missed(t *testing.T, h *Hub, js jetstream.JetStream, r room.Room, n int) []uint64 {
	t.Helper()
	if err := h.room(r.LiveSubject()).natsSub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for range n {
		ack, err := events.Publish(context.Background(), js, events.TaskUpdated(r, "u7", "t1", &pb.Task{Title: "v"}, "title"))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	return seqs
}

func joinOne(t *testing.T, h *Hub, r room.Room) *sink {
	t.Helper()
	s := &sink{claims: &auth.Claims{Subject: "u", Permissions: []string{"tasks:read"}, Projects: []string{r.ID}}}
	if err := h.Join(context.Background(), NewSubscription(r, s, nil, false), 0, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *sink) delivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// TestResyncAllRepairsTheRoomsBehind: after a reconnect, ResyncAll looks
// every room up and repairs the one that missed events, up to the
// stream's last; a room that missed nothing is left as it was; a room
// whose position was never known takes the stream's, without repairing.
func TestResyncAllRepairsTheRoomsBehind(t *testing.T) {
	h, js := newHubJS(t)
	p1, p2, p3 := room.Project("p1"), room.Project("p2"), room.Project("p3")
	a, b, c := joinOne(t, h, p1), joinOne(t, h, p2), joinOne(t, h, p3)
	seqs := missed(t, h, js, p1, 3)
	rs3 := h.room(p3.LiveSubject())
	seqs3 := missed(t, h, js, p3, 2)
	rs3.known.Store(false) // as when the stream could not be read at its creation
	h.ResyncAll()
	rs1 := h.room(p1.LiveSubject())
	eventually(t, func() bool {
		return rs1.lastSeq.Load() == seqs[2] && a.delivered() == 3 && rs1.repairs.Load() == 1 && rs1.repaired.Load() == 3
	}, "p1 repaired: 3 events in one repair")
	eventually(t, func() bool { return rs3.known.Load() && rs3.lastSeq.Load() == seqs3[1] }, "p3 at the stream's position")
	if c.delivered() != 0 || rs3.repairs.Load() != 0 {
		t.Fatalf("p3 (position unknown): %d events delivered, %d repairs; want none", c.delivered(), rs3.repairs.Load())
	}
	if rs := h.room(p2.LiveSubject()); rs.repairs.Load() != 0 || b.delivered() != 0 {
		t.Fatalf("p2: %d repairs, %d events delivered; want none", rs.repairs.Load(), b.delivered())
	}
}

// TestResyncToLookedUpPosition: a resync request that carries the room's
// stream position (as ResyncAll's do) repairs up to that position, not
// to wherever the stream is when the shard handles it, when it was looked
// up in the room's current epoch; from another epoch (the room re-created,
// or its stream recreated, since) the shard looks the position up itself.
func TestResyncToLookedUpPosition(t *testing.T) {
	h, js := newHubJS(t)
	p1 := room.Project("p1")
	a := joinOne(t, h, p1)
	seqs := missed(t, h, js, p1, 5)
	rs := h.room(p1.LiveSubject())
	resyncTo := func(last, epoch uint64) {
		msg := &nats.Msg{Subject: p1.LiveSubject(), Header: nats.Header{}}
		msg.Header.Set(controlHeader, "resync")
		msg.Header.Set(lastHeader, strconv.FormatUint(last, 10))
		msg.Header.Set(epochHeader, strconv.FormatUint(epoch, 10))
		dispatchAll(h, msg)
	}
	resyncTo(seqs[2], rs.epoch.Load())
	if got := a.delivered(); got != 3 || rs.lastSeq.Load() != seqs[2] {
		t.Fatalf("%d events delivered, room at %d; want 3, at %d", got, rs.lastSeq.Load(), seqs[2])
	}
	resyncTo(seqs[3], rs.epoch.Load()+1)
	if got := a.delivered(); got != 5 || rs.lastSeq.Load() != seqs[4] {
		t.Fatalf("from another epoch: %d events delivered, room at %d; want 5, at %d (looked up again)", got, rs.lastSeq.Load(), seqs[4])
	}
}
