package load

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// MetaSeq is the metadata key of the publisher's sequence number (0, 1, …)
// in every broadcast event.
const MetaSeq = "lgseq"

// broadcast puts every client in one project room, publishes
// Rate × Duration task_updated events through JetStream with the send
// time as the event's timestamp, and measures, at every client, the
// publish → receive latency and what was lost, duplicated or reordered.
func (r *runner) broadcast(ctx context.Context) (*Results, error) {
	rm := room.Project(r.cfg.Project)
	nc, js, err := r.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()

	var (
		latency   hist.Histogram
		published = deliverycheck.NewLog()
		received  = make([]*deliverycheck.Received, r.cfg.Clients)
		// With the job mix the edge coalesces the events: a client is
		// done when it has the last one (drain), latest[i] being the
		// highest seq client i received (written by its reader).
		job    = r.cfg.Mix == MixJob
		latest = make([]atomic.Uint64, r.cfg.Clients)
		logs   *jobLogs // the job mix's log-line check
	)
	if job {
		logs = newJobLogs(r.cfg.Clients)
	}
	r.phase.Store("connect")
	d := r.dialAll(ctx, r.cfg.Clients, rm.String(), true, func(i int, c conn) {
		got := deliverycheck.NewReceived("c" + strconv.Itoa(i))
		received[i] = got
		var onEvent func(m *leanMsg)
		if job {
			checkLogs := logs.onEvent(i, r.cfg.Protocol == ProtocolProtobuf)
			onEvent = func(m *leanMsg) {
				latest[i].Store(max(latest[i].Load(), m.Seq))
				if checkLogs != nil {
					checkLogs(m)
				}
			}
		}
		h := r.leanRead(got, &latency, onEvent)
		if job {
			if reset := logs.onReset(i); reset != nil {
				read := h.msg
				h.msg = func(m *leanMsg) {
					if m.Op == OpReset {
						reset(m.Seq)
					}
					read(m)
				}
			}
		}
		c.(*leanConn).start(h)
	})
	res := r.connectResults(d)
	// On an early return, close the clients (each Close waits for its reader).
	closed := false
	defer func() {
		if !closed {
			r.closeAll(d.conns)
		}
	}()
	connected := res.Clients.Connected
	if connected == 0 {
		res.Notes = append(res.Notes, "no client connected: nothing published")
		return res, nil
	}

	r.phase.Store("publish")
	pubStart := time.Now()
	var last uint64 // the last event's seq: written by publish's collector, read once it returned
	pub := r.publishSchedule(ctx, js, r.mix(rm), func(_ int, ev *pb.Event, seq uint64) {
		published.Add(ev.Room, seq)
		r.expected.Add(int64(connected))
		last = max(last, seq)
		if job {
			logs.publishedEvent(seq, ev)
		}
	})
	res.Publisher = pub

	// Drain: wait until every expected delivery arrived (with the job mix:
	// every client has the last event), or Drain passed.
	r.phase.Store("drain")
	want := int64(pub.Published) * int64(connected)
	pending := func() bool { return r.received.Load() < want }
	var coalesced func(seq uint64) bool
	if job {
		pending = func() bool {
			for i := range latest {
				if received[i] != nil && latest[i].Load() < last {
					return true
				}
			}
			return false
		}
		coalesced = func(seq uint64) bool { return seq != last }
		res.Notes = append(res.Notes, fmt.Sprintf("job mix: the edge coalesces the %d task_progress events; the check expects the last (seq %d) at every client, the others may be superseded", pub.Published, last))
	}
	r.drain(ctx, pending)
	window := time.Since(pubStart)

	res.Clients.Disconnected = disconnected(d)
	r.captureMetrics()
	r.phase.Store("close")
	r.closeAll(d.conns)
	closed = true

	r.phase.Store("check")
	var sum deliverycheck.Summary
	res.Delivery, sum = r.checkRoom(published, received, rm, d.pos, pub.Published, window, coalesced)
	res.Latency = latencyOf(&latency)
	if job {
		res.Logs = logs.check(d.pos, func(i int) bool { return received[i] != nil })
		if res.Logs.Mismatched > 0 {
			res.OK = false
		}
	}
	if !sum.OK() || pub.Failed > 0 || pub.Published < pub.Target || res.Clients.Disconnected != nil {
		res.OK = false
	}
	return res, nil
}

// jetStream connects the publisher to NATS and makes sure the events
// stream exists. The caller closes the connection.
func (r *runner) jetStream(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(r.cfg.NATSURL, nats.Name("loadgen"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("--nats-url %s: %w", r.cfg.NATSURL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*maxInFlight))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = events.EnsureStreamExists(sctx, js, events.StreamConfig{})
	scancel()
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// leanRead is the handler of a lean client: latency and delivery check
// for each event, then onEvent (when not nil); resets to the delivery
// check. It allocates nothing per message.
func (r *runner) leanRead(got *deliverycheck.Received, latency *hist.Histogram, onEvent func(m *leanMsg)) *leanHandler {
	return &leanHandler{msg: func(m *leanMsg) {
		switch m.Op {
		case OpEvent:
			if m.TS != 0 {
				latency.RecordDuration(time.Duration(m.Now.UnixNano() - m.TS))
			}
			got.Add(m.RoomName, m.Seq)
			if r.received.Add(1) == 1 {
				r.messageBytes.Store(int64(len(m.Raw)))
			}
			r.receivedBytes.Add(int64(len(m.Raw)))
			if onEvent != nil {
				onEvent(m)
			}
		case OpReset:
			got.Reset(m.RoomName, m.Seq)
		}
	}, malformed: r.malformedLine}
}

// malformedLine counts a server message the lean path could not scan and
// keeps the first.
func (r *runner) malformedLine(line []byte, err error) {
	if r.malformed.Add(1) == 1 {
		r.malformedSample.Store(fmt.Sprintf("%v: %.200q", err, line))
	}
}

// read drains one client's messages until its connection ends: latency
// and delivery check for each event, then onEvent (when not nil).
func (r *runner) read(c *client.Conn, got *deliverycheck.Received, latency *hist.Histogram, onEvent func()) {
	for m := range c.Messages() {
		switch m.Op {
		case "event":
			now := time.Now()
			if m.Event != nil {
				latency.RecordDuration(now.Sub(m.Event.Timestamp))
			}
			got.Add(m.Room, m.Seq)
			if onEvent != nil {
				onEvent()
			}
			if r.received.Add(1) == 1 {
				r.messageBytes.Store(int64(len(m.Raw)))
			}
			r.receivedBytes.Add(int64(len(m.Raw)))
		case "reset":
			got.Reset(m.Room, m.Seq)
		}
	}
}

// publish publishes Rate × Duration events on a fixed schedule (event i
// at start + i/Rate), each stamped with the time it is sent, and logs
// each stored seq in log. A publish that starts late does not make the
// next ones earlier: the schedule is the offered load.
func (r *runner) publish(ctx context.Context, js jetstream.JetStream, rm room.Room, log *deliverycheck.Log, clients int64) *PublisherResults {
	return r.publishSchedule(ctx, js, r.mix(rm), func(_ int, ev *pb.Event, seq uint64) {
		log.Add(ev.Room, seq)
		r.expected.Add(clients)
	})
}

// total is how many events the publisher sends: Rate × Duration, at
// least one.
func (r *runner) total() int { return max(int(r.cfg.Rate*r.cfg.Duration.Seconds()), 1) }

// mix returns the builder of the run's events for room rm (Config.Mix).
func (r *runner) mix(rm room.Room) func(i int) *pb.Event {
	switch r.cfg.Mix {
	case MixDashboard:
		return newDashboardMix(rm).next
	case MixJob:
		return newJobMix(rm, r.total()).next
	}
	pad := padding(rm, r.cfg.PayloadBytes)
	return func(int) *pb.Event {
		return events.TaskUpdated(rm, "lg", "t1", &pb.Task{Title: pad}, "title")
	}
}

// drain waits while pending reports true, at most Drain (or until ctx
// ends), looking every 20 ms.
func (r *runner) drain(ctx context.Context, pending func() bool) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Drain)
	defer cancel()
	for pending() && ctx.Err() == nil {
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

// checkRoom runs the delivery check of every connected client (received[i]
// non-nil) of one room rm against published, each from its subscribe
// position pos[i], and returns the results with the summary. window is
// the time deliveries/s is counted over.
func (r *runner) checkRoom(published *deliverycheck.Log, received []*deliverycheck.Received, rm room.Room, pos []uint64, publishedN int, window time.Duration, coalesced func(seq uint64) bool) (*DeliveryResults, deliverycheck.Summary) {
	reports := make([]deliverycheck.Report, 0, len(received))
	for i, got := range received {
		if got == nil {
			continue
		}
		reports = append(reports, deliverycheck.Check(published, got, deliverycheck.Expectation{Room: rm.String(), From: pos[i], Coalesced: coalesced}))
	}
	sum := deliverycheck.Summarize(reports)
	return r.deliveryResults(sum, publishedN, int64(sum.Delivered), window), sum
}

// deliveryResults reports a delivery check's summary: published events,
// deliveries/s (delivered over window) and the three worst clients.
func (r *runner) deliveryResults(sum deliverycheck.Summary, published int, delivered int64, window time.Duration) *DeliveryResults {
	res := &DeliveryResults{
		Published: published, Expected: sum.Expected, Delivered: sum.Delivered,
		Lost: sum.Lost, Duplicated: sum.Duplicates, OutOfOrder: sum.OutOfOrder, Unexpected: sum.Unexpected,
		MessageBytes: int(r.messageBytes.Load()),
	}
	if n := r.received.Load(); n > 0 {
		res.MeanMessageBytes = float64(r.receivedBytes.Load()) / float64(n)
	}
	if window > 0 {
		res.PerSecond = float64(delivered) / window.Seconds()
	}
	for _, f := range sum.Failed[:min(len(sum.Failed), 3)] {
		res.Worst = append(res.Worst, f.String())
	}
	return res
}

// Publisher bounds: at most maxInFlight publishes await their ack (the
// schedule waits beyond it), each ack awaited at most ackTimeout.
const (
	maxInFlight = 256
	ackTimeout  = 5 * time.Second
	// LateTolerance: a publish that starts more than max(1/Rate,
	// LateTolerance) after its slot counts as late.
	LateTolerance = 10 * time.Millisecond
)

// pending is one publish awaiting its ack.
type pending struct {
	i   int
	ev  *pb.Event
	ack jetstream.PubAckFuture
}

// publishSchedule publishes Rate × Duration events on a fixed schedule
// (event i at start + i/Rate): event i is build(i), with the publisher's
// sequence number i in metadata MetaSeq and, as its timestamp, the time
// it is handed to NATS. Publishes are asynchronous (up to maxInFlight
// awaiting their ack), so the schedule holds at thousands of events per
// second; they carry the headers events.Publish sets (Nats-Msg-Id = the
// event id for de-duplication, the expected stream, the Content-Type).
// done is called, from a second goroutine (one at a time, in publish
// order), after each stored event with its stream seq from the ack;
// publishSchedule returns once every ack has come or timed out. A
// publish that starts late does not make the next ones earlier: the
// schedule is the offered load.
func (r *runner) publishSchedule(ctx context.Context, js jetstream.JetStream, build func(i int) *pb.Event, done func(i int, ev *pb.Event, seq uint64)) *PublisherResults {
	total := r.total()
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	late := max(interval, LateTolerance)
	res := &PublisherResults{Target: total}

	// The collector owns Published, Failed and FirstErr until it ends.
	acks := make(chan pending, maxInFlight)
	collected := make(chan struct{})
	fail := func(err error) {
		res.Failed++
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	go func() {
		defer close(collected)
		t := time.NewTimer(ackTimeout)
		defer t.Stop()
		for p := range acks {
			t.Reset(ackTimeout)
			select {
			case ack := <-p.ack.Ok():
				res.Published++
				r.published.Add(1)
				done(p.i, p.ev, ack.Sequence)
			case err := <-p.ack.Err():
				fail(fmt.Errorf("publish event %s: %w", p.ev.Id, err))
			case <-t.C:
				fail(fmt.Errorf("publish event %s: no ack within %s", p.ev.Id, ackTimeout))
			}
		}
	}()

	var sendErrs []error // the publisher's own failures, counted after the collector
	start := time.Now()
	for i := range total {
		slot := start.Add(time.Duration(i) * interval)
		if wait := time.Until(slot); wait > 0 {
			sleepCtx(ctx, wait)
		}
		if ctx.Err() != nil {
			break
		}
		ev := build(i)
		if ev.Metadata == nil {
			ev.Metadata = map[string]string{}
		}
		ev.Metadata[MetaSeq] = strconv.Itoa(i)
		now := time.Now()
		lag := now.Sub(slot)
		res.MaxLag = Duration(max(time.Duration(res.MaxLag), lag))
		if lag > late {
			res.Late++
		}
		ev.Timestamp = timestamppb.New(now)
		msg, err := events.Message(ev)
		if err == nil {
			var f jetstream.PubAckFuture
			f, err = js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.Id), jetstream.WithExpectStream(events.StreamName))
			if err == nil {
				acks <- pending{i: i, ev: ev, ack: f} // blocks while maxInFlight are pending
				continue
			}
			err = fmt.Errorf("publish event %s: %w", ev.Id, err)
		}
		sendErrs = append(sendErrs, err)
	}
	close(acks)
	<-collected
	for _, err := range sendErrs {
		fail(err)
	}
	res.Wall = Duration(time.Since(start))
	return res
}

// padding returns a task title that brings the event's JSON (protojson,
// close to what the edge sends) to about size bytes; none when the
// smallest event is already larger (about 230 bytes with a 26-character
// id and a nanosecond timestamp). The size actually received is reported
// as DeliveryResults.MessageBytes.
func padding(rm room.Room, size int) string {
	ev := events.TaskUpdated(rm, "lg", "t1", &pb.Task{}, "title")
	ev.Metadata = map[string]string{MetaSeq: "1000000"}
	events.Normalize(ev)
	b, err := events.MarshalJSON(ev)
	if err != nil {
		return ""
	}
	return strings.Repeat("x", max(0, size-len(b)-len(`"title":"",`)))
}
