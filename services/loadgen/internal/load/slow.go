package load

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// slow is broadcast with a share of the clients (SlowFraction, spread
// evenly over the indexes) reading slowly: each waits SlowReadDelay after
// every event it reads, so its socket fills and the edge's queue for it
// grows until the edge closes it as a slow consumer (4008). After the
// publisher the slow clients stop pausing and read what is left, so the
// close is seen (the close frame comes after the queued data). The fast and
// slow clients are checked and reported apart. The fast clients must see
// no loss, duplicate or reordering and must not be closed; a slow client
// closed by the edge may have lost events (that is the edge protecting the
// others) only after the last event it received: up to that one it must
// have every event, once, in order; the rest is reported as behind.
func (r *runner) slow(ctx context.Context) (*Results, error) {
	nc, js, err := r.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()

	rm := room.Project(r.cfg.Project)
	n := r.cfg.Clients
	slow := make([]bool, n)
	for i := range slow {
		slow[i] = spread(i, r.cfg.SlowFraction)
	}
	var (
		latency   [2]hist.Histogram // [0] fast, [1] slow
		published = deliverycheck.NewLog()
		received  = make([]*deliverycheck.Received, n)
		recv      = make([]atomic.Int64, n)
		highest   = make([]atomic.Uint64, n) // the highest seq each client received
		hurry     = make(chan struct{})      // closed: the slow clients stop pausing
	)
	group := func(i int) int {
		if slow[i] {
			return 1
		}
		return 0
	}
	r.phase.Store("connect")
	d := r.dialAll(ctx, n, rm.String(), true, func(i int, c conn) {
		got := deliverycheck.NewReceived("c" + strconv.Itoa(i))
		received[i] = got
		lc := c.(*leanConn)
		h, delay := &latency[group(i)], time.Duration(0)
		if slow[i] {
			delay = r.cfg.SlowReadDelay
		}
		// A slow client pauses in its reader, so the socket fills: what
		// the edge sent sits in the kernel's buffers and then its queue.
		lc.start(r.leanRead(got, h, func(m *leanMsg) {
			recv[i].Add(1)
			if m.Seq > highest[i].Load() {
				highest[i].Store(m.Seq) // this reader alone writes it
			}
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-hurry:
				case <-lc.Closing(): // closing: read what is left at once
				case <-t.C:
				}
				t.Stop()
			}
		}))
	})
	res := r.connectResults(d)
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
	pub := r.publish(ctx, js, rm, published, int64(connected))
	res.Publisher = pub

	// Drain, in two windows of Drain each. First until every fast client
	// has every event. Then the slow clients stop pausing and read what
	// was queued for them, until each has every event or its connection
	// ended: a slow client's reader can see the edge's close (4008) only
	// after the data queued before it, which the pauses keep from it.
	r.phase.Store("drain")
	want := int64(pub.Published)
	pending := func(slowOnes bool) bool {
		for i, c := range d.conns {
			if c == nil || slow[i] != slowOnes || recv[i].Load() >= want {
				continue
			}
			select {
			case <-c.Done():
				continue
			default:
			}
			return true
		}
		return false
	}
	for _, slowOnes := range []bool{false, true} {
		if slowOnes {
			close(hurry)
		}
		r.drain(ctx, func() bool { return pending(slowOnes) })
	}
	window := time.Since(pubStart)

	// Who the server closed, per group.
	groups := [2]*GroupResults{{Closed: map[string]int{}}, {Closed: map[string]int{}}}
	closedBy := make([]bool, n)
	for i, c := range d.conns {
		g := groups[group(i)]
		g.Clients++
		if c == nil {
			continue
		}
		g.Connected++
		select {
		case <-c.Done():
			g.Closed[classifyClose(c.Err())]++
			closedBy[i] = true
		default:
		}
	}
	r.captureMetrics()
	r.phase.Store("close")
	r.closeAll(d.conns)
	closed = true

	r.phase.Store("check")
	// A fast client must have every event. A slow one must have every
	// event up to the last it received: what follows was cut off when the
	// edge closed it, or is still queued for it (in the edge, the sockets
	// or its buffer) after the drain; neither counts as lost.
	var reports [2][]deliverycheck.Report
	seqs := published.Seqs(rm.String()) // ascending
	for i, got := range received {
		if got == nil {
			continue
		}
		exp := []deliverycheck.Expectation{{Room: rm.String(), From: d.pos[i]}}
		if slow[i] {
			until := highest[i].Load()
			if until <= d.pos[i] {
				exp = nil // nothing received: nothing can be called lost
			} else {
				exp[0].Until = until
			}
			upTo, found := slices.BinarySearch(seqs, max(until, d.pos[i]))
			if found {
				upTo++
			}
			if closedBy[i] {
				groups[1].CutOff += len(seqs) - upTo
			} else {
				groups[1].Behind += len(seqs) - upTo
			}
		}
		reports[group(i)] = append(reports[group(i)], deliverycheck.Check(published, got, exp...))
	}
	var sums [2]deliverycheck.Summary
	for k, g := range groups {
		sums[k] = deliverycheck.Summarize(reports[k])
		g.Delivery = r.deliveryResults(sums[k], pub.Published, int64(sums[k].Delivered), window)
		g.Latency = latencyOf(&latency[k])
		if len(g.Closed) == 0 {
			g.Closed = nil
		}
	}
	res.Groups = map[string]*GroupResults{"fast": groups[0], "slow": groups[1]}
	// The whole run's delivery and latency, as broadcast reports them.
	all := deliverycheck.Summarize(append(reports[0], reports[1]...))
	res.Delivery = r.deliveryResults(all, pub.Published, int64(all.Delivered), window)
	res.Delivery.Worst = nil // each group names its own
	var merged hist.Histogram
	merged.Merge(&latency[0])
	merged.Merge(&latency[1])
	res.Latency = latencyOf(&merged)

	fast, sl := sums[0], sums[1]
	switch {
	case !fast.OK(), groups[0].Closed != nil, pub.Failed > 0, pub.Published < pub.Target:
		res.OK = false
	case !sl.OK():
		res.OK = false
	}
	if b := groups[1].Behind; b > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("slow clients still connected: %d deliveries still queued for them after the drain (not lost)", b))
	}
	if n := groups[1].Closed; n != nil {
		res.Clients.Disconnected = n
	}
	return res, nil
}

// classifyClose names why the server ended a connection, like classify
// does for a failed connect ("read: close 4008").
func classifyClose(err error) string {
	return classify(&stageError{stage: "read", err: err})
}
