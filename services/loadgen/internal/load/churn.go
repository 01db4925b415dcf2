package load

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// churn keeps Clients steady clients in one project room while events
// flow to it as in broadcast, and meanwhile connects ChurnRate churning
// clients per second (for Duration, on a fixed schedule), each to the
// same room, each closed by the load generator after ChurnLife. It
// reports the connects and disconnects done, the churning failures by
// reason, and for the steady clients the full delivery check (they must
// see no loss, duplicate or reordering); the churning clients are checked
// for duplicates, order and unexpected events only, since they leave
// while events flow.
func (r *runner) churn(ctx context.Context) (*Results, error) {
	nc, js, err := r.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()

	rm := room.Project(r.cfg.Project)
	n := r.cfg.Clients
	var (
		latency   hist.Histogram
		published = deliverycheck.NewLog()
		received  = make([]*deliverycheck.Received, n)
		readers   sync.WaitGroup
		steadyGot atomic.Int64
	)
	r.phase.Store("connect")
	// The steady clients keep the Go client: churn measures the edge's
	// connection lifecycle at modest rates, not the receive path.
	d := r.dialAll(ctx, n, rm.String(), false, func(i int, c conn) {
		got := deliverycheck.NewReceived("c" + strconv.Itoa(i))
		received[i] = got
		readers.Go(func() { r.read(c.(*client.Conn), got, &latency, func() { steadyGot.Add(1) }) })
	})
	res := r.connectResults(d)
	closed := false
	defer func() {
		if !closed {
			r.closeAll(d.conns)
			readers.Wait()
		}
	}()
	connected := res.Clients.Connected
	if connected == 0 {
		res.Notes = append(res.Notes, "no client connected: nothing published")
		return res, nil
	}

	// The churning clients, on their own schedule while the publisher runs.
	ch := &churner{r: r, room: rm.String(), failures: newFailureCounts(), closedBy: newFailureCounts()}
	r.phase.Store("publish")
	churnCtx, stopChurn := context.WithCancel(ctx)
	defer stopChurn()
	var churnDone sync.WaitGroup
	churnDone.Go(func() { ch.run(churnCtx, n) })

	pubStart := time.Now()
	pub := r.publish(ctx, js, rm, published, int64(connected))
	res.Publisher = pub

	// Drain the steady clients while the last churning ones live out
	// their life (the schedule ends with the publisher's).
	r.phase.Store("drain")
	want := int64(pub.Published) * int64(connected)
	r.drain(ctx, func() bool { return steadyGot.Load() < want })
	window := time.Since(pubStart)
	churnDone.Wait()

	res.Clients.Disconnected = disconnected(d)
	r.captureSettledMetrics(float64(connected))
	r.phase.Store("close")
	r.closeAll(d.conns)
	readers.Wait()
	closed = true

	r.phase.Store("check")
	var sum deliverycheck.Summary
	res.Delivery, sum = r.checkRoom(published, received, rm, d.pos, pub.Published, window, nil)
	res.Latency = latencyOf(&latency)

	cr := ch.results(published)
	res.Churn = cr
	if !sum.OK() || pub.Failed > 0 || pub.Published < pub.Target || res.Clients.Disconnected != nil ||
		cr.Failed > 0 || cr.ClosedByServer != nil || cr.Delivery.Duplicated+cr.Delivery.OutOfOrder+cr.Delivery.Unexpected > 0 ||
		cr.Connects < cr.Target {
		res.OK = false
	}
	return res, nil
}

// churner runs the churning clients of one churn run.
type churner struct {
	r        *runner
	room     string
	failures *failureCounts // failed connects by reason
	closedBy *failureCounts // connections the server ended before their life was over

	target                int // set by run before any client starts
	connects, disconnects atomic.Int64

	mu       sync.Mutex
	received []*deliverycheck.Received // guarded by mu
	arrivals atomic.Int64
}

// run connects client first+k at start + k/ChurnRate for k < ChurnRate ×
// Duration, each closed after ChurnLife, and returns when every one has
// ended. ctx ending stops the schedule and closes the live ones.
func (ch *churner) run(ctx context.Context, first int) {
	cfg := ch.r.cfg
	ch.target = max(int(cfg.ChurnRate*cfg.Duration.Seconds()), 1)
	interval := time.Duration(float64(time.Second) / cfg.ChurnRate)
	var live sync.WaitGroup
	defer live.Wait()
	start := time.Now()
	for k := range ch.target {
		if wait := time.Until(start.Add(time.Duration(k) * interval)); wait > 0 {
			sleepCtx(ctx, wait)
		}
		if ctx.Err() != nil {
			ch.failures.add("canceled", ctx.Err())
			continue
		}
		live.Go(func() { ch.one(ctx, first+k) })
	}
}

// one is the life of churning client i.
func (ch *churner) one(ctx context.Context, i int) {
	cc, _, err := ch.r.dialSpec(ctx, i, clientSpec{rooms: []string{ch.room}})
	if err != nil {
		ch.failures.add(classify(err), err)
		return
	}
	c := cc.(*client.Conn)
	ch.connects.Add(1)
	got := deliverycheck.NewReceived("churn" + strconv.Itoa(i))
	ch.mu.Lock()
	ch.received = append(ch.received, got)
	ch.mu.Unlock()
	var reader sync.WaitGroup
	reader.Go(func() {
		for m := range c.Messages() {
			if got.Record(m) {
				ch.arrivals.Add(1)
			}
		}
	})
	t := time.NewTimer(ch.r.cfg.ChurnLife)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-c.Done():
		ch.closedBy.add(classifyClose(c.Err()), c.Err())
	}
	c.Close()
	reader.Wait()
	ch.disconnects.Add(1)
}

func (ch *churner) results(published *deliverycheck.Log) *ChurnResults {
	failures, samples, failed := ch.failures.snapshot()
	closedBy, _, _ := ch.closedBy.snapshot()
	cr := &ChurnResults{
		Target: ch.target, Connects: int(ch.connects.Load()), Disconnects: int(ch.disconnects.Load()), Failed: failed,
		Failures: failures, FailureSamples: samples, ClosedByServer: closedBy,
	}
	if failed == 0 {
		cr.Failures, cr.FailureSamples = nil, nil
	}
	if len(closedBy) == 0 {
		cr.ClosedByServer = nil
	}
	ch.mu.Lock()
	reports := make([]deliverycheck.Report, 0, len(ch.received))
	for _, got := range ch.received {
		reports = append(reports, deliverycheck.Check(published, got)) // no Expectation: nothing can be lost
	}
	ch.mu.Unlock()
	sum := deliverycheck.Summarize(reports)
	cr.Delivery = &DeliveryResults{
		Published: len(published.Seqs(ch.room)), Delivered: int(ch.arrivals.Load()),
		Duplicated: sum.Duplicates, OutOfOrder: sum.OutOfOrder, Unexpected: sum.Unexpected,
	}
	for _, f := range sum.Failed[:min(len(sum.Failed), 3)] {
		cr.Delivery.Worst = append(cr.Delivery.Worst, f.String())
	}
	return cr
}

// captureSettledMetrics reads the end snapshot of the edge's metrics once
// eventedge_connections shows want (the connections the load generator
// just closed may take a moment to leave the gauge), or after 3 s.
func (r *runner) captureSettledMetrics(want float64) {
	if r.cfg.EdgeMetrics == "" {
		return
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r.captureMetrics()
		if r.metricsEndErr != nil || r.metricsEnd["eventedge_connections"] == want || time.Now().After(deadline) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
