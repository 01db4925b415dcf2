package revocation_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/revocation"
)

// TestListKeepsTheLaterRevocation: a user or room revoked twice keeps the
// later time, whatever the order the revocations are added in; one older
// than the TTL is not kept; a token from the revocation's second counts as
// after it, one from the second before as before it.
func TestListKeepsTheLaterRevocation(t *testing.T) {
	l := revocation.New(time.Hour)
	sec := time.Now().Truncate(time.Second)
	at := sec.Add(-10*time.Minute + 400*time.Millisecond) // not on a whole second
	p1 := room.Project("p1")
	l.Add("u1", []room.Room{p1}, at)
	l.Add("u1", []room.Room{p1}, at.Add(-10*time.Minute)) // older, read later: ignored
	l.Add("u4", nil, at.Add(-10*time.Minute))
	l.Add("u4", nil, at) // newer, read later: taken
	if !l.User("u4", sec.Add(-10*time.Minute-time.Second)) || l.User("u4", sec.Add(-10*time.Minute)) {
		t.Fatal("a user revoked again does not go by the later revocation")
	}
	if !l.Room("u1", p1, sec.Add(-10*time.Minute-time.Second)) {
		t.Fatal("a token from the second before the later revocation is not refused")
	}
	if l.Room("u1", p1, sec.Add(-10*time.Minute)) {
		t.Fatal("a token from the revocation's second is refused")
	}
	if l.Room("u1", room.Project("p2"), time.Time{}) || l.User("u1", time.Time{}) {
		t.Fatal("a room revocation spread to another room or the whole user")
	}
	l.Add("u2", nil, sec.Add(-2*time.Hour)) // beyond the TTL
	if l.User("u2", time.Time{}) {
		t.Fatal("a revocation older than the TTL was kept")
	}
	l.Add("u3", nil, sec)
	if !l.User("u3", time.Time{}) || !l.Room("u3", p1, sec.Add(-time.Second)) {
		t.Fatal("a user revocation does not refuse a token without iat, or its rooms")
	}
	if l.Loaded() {
		t.Fatal("a new list is loaded before anything marked it")
	}
}

// TestHits: a revocation hits every connection that held its token when
// it was made, and a later one only if its token predates it by Before.
func TestHits(t *testing.T) {
	at := time.Now().Truncate(time.Second).Add(400 * time.Millisecond)
	sec := at.Truncate(time.Second)
	for _, tc := range []struct {
		name            string
		iat, acceptedAt time.Time
		want            bool
	}{
		{"held before, old token", sec.Add(-time.Hour), at.Add(-time.Minute), true},
		{"held before, token of the revocation's second", sec, at.Add(-100 * time.Millisecond), true},
		{"opened after, old token", sec.Add(-time.Second), at.Add(time.Minute), true},
		{"opened after, token without iat", time.Time{}, at.Add(time.Minute), true},
		{"opened after, token of the revocation's second", sec, at.Add(time.Minute), false},
		{"opened after, newer token", sec.Add(time.Second), at.Add(time.Minute), false},
	} {
		if got := revocation.Hits(tc.iat, tc.acceptedAt, at); got != tc.want {
			t.Errorf("%s: Hits = %v, want %v", tc.name, got, tc.want)
		}
	}
}

type applied struct {
	mu   sync.Mutex
	msgs []revoke.Message
	at   []time.Time
}

func (a *applied) apply(m revoke.Message, _ []room.Room, at time.Time, _ bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msgs = append(a.msgs, m)
	a.at = append(a.at, at)
}

func (a *applied) count(user string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.msgs {
		if m.UserID == user {
			n++
		}
	}
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// follow starts a follower on js with fast checks (stopped when the test
// ends) and waits until it is ready, on an empty stream.
func follow(t *testing.T, js jetstream.JetStream) (*revocation.List, *applied, *revocation.Follower) {
	t.Helper()
	list := revocation.New(time.Hour)
	got := &applied{}
	f := revocation.Follow(js, list, got.apply, revocation.FollowOptions{
		Stream:        revoke.StreamConfig{MaxAge: time.Hour},
		CheckInterval: 100 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond,
	}, zerolog.New(zerolog.NewTestWriter(t)))
	t.Cleanup(f.Close)
	edgetest.Eventually(t, 10*time.Second, func() bool { return f.Ready() == nil }, "follower ready on an empty stream")
	return list, got, f
}

// TestFollowerSkipsInvalidAndRereadsARecreatedStream: the follower creates
// the stream, applies stored revocations with the stream's timestamp,
// skips an invalid message and goes on, and after the stream is deleted it
// creates it again and applies what is published there.
func TestFollowerSkipsInvalidAndRereadsARecreatedStream(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	list, got, f := follow(t, js)
	if !list.Loaded() {
		t.Fatal("follower ready, list not marked loaded")
	}

	st, err := js.Stream(ctxT(t), revoke.StreamName)
	if err != nil {
		t.Fatalf("the follower did not create the stream: %v", err)
	}
	if cfg := st.CachedInfo().Config; cfg.MaxAge != time.Hour || cfg.Subjects[0] != revoke.Subject {
		t.Fatalf("stream config: max age %s, subjects %v", cfg.MaxAge, cfg.Subjects)
	}
	if err := nc.Publish(revoke.Subject, []byte(`{"userId":"bad user"}`)); err != nil {
		t.Fatal(err)
	}
	ack, err := revoke.Publish(ctxT(t), js, revoke.Message{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return got.count("u1") == 1 }, "u1 applied after an invalid message")
	if f.Invalid() != 1 {
		t.Fatalf("invalid messages skipped: %d, want 1", f.Invalid())
	}
	stored, err := st.GetMsg(ctxT(t), ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	got.mu.Lock()
	at := got.at[0]
	got.mu.Unlock()
	if !at.Equal(stored.Time) {
		t.Fatalf("applied at %s, want the stream's timestamp %s", at, stored.Time)
	}
	if !list.User("u1", stored.Time.Add(-time.Second)) {
		t.Fatal("the list does not hold the applied revocation")
	}

	if err := js.DeleteStream(ctxT(t), revoke.StreamName); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool {
		_, err := js.Stream(ctxT(t), revoke.StreamName)
		return err == nil
	}, "stream created again by the follower")
	// The recreated stream's first message (sequence 1, below where the
	// old stream's consumer stopped) must be read: the follower starts
	// again from the stream's start.
	if ack, err := revoke.Publish(ctxT(t), js, revoke.Message{UserID: "u2"}); err != nil || ack.Sequence != 1 {
		t.Fatalf("publish on the recreated stream: %+v, %v", ack, err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return got.count("u2") == 1 }, "the recreated stream's first revocation applied")
	if !list.User("u1", stored.Time.Add(-time.Second)) {
		t.Fatal("the revocation read from the deleted stream was forgotten")
	}
}

// TestFollowerReplacesAStalledConsumer: a consumer that delivers nothing
// while the stream holds a revocation it has not handled (here: paused on
// the server, which the library does not notice; in a cluster: one that
// did not recover when the NATS node holding it died) is replaced by a
// new one that starts after the last revocation handled: the revocation
// is applied, and the earlier one is not applied twice.
func TestFollowerReplacesAStalledConsumer(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	_, got, _ := follow(t, js)
	if _, err := revoke.Publish(ctxT(t), js, revoke.Message{UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return got.count("u1") == 1 }, "u1 applied")

	st, err := js.Stream(ctxT(t), revoke.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	lister := st.ConsumerNames(ctxT(t))
	for name := range lister.Name() {
		names = append(names, name)
	}
	if err := lister.Err(); err != nil || len(names) != 1 {
		t.Fatalf("consumers on the stream: %v, %v; want the follower's one", names, err)
	}
	if _, err := st.PauseConsumer(ctxT(t), names[0], time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := revoke.Publish(ctxT(t), js, revoke.Message{UserID: "u2"}); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return got.count("u2") == 1 }, "u2 applied despite the paused consumer")
	if got.count("u1") != 1 {
		t.Fatalf("u1 applied %d times; the new consumer must start after it", got.count("u1"))
	}
}
