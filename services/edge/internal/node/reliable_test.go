package node_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
)

// publisher publishes n task_updated events to r at rate per second,
// retrying each one (same id, so JetStream de-duplicates) until it is
// acknowledged, and records every acknowledged seq in log.
func publisher(t *testing.T, js jetstream.JetStream, r room.Room, n int, rate float64, log *deliverycheck.Log, progress *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		deadline := time.Now().Add(2 * time.Minute)
		for i := range n {
			<-tick.C
			ev := events.TaskUpdated(r, "u7", "t1", &pb.Task{Title: "v"}, "title")
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := events.Publish(ctx, js, ev)
				cancel()
				if err == nil {
					log.Add(r.String(), ack.Sequence)
					progress.Store(int64(i + 1))
					break
				}
				if time.Now().After(deadline) {
					done <- err
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		done <- nil
	}()
	return done
}

// reliableClient runs a reconnecting client subscribed to rooms and records
// what it delivers (events and resets) in got.
func reliableClient(t *testing.T, cfg client.Config, got *deliverycheck.Received, rooms ...string) (*client.Client, *atomic.Int64) {
	t.Helper()
	c := client.NewClient(cfg)
	for _, r := range rooms {
		c.Subscribe(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); err != nil {
			t.Errorf("client run: %v", err)
		}
	}()
	delivered := &atomic.Int64{}
	go func() {
		defer wg.Done()
		for m := range c.Events() {
			if got.Record(m) {
				delivered.Add(1)
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c, delivered
}

func connected(states chan client.StateChange) func(client.StateChange) {
	return func(s client.StateChange) {
		select {
		case states <- s:
		default:
		}
	}
}

func waitState(t *testing.T, states <-chan client.StateChange, want client.State) client.StateChange {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case s := <-states:
			if s.State == want {
				return s
			}
		case <-timeout:
			t.Fatalf("client never reached state %s", want)
		}
	}
}

func checkDelivery(t *testing.T, log *deliverycheck.Log, got *deliverycheck.Received, r string) {
	t.Helper()
	rep := deliverycheck.Check(log, got, deliverycheck.Expectation{Room: r})
	if !rep.OK() || rep.Expected == 0 {
		t.Fatalf("delivery: %s", rep)
	}
	t.Logf("delivery: %s", rep)
}

// TestResumeOnOtherNodeAfterHardStop: a client streams 2,000 events at
// 500/s from node A; A disappears mid-stream (connections dropped without a
// close frame, like kill -9); the client reconnects to node B with since.
// It receives every event exactly once, in order.
func TestResumeOnOtherNodeAfterHardStop(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	a := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-a" })
	b := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-b" })
	proxyA := edgetest.StartProxy(t, a.Addr().String())

	states := make(chan client.StateChange, 64)
	got := deliverycheck.NewReceived("c1")
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	_, delivered := reliableClient(t, client.Config{
		URLs: []string{"ws://" + proxyA.Addr() + "/v1/ws", b.URL}, Token: tok, OnState: connected(states),
	}, got, "project:p1")
	if s := waitState(t, states, client.StateConnected); s.Node != "edge-a" {
		t.Fatalf("connected to %s first, want edge-a", s.Node)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return a.Metric(t, "eventedge_rooms") == 1 }, "subscribed on A")

	log := deliverycheck.NewLog()
	var published atomic.Int64
	done := publisher(t, js, room.Project("p1"), 2000, 500, log, &published)
	edgetest.Eventually(t, 30*time.Second, func() bool { return delivered.Load() >= 700 }, "700 events through A")
	proxyA.Kill()
	if s := waitState(t, states, client.StateConnected); s.Node != "edge-b" {
		t.Fatalf("reconnected to %s, want edge-b", s.Node)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 30*time.Second, func() bool { return delivered.Load() >= 2000 }, "all 2,000 events delivered")
	checkDelivery(t, log, got, "project:p1")
	if b.Metric(t, "eventedge_resumes_total") < 1 {
		t.Fatal("node B saw no resume")
	}
}

// TestResumeAcrossNATSRestart: NATS (file store kept) restarts mid-stream;
// the publisher retries, the edge keeps its client and repairs the room
// from the stream when NATS is back.
func TestResumeAcrossNATSRestart(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	got := deliverycheck.NewReceived("c1")
	states := make(chan client.StateChange, 64)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	_, delivered := reliableClient(t, client.Config{URLs: []string{e.URL}, Token: tok, OnState: connected(states)}, got, "project:p1")
	waitState(t, states, client.StateConnected)
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Metric(t, "eventedge_rooms") == 1 }, "subscribed")

	log := deliverycheck.NewLog()
	var published atomic.Int64
	done := publisher(t, js, room.Project("p1"), 1500, 500, log, &published)
	edgetest.Eventually(t, 30*time.Second, func() bool { return published.Load() >= 500 }, "500 published")
	n.Stop()
	time.Sleep(500 * time.Millisecond) // NATS stays down for a while; publishes fail and are retried
	n.Start()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 30*time.Second, func() bool { return delivered.Load() >= int64(len(log.Seqs("project:p1"))) }, "every acknowledged event delivered")
	checkDelivery(t, log, got, "project:p1")
}

// TestResumeThroughFlakyClientConnection: a proxy cuts the client's
// connection several times while events stream; each reconnect resumes.
func TestResumeThroughFlakyClientConnection(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	proxy := edgetest.StartProxy(t, e.Addr().String())
	got := deliverycheck.NewReceived("c1")
	states := make(chan client.StateChange, 256)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	_, delivered := reliableClient(t, client.Config{URLs: []string{"ws://" + proxy.Addr() + "/v1/ws"}, Token: tok, OnState: connected(states), BaseDelay: 20 * time.Millisecond}, got, "project:p1")
	waitState(t, states, client.StateConnected)
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Metric(t, "eventedge_rooms") == 1 }, "subscribed")

	log := deliverycheck.NewLog()
	var published atomic.Int64
	done := publisher(t, js, room.Project("p1"), 1500, 500, log, &published)
	for cut := 1; cut <= 4; cut++ {
		edgetest.Eventually(t, 30*time.Second, func() bool { return published.Load() >= int64(cut*300) }, "progress")
		proxy.Cut()
		waitState(t, states, client.StateConnected)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 30*time.Second, func() bool { return delivered.Load() >= 1500 }, "all delivered")
	checkDelivery(t, log, got, "project:p1")
	if e.Metric(t, "eventedge_resumes_total") < 4 {
		t.Fatalf("resumes %v, want at least 4", e.Metric(t, "eventedge_resumes_total"))
	}
}

// TestGapRepairWhenNATSDropsMessages: the node's buffer for live messages
// holds one message, so NATS drops messages for it under a burst (a slow
// consumer); every event still reaches the client, read back from the
// stream, and the repairs are counted.
func TestGapRepairWhenNATSDropsMessages(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Hub.Shards = 1; o.Hub.ShardBuffer = 1 })
	got := deliverycheck.NewReceived("c1")
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	// Read while publishing, so the client's own queue never backs up.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for range 2000 {
			select {
			case m, ok := <-c.Messages():
				if !ok {
					return
				}
				got.Add(m.Room, m.Seq)
			case <-time.After(30 * time.Second):
				return
			}
		}
	}()
	// A burst, published asynchronously so it arrives faster than one
	// message at a time can be fanned out.
	log := deliverycheck.NewLog()
	evs := make([]*pb.Event, 2000)
	for i := range evs {
		evs[i] = events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: "v"}, "title")
	}
	for _, seq := range publishAsync(t, js, evs) {
		log.Add("project:p1", seq)
	}
	<-readDone
	checkDelivery(t, log, got, "project:p1")
	// Repaired events count as replays in the latency histogram, the
	// others as live.
	var repaired, replayed, live float64
	edgetest.Eventually(t, 10*time.Second, func() bool {
		repaired = e.Metric(t, "eventedge_gap_repairs_total")
		replayed = e.Metric(t, `eventedge_delivery_latency_seconds_count{path="replay"}`)
		live = e.Metric(t, `eventedge_delivery_latency_seconds_count{path="live"}`)
		return replayed == repaired && replayed+live == 2000
	}, "latency observed by path")
	if live == 0 {
		t.Errorf("no live delivery observed (%v repaired)", repaired)
	}
	if r := e.Metric(t, "eventedge_gap_repairs_total"); r == 0 {
		t.Fatal("no gap was repaired: the test did not exercise the repair path")
	} else {
		t.Logf("repaired %v events", r)
	}
}

// TestDeliveryLatencyByPath: events replayed for a resume are observed in
// eventedge_delivery_latency_seconds with path="replay", with their age as
// latency; a live event with path="live", and only it reaches the p99 that
// the node publishes on ctl.edge.stats.
func TestDeliveryLatencyByPath(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.StatsInterval = 200 * time.Millisecond })
	stats := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(nodestats.Subject, stats)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	// Three events an hour old, stored before anyone subscribes.
	for range 3 {
		ev := events.TaskDeleted(room.Project("p1"), "u1", "t1")
		ev.Timestamp = timestamppb.New(time.Now().Add(-time.Hour))
		edgetest.Publish(t, js, ev)
	}
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	since := uint64(0)
	if _, err := c.SubscribeFrom(ctxT(t), "project:p1", &since); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		edgetest.NextEvent(t, c, 5*time.Second)
	}
	// The live event goes out once the catch-up has handed over: one that
	// arrives while it finishes (after the last replayed event was sent)
	// is held and merged into the replay, and counted as replayed.
	edgetest.Eventually(t, 5*time.Second, func() bool {
		l := connections(t, e, "")
		return len(l.Connections) == 1 && len(l.Connections[0].Rooms) == 1 && !l.Connections[0].Rooms[0].CatchingUp
	}, "the subscription live")
	live := edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1")).Sequence
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != live {
		t.Fatalf("live seq %d, want %d", m.Seq, live)
	}

	metric := func(series string) float64 { return e.Metric(t, "eventedge_delivery_latency_seconds_"+series) }
	edgetest.Eventually(t, 5*time.Second, func() bool {
		return metric(`count{path="replay"}`) == 3 && metric(`count{path="live"}`) == 1
	}, "3 replayed and 1 live delivery observed")
	if got := metric(`bucket{path="replay",le="10"}`); got != 0 {
		t.Errorf("replayed events an hour old: %v under 10 s", got)
	}
	if got := metric(`bucket{path="live",le="10"}`); got != 1 {
		t.Errorf("live event: %v under 10 s, want 1", got)
	}

	// The published p99 covers the live delivery only: under 10 s.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case msg := <-stats:
			var s nodestats.Stats
			if err := json.Unmarshal(msg.Data, &s); err != nil {
				t.Fatal(err)
			}
			if s.P99DeliveryLatencyMs >= 10000 {
				t.Fatalf("published p99 %v ms: replayed events counted", s.P99DeliveryLatencyMs)
			}
			if s.P99DeliveryLatencyMs > 0 {
				return
			}
		case <-deadline:
			t.Fatal("no stats with a p99 published")
		}
	}
}

// TestResumeFromPosition covers since: a normal resume, since 0, a room
// whose next event is much later (not a gap), history removed by the
// per-subject limit (reset, then live), and a position beyond the stream
// (recreated).
func TestResumeFromPosition(t *testing.T) {
	cfg := events.StreamConfig{MaxMsgsPerSubject: 10}
	n := edgetest.StartNATS(t)
	_, js := n.ConnectWith(t, cfg)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Stream = cfg })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1", "p2", "p3"}, time.Hour)
	pub := func(r room.Room) uint64 {
		return edgetest.Publish(t, js, events.TaskDeleted(r, "u1", "t1")).Sequence
	}
	subscribeFrom := func(c *client.Conn, r string, since uint64) uint64 {
		t.Helper()
		pos, err := c.SubscribeFrom(ctxT(t), r, &since)
		if err != nil {
			t.Fatal(err)
		}
		return pos
	}

	// p1: 5 events; resume after the 2nd → the last 3.
	var p1 []uint64
	for range 5 {
		p1 = append(p1, pub(room.Project("p1")))
	}
	c := edgetest.Dial(t, e, tok)
	if pos := subscribeFrom(c, "project:p1", p1[1]); pos != p1[1] {
		t.Fatalf("reply seq %d, want %d", pos, p1[1])
	}
	for _, want := range p1[2:] {
		if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != want {
			t.Fatalf("replayed seq %d, want %d", m.Seq, want)
		}
	}
	live := pub(room.Project("p1"))
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != live {
		t.Fatalf("live seq %d, want %d", m.Seq, live)
	}

	// since 0: the whole retained history.
	c0 := edgetest.Dial(t, e, tok)
	subscribeFrom(c0, "project:p1", 0)
	for _, want := range append(p1, live) {
		if m := edgetest.NextEvent(t, c0, 5*time.Second); m.Seq != want {
			t.Fatalf("since 0: seq %d, want %d", m.Seq, want)
		}
	}

	// p2: one event, then many in other rooms, then another: resuming
	// after the first is not a gap.
	first := pub(room.Project("p2"))
	for range 30 {
		pub(room.Project("p3"))
	}
	second := pub(room.Project("p2"))
	c2 := edgetest.Dial(t, e, tok)
	subscribeFrom(c2, "project:p2", first)
	if m := edgetest.NextEvent(t, c2, 5*time.Second); m.Seq != second {
		t.Fatalf("p2 resume got %s, want seq %d", m.Raw, second)
	}

	// p3 holds only its last 10 of 30: resuming after the 2nd is a reset.
	c3 := edgetest.Dial(t, e, tok)
	p3Last := pub(room.Project("p3"))
	subscribeFrom(c3, "project:p3", first+2)
	select {
	case m := <-c3.Messages():
		if m.Op != "reset" || m.Reason != "history_truncated" || m.Seq != p3Last || m.Room != "project:p3" {
			t.Fatalf("want reset history_truncated at %d, got %s", p3Last, m.Raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reset")
	}
	after := pub(room.Project("p3"))
	if m := edgetest.NextEvent(t, c3, 5*time.Second); m.Seq != after {
		t.Fatalf("after reset got %s, want live seq %d", m.Raw, after)
	}

	// A position the stream never reached: it was recreated.
	c4 := edgetest.Dial(t, e, tok)
	subscribeFrom(c4, "project:p1", after+1000)
	select {
	case m := <-c4.Messages():
		if m.Op != "reset" || m.Reason != "stream_recreated" {
			t.Fatalf("want reset stream_recreated, got %s", m.Raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reset")
	}
	if e.Metric(t, `eventedge_resets_total{reason="history_truncated"}`) != 1 {
		t.Fatal("history_truncated reset not counted")
	}
}

// TestReplayLargerThanQueue: a resume whose replay is 200 times the
// client's queue goes at the client's pace (the replay waits whenever a
// message is queued and not yet taken, and the writer wakes it as it
// takes from the queue):
// every event arrives, in order (a slow-consumer close would end the
// stream), and the live event published after it follows.
func TestReplayLargerThanQueue(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Session.QueueMessages = 2 })
	const count = 400
	var seqs []uint64
	for i := range count {
		seqs = append(seqs, edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t"+strconv.Itoa(i))).Sequence)
	}
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	since := uint64(0)
	if _, err := c.SubscribeFrom(ctxT(t), "project:p1", &since); err != nil {
		t.Fatal(err)
	}
	for i, want := range seqs {
		if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != want {
			t.Fatalf("replayed event %d: seq %d, want %d", i, m.Seq, want)
		}
	}
	live := edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "live")).Sequence
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != live {
		t.Fatalf("live seq %d, want %d", m.Seq, live)
	}
}

// TestDeviceOfflineQueueing: a device acknowledges, goes offline, 50
// events are published, and the device reconnects to the other node
// without since: it receives exactly those 50, in order.
func TestDeviceOfflineQueueing(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	a := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-a" })
	b := edgetest.StartEdge(t, n, func(o *node.Options) { o.Name = "edge-b" })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	dial := func(e *edgetest.Edge) *client.Conn {
		c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: tok, DeviceID: "laptop-1"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial(a)
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	var seen uint64
	for range 5 {
		edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1"))
		seen = edgetest.NextEvent(t, c, 5*time.Second).Seq
	}
	if err := c.Ack(ctxT(t), "project:p1", seen); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctxT(t), positions.Bucket)
	edgetest.Eventually(t, 10*time.Second, func() bool {
		if err != nil {
			kv, err = js.KeyValue(ctxT(t), positions.Bucket)
			return false
		}
		e, gerr := kv.Get(ctxT(t), positions.Key("u1", "laptop-1", room.Project("p1")))
		return gerr == nil && string(e.Value()) == itoa(int64(seen))
	}, "position stored")
	c.Close()
	_ = nc

	log := deliverycheck.NewLog()
	for range 50 {
		log.Add("project:p1", edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1")).Sequence)
	}
	c2 := dial(b)
	defer c2.Close()
	pos, err := c2.SubscribeFrom(ctxT(t), "project:p1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pos != seen {
		t.Fatalf("resumed after %d, want the acknowledged %d", pos, seen)
	}
	got := deliverycheck.NewReceived("laptop-1")
	for range 50 {
		m := edgetest.NextEvent(t, c2, 5*time.Second)
		got.Add(m.Room, m.Seq)
	}
	edgetest.NoMessage(t, c2, 200*time.Millisecond)
	checkDelivery(t, log, got, "project:p1")

	// An explicit since wins over the stored position.
	c3 := dial(b)
	defer c3.Close()
	last := log.Seqs("project:p1")[49]
	if pos, err := c3.SubscribeFrom(ctxT(t), "project:p1", &last); err != nil || pos != last {
		t.Fatalf("since %d: pos %d, %v", last, pos, err)
	}
	edgetest.NoMessage(t, c3, 200*time.Millisecond)
}

// TestClientRefreshesTokenAfter4001: the reliable client's token expires,
// the server closes with 4001, the client asks TokenFunc for a new one,
// reconnects and resumes without losing an event.
func TestClientRefreshesTokenAfter4001(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Auth.Leeway = -1 })
	var calls atomic.Int64
	states := make(chan client.StateChange, 64)
	got := deliverycheck.NewReceived("c1")
	_, delivered := reliableClient(t, client.Config{
		URLs: []string{e.URL},
		TokenFunc: func(context.Context) (string, error) {
			ttl := time.Hour
			if calls.Add(1) == 1 {
				ttl = 2 * time.Second // the first token expires soon
			}
			return edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, ttl), nil
		},
		OnState: connected(states),
	}, got, "project:p1")
	waitState(t, states, client.StateConnected)
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Metric(t, "eventedge_rooms") == 1 }, "subscribed")
	log := deliverycheck.NewLog()
	var published atomic.Int64
	done := publisher(t, js, room.Project("p1"), 400, 100, log, &published)
	s := waitState(t, states, client.StateReconnecting)
	if client.CloseCode(s.Err) != 4001 {
		t.Fatalf("reconnecting after %v, want 4001", s.Err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	edgetest.Eventually(t, 30*time.Second, func() bool { return delivered.Load() >= 400 }, "all delivered")
	checkDelivery(t, log, got, "project:p1")
	if calls.Load() < 2 {
		t.Fatal("TokenFunc not asked again")
	}
}

// TestStreamRecreatedResetsSubscribers: the EVENTS stream is deleted and
// created again while a client is subscribed; the node notices, the client
// gets a reset (stream_recreated), and events of the new stream flow.
func TestStreamRecreatedResetsSubscribers(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.StreamCheckInterval = 100 * time.Millisecond })
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1"))
		edgetest.NextEvent(t, c, 5*time.Second)
	}
	if err := js.DeleteStream(ctxT(t), events.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStreams(ctxT(t), js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.Messages():
		if m.Op != "reset" || m.Reason != "stream_recreated" || m.Seq != 0 {
			t.Fatalf("want reset stream_recreated at 0, got %s", m.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reset after the stream was recreated")
	}
	ev := events.TaskDeleted(room.Project("p1"), "u1", "t9")
	ack := edgetest.Publish(t, js, ev)
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Event.ID != ev.Id || m.Seq != ack.Sequence || ack.Sequence != 1 {
		t.Fatalf("after recreation got %s (ack seq %d)", m.Raw, ack.Sequence)
	}
}
