package node_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
)

func replyCode(err error) string {
	var re *client.ReplyError
	if errors.As(err, &re) {
		return re.Code
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}

func TestRoomAuthorizationMatrix(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	type who struct {
		perms, projects []string
	}
	var (
		member    = who{[]string{"tasks:read"}, []string{"p1"}}
		noRead    = who{nil, []string{"p1"}}
		allProj   = who{[]string{"tasks:read"}, []string{"*"}}
		sysReader = who{[]string{"system:read"}, nil}
		admin     = who{[]string{"admin"}, nil}
		nobody    = who{}
	)
	cases := []struct {
		who  who
		room string
		want string
	}{
		{nobody, "user:u1", "ok"},
		{nobody, "user:u2", "forbidden"},
		{admin, "user:u2", "ok"},
		{member, "project:p1", "ok"},
		{member, "project:p2", "forbidden"},
		{noRead, "project:p1", "forbidden"},
		{allProj, "project:p2", "ok"},
		{admin, "project:p9", "ok"},
		{member, "global", "forbidden"},
		{sysReader, "global", "ok"},
		{admin, "global", "ok"},
		{member, "team:t1", "bad_request"},
		{member, "project:", "bad_request"},
		{member, "projectp1", "bad_request"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%v/%v %s", tc.who.perms, tc.who.projects, tc.room), func(t *testing.T) {
			c := edgetest.Dial(t, e, edgetest.Token(t, "u1", tc.who.perms, tc.who.projects, time.Hour))
			if got := replyCode(c.Subscribe(ctxT(t), tc.room)); got != tc.want {
				t.Fatalf("subscribe %s: %s; want %s", tc.room, got, tc.want)
			}
		})
	}
}

func TestPermissionAndTypeFilters(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	withLogs := edgetest.Dial(t, e, edgetest.Token(t, "a", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour))
	noLogs := edgetest.Dial(t, e, edgetest.Token(t, "b", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	onlyUpdates := edgetest.Dial(t, e, edgetest.Token(t, "c", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour))
	for _, c := range []*client.Conn{withLogs, noLogs} {
		if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := onlyUpdates.Subscribe(ctxT(t), "project:p1", "task_updated"); err != nil {
		t.Fatal(err)
	}
	r := room.Project("p1")
	logs := events.TaskProgress(r, &pb.TaskProgress{TaskId: "t1", Progress: 0.5, Logs: []*pb.LogEntry{{Line: "secret log"}}})
	logs.RequiredPermission = "logs:read"
	created := events.TaskCreated(r, "u1", &pb.Task{Id: "t2", Title: "x"})
	updated := events.TaskUpdated(r, "u1", "t2", &pb.Task{Title: "y"}, "title")
	for _, ev := range []*pb.Event{logs, created, updated} {
		edgetest.Publish(t, js, ev)
	}
	expect := func(c *client.Conn, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if m := edgetest.NextEvent(t, c, 5*time.Second); m.Event.ID != id {
				t.Fatalf("got event %s (%s); want %s", m.Event.ID, m.Event.Type, id)
			}
		}
		edgetest.NoMessage(t, c, 200*time.Millisecond)
	}
	expect(withLogs, logs.Id, created.Id, updated.Id)
	expect(noLogs, created.Id, updated.Id)
	expect(onlyUpdates, updated.Id)

	// An unknown event type in the filter is refused.
	if got := replyCode(noLogs.Subscribe(ctxT(t), "project:p1", "task_exploded")); got != "bad_request" {
		t.Fatalf("unknown type filter: %s", got)
	}
}

// roomSubjects lists, sorted, the subjects of the NATS server's
// subscriptions to rooms' live subjects: what rooms reached NATS. (A count
// of all subscriptions would also see the node's own, made as it goes.)
func roomSubjects(t *testing.T, n *edgetest.NATS) []string {
	t.Helper()
	sz, err := n.Server.Subsz(&server.SubszOptions{Subscriptions: true, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range sz.Subs {
		if strings.HasPrefix(d.Subject, room.LivePrefix+".") {
			out = append(out, d.Subject)
		}
	}
	slices.Sort(out)
	return out
}

func TestRoomInjectionRefused(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"admin"}, []string{"*"}, time.Hour))
	before := roomSubjects(t, n)
	bad := []string{
		"project:p1.x", "project:*", "project:>", "project:p 1", "user:u1.>", "user:*",
		"project:" + strings.Repeat("a", 65), "project:p1\n", "project:p\u00e91", "global.x", "global:x",
	}
	for _, r := range bad {
		if got := replyCode(c.Subscribe(ctxT(t), r)); got != "bad_request" {
			t.Errorf("subscribe %q: %s; want bad_request", r, got)
		}
	}
	if got := roomSubjects(t, n); !slices.Equal(got, before) {
		t.Fatalf("NATS subscriptions on room subjects %q -> %q: a refused room reached NATS", before, got)
	}
	// 64 characters is the longest valid id.
	valid := room.Project(strings.Repeat("a", 64))
	if got := replyCode(c.Subscribe(ctxT(t), valid.String())); got != "ok" {
		t.Fatalf("64-char id: %s", got)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(before), valid.LiveSubject())))
	edgetest.Eventually(t, 5*time.Second, func() bool { return slices.Equal(roomSubjects(t, n), want) }, "one NATS subscription, for the valid room")
}

func TestUnsubscribeStopsEventsAndReleasesNATS(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Policy = mustPolicy(t, "defaults:\n  ttl: 0s\n") })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	a, b := edgetest.Dial(t, e, tok), edgetest.Dial(t, e, tok)
	before := n.Server.NumSubscriptions()
	for _, c := range []*client.Conn{a, b} {
		if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Server.NumSubscriptions(); got != before+1 {
		t.Fatalf("two subscribers of one room: %d NATS subscriptions added; want 1", got-before)
	}
	if err := a.Unsubscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	if got := replyCode(a.Unsubscribe(ctxT(t), "project:p1")); got != "not_found" {
		t.Fatalf("second unsubscribe: %s; want not_found", got)
	}
	ev := events.TaskDeleted(room.Project("p1"), "u1", "t1")
	edgetest.Publish(t, js, ev)
	if m := edgetest.NextEvent(t, b, 5*time.Second); m.Event.ID != ev.Id {
		t.Fatalf("b got %s", m.Raw)
	}
	edgetest.NoMessage(t, a, 200*time.Millisecond)
	if err := b.Unsubscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 5*time.Second, func() bool { return n.Server.NumSubscriptions() == before }, "room's NATS subscription removed after the last leave")
}

// TestTokenRefreshRechecksRoomPolicy: a refreshed token that no longer
// holds a room policy's extra permission leaves that room (unsubscribed,
// forbidden), and the session's other rooms go on.
func TestTokenRefreshRechecksRoomPolicy(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Policy = mustPolicy(t, `
rooms:
  - match: "project:secret-*"
    permissions: ["secret:read"]
`)
	})
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read", "secret:read"}, []string{"*"}, time.Hour))
	for _, r := range []string{"project:secret-x", "project:p1"} {
		if err := c.Subscribe(ctxT(t), r); err != nil {
			t.Fatalf("subscribe %s: %v", r, err)
		}
	}
	if _, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"*"}, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := nextMessage(t, c, "unsubscribed"); m.Op != "unsubscribed" || m.Room != "project:secret-x" || m.Reason != "forbidden" {
		t.Fatalf("got %+v; want unsubscribed project:secret-x forbidden", m)
	}
	ev := events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: "still here"}, "title")
	events.Normalize(ev)
	edgetest.Publish(t, js, ev)
	if m := edgetest.NextEvent(t, c, 10*time.Second); m.Room != "project:p1" || m.Event.ID != ev.Id {
		t.Fatalf("got %s %s; want project:p1's event %s", m.Room, m.Event.ID, ev.Id)
	}
}

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRoomPolicy: a policy file's maxClients refuses the next subscriber
// with room_full, its permissions are required on top of the built-in
// rules, and its ttl keeps an empty room's NATS subscription for a while
// (a returning client finds the room ready) before tearing it down.
func TestRoomPolicy(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Policy = mustPolicy(t, `
rooms:
  - match: "project:small"
    maxClients: 2
    ttl: 1s
  - match: "project:secret-*"
    permissions: ["secret:read"]
defaults:
  ttl: 0s
`)
	})
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"*"}, time.Hour)
	a, b, c := edgetest.Dial(t, e, tok), edgetest.Dial(t, e, tok), edgetest.Dial(t, e, tok)
	for _, cl := range []*client.Conn{a, b} {
		if err := cl.Subscribe(ctxT(t), "project:small"); err != nil {
			t.Fatal(err)
		}
	}
	if got := replyCode(c.Subscribe(ctxT(t), "project:small")); got != "room_full" {
		t.Fatalf("third subscriber: %s, want room_full", got)
	}
	if got := replyCode(c.Subscribe(ctxT(t), "project:secret-x")); got != "forbidden" {
		t.Fatalf("without secret:read: %s, want forbidden", got)
	}
	d := edgetest.Dial(t, e, edgetest.Token(t, "u2", []string{"tasks:read", "secret:read"}, []string{"*"}, time.Hour))
	if err := d.Subscribe(ctxT(t), "project:secret-x"); err != nil {
		t.Fatalf("with secret:read: %v", err)
	}

	// Both leave: the room stays for its ttl, then goes.
	base := n.Server.NumSubscriptions()
	for _, cl := range []*client.Conn{a, b} {
		if err := cl.Unsubscribe(ctxT(t), "project:small"); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Server.NumSubscriptions(); got != base {
		t.Fatalf("NATS subscriptions %d right after the last leave, want %d (kept for the ttl)", got, base)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return n.Server.NumSubscriptions() == base-1 }, "room torn down after its ttl")
}
