package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// Client's Run, every Conn's reader, every edge node and NATS server must
// be stopped by the end of its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const wait = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func publish(t *testing.T, js jetstream.JetStream, r room.Room) uint64 {
	t.Helper()
	return edgetest.Publish(t, js, events.TaskDeleted(r, "u1", "t1")).Sequence
}

// states records every StateChange of a Client, in order. OnState must not
// block, so it only appends.
type states struct {
	mu  sync.Mutex
	all []client.StateChange
}

func (s *states) on(c client.StateChange) {
	s.mu.Lock()
	s.all = append(s.all, c)
	s.mu.Unlock()
}

func (s *states) list() []client.StateChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]client.StateChange(nil), s.all...)
}

// waitFor polls until a change at index >= from matches and returns it
// with its index.
func (s *states) waitFor(t *testing.T, from int, what string, match func(client.StateChange) bool) (client.StateChange, int) {
	t.Helper()
	var got client.StateChange
	idx := -1
	edgetest.Eventually(t, wait, func() bool {
		for i, c := range s.list() {
			if i >= from && match(c) {
				got, idx = c, i
				return true
			}
		}
		return false
	}, what)
	return got, idx
}

func is(st client.State) func(client.StateChange) bool {
	return func(c client.StateChange) bool { return c.State == st }
}

// running is a Client whose Run goroutine the test owns.
type running struct {
	c      *client.Client
	cancel context.CancelFunc
	done   chan error // Run's result
}

// run starts c.Run; it is cancelled and waited for when the test ends.
func run(t *testing.T, c *client.Client) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// result waits for Run to return.
func (r *running) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(wait):
		t.Fatal("Run did not return")
		return nil
	}
}

// next returns the next message on Events.
func next(t *testing.T, c *client.Client) *client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Events():
		if !ok {
			t.Fatal("Events closed while waiting for a message")
		}
		return m
	case <-time.After(wait):
		t.Fatal("no message on Events")
	}
	return nil
}

func nextEvent(t *testing.T, c *client.Client, r string, seq uint64) {
	t.Helper()
	m := next(t, c)
	if m.Op != "event" || m.Room != r || m.Seq != seq {
		t.Fatalf("got %s %s seq %d (%s), want event %s seq %d", m.Op, m.Room, m.Seq, m.Raw, r, seq)
	}
}

// eventsClosed checks that Events is closed once Run has returned (after
// whatever was still buffered).
func eventsClosed(t *testing.T, c *client.Client) {
	t.Helper()
	for {
		select {
		case _, ok := <-c.Events():
			if !ok {
				return
			}
		case <-time.After(wait):
			t.Fatal("Events not closed after Run returned")
		}
	}
}

func rooms(t *testing.T, e *edgetest.Edge, n float64) {
	t.Helper()
	edgetest.Eventually(t, wait, func() bool { return e.Metric(t, "eventedge_rooms") == n }, strconv.Itoa(int(n))+" rooms on "+e.URL)
}

// subscribed waits until c's subscription of room is answered: only events
// stored after that are promised (one stored while the subscribe is in
// flight may be before the position the server answers with).
func subscribed(t *testing.T, c *client.Client, room string) {
	t.Helper()
	edgetest.Eventually(t, wait, func() bool { return c.Subscribed(room) }, room+" subscribed")
}

// TestReconnectAfterGracefulShutdown: node A shuts down (1012, service
// restart); the client goes to node B at once (with jitter below
// BaseDelay) and resumes: every event arrives once, in order.
func TestReconnectAfterGracefulShutdown(t *testing.T) {
	for _, mode := range []client.Protocol{client.JSON, client.Protobuf} {
		t.Run(mode.String(), func(t *testing.T) { testReconnectAfterGracefulShutdown(t, mode) })
	}
}

func testReconnectAfterGracefulShutdown(t *testing.T, mode client.Protocol) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	a := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-a" })
	b := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-b" })
	const base = 500 * time.Millisecond
	st := &states{}
	c := client.NewClient(client.Config{
		URLs:      []string{a.URL, b.URL},
		Token:     edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour),
		BaseDelay: base,
		OnState:   st.on,
		Protocol:  mode,
	})
	c.Subscribe("project:p1")
	run(t, c)
	if s, _ := st.waitFor(t, 0, "connected", is(client.StateConnected)); s.Node != "edge-a" || s.URL != a.URL {
		t.Fatalf("first connection to %s (%s), want edge-a", s.Node, s.URL)
	}
	rooms(t, a, 1)

	var want []uint64
	for range 3 {
		want = append(want, publish(t, js, room.Project("p1")))
	}
	for _, seq := range want {
		nextEvent(t, c, "project:p1", seq)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var after []uint64
	for range 3 {
		after = append(after, publish(t, js, room.Project("p1")))
	}

	s, i := st.waitFor(t, 0, "reconnecting after 1012", is(client.StateReconnecting))
	if code := client.CloseCode(s.Err); code != 1012 {
		t.Fatalf("reconnecting after %v (code %d), want 1012", s.Err, code)
	}
	if s.RetryIn < 0 || s.RetryIn >= base {
		t.Fatalf("after 1012 RetryIn = %s, want in [0, %s)", s.RetryIn, base)
	}
	if s.URL != b.URL {
		t.Fatalf("next attempt at %s, want %s", s.URL, b.URL)
	}
	if s, _ := st.waitFor(t, i, "connected again", is(client.StateConnected)); s.Node != "edge-b" {
		t.Fatalf("reconnected to %s, want edge-b", s.Node)
	}
	for _, seq := range after {
		nextEvent(t, c, "project:p1", seq)
	}
	// Nothing duplicated in between: the next message is a new event.
	marker := publish(t, js, room.Project("p1"))
	nextEvent(t, c, "project:p1", marker)
	if got := c.Position("project:p1"); got != marker {
		t.Fatalf("Position = %d, want %d", got, marker)
	}
	if got := c.Position("project:none"); got != 0 {
		t.Fatalf("Position of a room not subscribed = %d, want 0", got)
	}
}

// TestSubscribeBeforeAndWhileConnected: a room added before Run is
// subscribed on connect, one added while connected at once; a forbidden
// room yields "unsubscribed" (forbidden) and the others keep working.
func TestSubscribeBeforeAndWhileConnected(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	st := &states{}
	c := client.NewClient(client.Config{
		URLs:    []string{e.URL},
		Token:   edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1", "p2"}, time.Hour),
		OnState: st.on,
	})
	c.Subscribe("project:p1")
	c.Subscribe("project:p1") // twice is once
	c.Subscribe("project:p8") // forbidden, found out on connect
	if c.Subscribed("project:p1") {
		t.Fatal("Subscribed before Run")
	}
	run(t, c)
	st.waitFor(t, 0, "connected", is(client.StateConnected))

	m := next(t, c)
	if m.Op != "unsubscribed" || m.Room != "project:p8" || m.Reason != "forbidden" {
		t.Fatalf("got %+v, want unsubscribed project:p8 forbidden", m)
	}
	if c.Subscribed("project:p8") {
		t.Fatal("a forbidden room reported as subscribed")
	}
	rooms(t, e, 1)
	subscribed(t, c, "project:p1")
	nextEvent(t, c, "project:p1", publish(t, js, room.Project("p1")))

	c.Subscribe("project:p2")
	rooms(t, e, 2)
	subscribed(t, c, "project:p2")
	nextEvent(t, c, "project:p2", publish(t, js, room.Project("p2")))

	c.Subscribe("project:p9") // forbidden, while connected
	m = next(t, c)
	if m.Op != "unsubscribed" || m.Room != "project:p9" || m.Reason != "forbidden" {
		t.Fatalf("got %+v, want unsubscribed project:p9 forbidden", m)
	}
	c.Subscribe("team:t1") // not a room
	m = next(t, c)
	if m.Op != "unsubscribed" || m.Room != "team:t1" || m.Reason != "bad_request" {
		t.Fatalf("got %+v, want unsubscribed team:t1 bad_request", m)
	}
	nextEvent(t, c, "project:p1", publish(t, js, room.Project("p1")))
	nextEvent(t, c, "project:p2", publish(t, js, room.Project("p2")))
	for _, s := range st.list() {
		if s.State != client.StateConnecting && s.State != client.StateConnected {
			t.Fatalf("unexpected state change %s (%v): a refused room must not end the connection", s.State, s.Err)
		}
	}
}

// TestSubscribeWhileBusyTakesEffect: Subscribe documents that a room
// "takes effect on the current connection". Rooms added while Run's loop
// is busy delivering go through a 64-slot channel; when it is full the
// room is silently left for the next connection (client.Subscribe's
// `default:` case), so here 6 of 70 rooms are never subscribed although
// the connection stays up.
func TestSubscribeWhileBusyTakesEffect(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	st := &states{}
	c := client.NewClient(client.Config{
		URLs:    []string{e.URL},
		Token:   edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"*"}, time.Hour),
		OnState: st.on,
		Buffer:  1,
	})
	c.Subscribe("project:p0")
	run(t, c)
	st.waitFor(t, 0, "connected", is(client.StateConnected))
	rooms(t, e, 1)
	subscribed(t, c, "project:p0")

	// Events holds one message; Run's loop takes the second and waits to
	// hand it over. Position moves before that hand-over, so once it shows
	// the second event the loop is parked there and reads no new rooms.
	s1 := publish(t, js, room.Project("p0"))
	s2 := publish(t, js, room.Project("p0"))
	edgetest.Eventually(t, wait, func() bool { return c.Position("project:p0") == s2 }, "second event taken by Run")

	const added = 70
	for i := 1; i <= added; i++ {
		c.Subscribe("project:p" + strconv.Itoa(i))
	}
	nextEvent(t, c, "project:p0", s1)
	nextEvent(t, c, "project:p0", s2)

	deadline := time.Now().Add(5 * time.Second)
	var got float64
	for time.Now().Before(deadline) {
		if got = e.Metric(t, "eventedge_rooms"); got == added+1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != added+1 {
		t.Fatalf("%d rooms added while connected, %v subscribed on the connection after 5s (want %d): the rest wait for a reconnect", added, got-1, added)
	}
	for _, s := range st.list() {
		if s.State != client.StateConnecting && s.State != client.StateConnected {
			t.Fatalf("unexpected state change %s (%v)", s.State, s.Err)
		}
	}
}

// TestClientAcksPositions: with a DeviceID the client acknowledges what it
// delivered, and the edge stores it in the positions bucket.
func TestClientAcksPositions(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Positions.FlushInterval = 50 * time.Millisecond })
	st := &states{}
	c := client.NewClient(client.Config{
		URLs:        []string{e.URL},
		Token:       edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour),
		DeviceID:    "laptop-1",
		AckInterval: 20 * time.Millisecond,
		OnState:     st.on,
	})
	c.Subscribe("project:p1")
	run(t, c)
	st.waitFor(t, 0, "connected", is(client.StateConnected))
	rooms(t, e, 1)
	subscribed(t, c, "project:p1")
	var last uint64
	for range 5 {
		last = publish(t, js, room.Project("p1"))
		nextEvent(t, c, "project:p1", last)
	}
	key := positions.Key("u1", "laptop-1", room.Project("p1"))
	want := strconv.FormatUint(last, 10)
	var got string
	edgetest.Eventually(t, wait, func() bool {
		kv, err := js.KeyValue(ctxT(t), positions.Bucket)
		if err != nil {
			return false
		}
		entry, err := kv.Get(ctxT(t), key)
		if err != nil {
			return false
		}
		got = string(entry.Value())
		return got == want
	}, "position "+want+" stored for "+key)
}

func TestRunWithoutURLs(t *testing.T) {
	st := &states{}
	c := client.NewClient(client.Config{Token: "x", OnState: st.on})
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("Run without URLs: no error")
	}
	eventsClosed(t, c)
	if l := st.list(); len(l) == 0 || l[len(l)-1].State != client.StateOffline {
		t.Fatalf("states %v, want to end offline", l)
	}
}

// TestRunUnauthorized: a refused token without TokenFunc ends Run with
// ErrUnauthorized after a StateUnauthorized change.
func TestRunUnauthorized(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	st := &states{}
	c := client.NewClient(client.Config{URLs: []string{e.URL}, Token: "not-a-token", OnState: st.on})
	c.Subscribe("user:u1")
	r := run(t, c)
	err := r.result(t)
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("Run: %v, want ErrUnauthorized", err)
	}
	if code := client.CloseCode(err); code != 4001 {
		t.Fatalf("Run: %v (code %d), want the 4001 close in it", err, code)
	}
	eventsClosed(t, c)
	var got []client.State
	for _, s := range st.list() {
		got = append(got, s.State)
	}
	want := []client.State{client.StateConnecting, client.StateUnauthorized, client.StateOffline}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("states %v, want %v", got, want)
	}
	if u := st.list()[1]; client.CloseCode(u.Err) != 4001 || u.URL != e.URL {
		t.Fatalf("unauthorized change %+v, want the 4001 from %s", u, e.URL)
	}
}

// TestRunCancel: cancelling Run's context ends it with nil, offline, and
// Events closed — while connected and while waiting to reconnect.
func TestRunCancel(t *testing.T) {
	t.Run("connected", func(t *testing.T) {
		n := edgetest.StartNATS(t)
		e := edgetest.StartEdge(t, n, nil)
		st := &states{}
		c := client.NewClient(client.Config{URLs: []string{e.URL}, Token: edgetest.Token(t, "u1", nil, nil, time.Hour), OnState: st.on})
		c.Subscribe("user:u1")
		r := run(t, c)
		st.waitFor(t, 0, "connected", is(client.StateConnected))
		r.cancel()
		if err := r.result(t); err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		eventsClosed(t, c)
		if l := st.list(); l[len(l)-1].State != client.StateOffline {
			t.Fatalf("last state %s, want offline", l[len(l)-1].State)
		}
		edgetest.Eventually(t, wait, func() bool { return e.Metric(t, "eventedge_connections") == 0 }, "connection closed on the edge")
	})
	t.Run("reconnecting", func(t *testing.T) {
		st := &states{}
		c := client.NewClient(client.Config{URLs: []string{"ws://" + closedAddr(t) + "/v1/ws"}, Token: "x", OnState: st.on, BaseDelay: time.Hour, MaxDelay: time.Hour})
		r := run(t, c)
		s, _ := st.waitFor(t, 0, "reconnecting", is(client.StateReconnecting))
		if s.Err == nil || s.RetryIn <= 0 {
			t.Fatalf("reconnecting %+v, want the dial error and a delay", s)
		}
		r.cancel()
		if err := r.result(t); err != nil {
			t.Fatalf("Run after cancel: %v, want nil", err)
		}
		eventsClosed(t, c)
		if l := st.list(); l[len(l)-1].State != client.StateOffline {
			t.Fatalf("last state %s, want offline", l[len(l)-1].State)
		}
	})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dial connects with opts; the Conn is closed when the test ends.
func dial(t *testing.T, e *edgetest.Edge, opts client.Options) *client.Conn {
	t.Helper()
	c, err := client.Dial(ctxT(t), e.URL, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func nextMsg(t *testing.T, c *client.Conn) *client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("connection ended: %v", c.Err())
		}
		return m
	case <-time.After(wait):
		t.Fatal("no message")
	}
	return nil
}

func TestConnSubscribeFromReturnsPosition(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1", "p2"}, time.Hour)
	var seqs []uint64
	for range 3 {
		seqs = append(seqs, publish(t, js, room.Project("p1")))
	}

	live := dial(t, e, client.Options{Token: tok})
	if pos, err := live.SubscribeFrom(ctxT(t), "project:p1", nil); err != nil || pos != seqs[2] {
		t.Fatalf("live subscribe: pos %d, %v; want the room's last %d", pos, err, seqs[2])
	}
	if pos, err := live.SubscribeFrom(ctxT(t), "project:p2", nil); err != nil || pos != 0 {
		t.Fatalf("live subscribe to an empty room: pos %d, %v; want 0", pos, err)
	}

	resume := dial(t, e, client.Options{Token: tok})
	since := seqs[0]
	if pos, err := resume.SubscribeFrom(ctxT(t), "project:p1", &since); err != nil || pos != since {
		t.Fatalf("subscribe since %d: pos %d, %v", since, pos, err)
	}
	for _, want := range seqs[1:] {
		if m := nextMsg(t, resume); m.Op != "event" || m.Seq != want || m.Event == nil || m.Event.Type != "task_deleted" {
			t.Fatalf("replay: got %s, want event seq %d", m.Raw, want)
		}
	}
	seq := publish(t, js, room.Project("p1"))
	for _, c := range []*client.Conn{live, resume} {
		if m := nextMsg(t, c); m.Op != "event" || m.Seq != seq || m.Room != "project:p1" {
			t.Fatalf("live event: got %s, want seq %d", m.Raw, seq)
		}
	}

	var re *client.ReplyError
	if _, err := live.SubscribeFrom(ctxT(t), "project:p3", nil); !errors.As(err, &re) || re.Code != "forbidden" {
		t.Fatalf("forbidden room: %v, want a forbidden *ReplyError", err)
	}
	if err := live.Unsubscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	if err := live.Unsubscribe(ctxT(t), "project:p1"); !errors.As(err, &re) || re.Code != "not_found" {
		t.Fatalf("second unsubscribe: %v, want not_found", err)
	}
}

// TestConnAckPingRefresh: Ack has no reply (the next reply and message are
// not disturbed) and is stored for the device; Ping answers; Refresh
// extends the session or refuses a bad token without ending it.
func TestConnAckPingRefresh(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Positions.FlushInterval = 50 * time.Millisecond })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	c := dial(t, e, client.Options{Token: tok, DeviceID: "phone-1", ClientVersion: "test/1"})
	if w := c.Welcome(); w.User != "u1" || w.Node != "edge-test" || w.Session == "" || w.ExpiresAt.IsZero() {
		t.Fatalf("welcome %+v", w)
	}
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	seq := publish(t, js, room.Project("p1"))
	if m := nextMsg(t, c); m.Seq != seq {
		t.Fatalf("got %s", m.Raw)
	}
	if err := c.Ack(ctxT(t), "project:p1", seq); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctxT(t), "project:p2", 1); err != nil { // not subscribed: ignored, no reply
		t.Fatal(err)
	}
	if rtt, err := c.Ping(ctxT(t)); err != nil || rtt < 0 {
		t.Fatalf("ping: %s, %v", rtt, err)
	}
	seq2 := publish(t, js, room.Project("p1"))
	if m := nextMsg(t, c); m.Op != "event" || m.Seq != seq2 {
		t.Fatalf("after ack and ping got %s, want event %d", m.Raw, seq2)
	}
	key := positions.Key("u1", "phone-1", room.Project("p1"))
	edgetest.Eventually(t, wait, func() bool {
		kv, err := js.KeyValue(ctxT(t), positions.Bucket)
		if err != nil {
			return false
		}
		entry, err := kv.Get(ctxT(t), key)
		return err == nil && string(entry.Value()) == strconv.FormatUint(seq, 10)
	}, "ack stored")

	first := c.Welcome().ExpiresAt
	exp, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, 2*time.Hour))
	if err != nil || !exp.After(first) {
		t.Fatalf("refresh: expiry %s, %v; want after %s", exp, err, first)
	}
	var re *client.ReplyError
	if _, err := c.Refresh(ctxT(t), "garbage"); !errors.As(err, &re) || re.Code != "unauthorized" {
		t.Fatalf("refresh with a bad token: %v, want unauthorized", err)
	}
	if _, err := c.Refresh(ctxT(t), edgetest.Token(t, "u2", nil, nil, time.Hour)); !errors.As(err, &re) || re.Code != "unauthorized" {
		t.Fatalf("refresh as another user: %v, want unauthorized", err)
	}
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("after refused refreshes the connection should stay: %v", err)
	}
}

func TestConnClose(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: edgetest.Token(t, "u1", nil, nil, time.Hour), HeaderAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctxT(t), "user:u1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	<-c.Done()
	if _, ok := <-c.Messages(); ok {
		t.Fatal("Messages open after Close")
	}
	if err := c.Subscribe(ctxT(t), "user:u1"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	edgetest.Eventually(t, wait, func() bool { return e.Metric(t, "eventedge_connections") == 0 }, "closed on the edge")
}

// TestConnServerRestart: the node's shutdown closes the Conn with 1012;
// Err says so and Close is still fine.
func TestConnServerRestart(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c := dial(t, e, client.Options{Token: edgetest.Token(t, "u1", nil, nil, time.Hour)})
	if err := e.Shutdown(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("connection not ended by the shutdown")
	}
	if code := client.CloseCode(c.Err()); code != 1012 {
		t.Fatalf("Err %v (code %d), want 1012", c.Err(), code)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after the server closed: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.AllowedOrigins = []string{"dash.example.com"} })
	tok := edgetest.Token(t, "u1", nil, nil, time.Hour)

	if c, err := client.Dial(ctxT(t), "ws://"+closedAddr(t)+"/v1/ws", client.Options{Token: tok}); err == nil {
		c.Close()
		t.Fatal("dial to a closed port: no error")
	}

	_, err := client.Dial(ctxT(t), e.URL, client.Options{Token: tok, Header: http.Header{"Origin": {"https://evil.example.net"}}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v, want an error mentioning 403", err)
	}
	dial(t, e, client.Options{Token: tok, Header: http.Header{"Origin": {"https://dash.example.com"}}})

	for _, mode := range []client.Protocol{client.JSON, client.Protobuf} {
		_, err = client.Dial(ctxT(t), e.URL, client.Options{Token: "bad", Protocol: mode})
		if code := client.CloseCode(err); code != 4001 {
			t.Fatalf("%s: bad token: %v (code %d), want a 4001 *CloseError", mode, err, code)
		}
	}
	if p, err := client.ParseProtocol("protobuf"); err != nil || p != client.Protobuf {
		t.Fatalf("ParseProtocol(protobuf) = %v, %v", p, err)
	}
	if _, err := client.ParseProtocol("xml"); err == nil || !strings.Contains(err.Error(), "want json or protobuf") {
		t.Fatalf("ParseProtocol(xml): %v", err)
	}
	if code := client.CloseCode(errors.New("x")); code != -1 {
		t.Fatalf("CloseCode of a plain error = %d, want -1", code)
	}
}
