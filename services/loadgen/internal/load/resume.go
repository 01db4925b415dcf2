package load

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// resume is the mass resume, as when a node drains or is lost and its
// clients come back on another: a marker event gives the room a position,
// Rate × Duration events are published after it (the gap), then every
// client connects, authenticates and subscribes with since = the marker's
// sequence, Dialers at a time, and the edge replays the gap to each from
// the stream. Measured: the wall time from the first dial to the last
// client holding the whole gap, each client's time from its subscribe
// reply to its last replayed event, and what was lost, duplicated or
// reordered.
func (r *runner) resume(ctx context.Context) (*Results, error) {
	rm := room.Project(r.cfg.Project)
	nc, js, err := r.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ack, err := events.Publish(ctx, js, events.TaskDeleted(rm, "lg", "resume-marker"))
	if err != nil {
		return nil, fmt.Errorf("publish the resume marker: %w", err)
	}
	since := ack.Sequence

	r.phase.Store("publish")
	published := deliverycheck.NewLog()
	pub := r.publishSchedule(ctx, js, r.mix(rm), func(_ int, ev *pb.Event, seq uint64) { published.Add(ev.Room, seq) })
	gap := pub.Published
	lastSeq := since // the gap's last event: a client that received it is complete
	for _, q := range published.Seqs(rm.String()) {
		lastSeq = max(lastSeq, q)
	}

	var (
		// age: the events' age at receipt, which leanRead records; not
		// reported (a replayed event's age is how long ago it was
		// published, not a latency).
		age      hist.Histogram
		replay   hist.Histogram // subscribe reply → the gap's last event, per complete client
		lastDone atomic.Int64   // UnixNano of the latest client to complete
		complete atomic.Int64   // clients that received the gap's last event
		received = make([]*deliverycheck.Received, r.cfg.Clients)
	)
	spec := clientSpec{rooms: []string{rm.String()}, lean: true, since: &since}
	r.phase.Store("resume")
	start := time.Now()
	d := r.dialAllSpec(ctx, r.cfg.Clients, func(int) clientSpec { return spec }, func(i int, c conn) {
		got := deliverycheck.NewReceived("c" + strconv.Itoa(i))
		received[i] = got
		r.expected.Add(int64(gap))
		subscribed := time.Now()
		done := func(at time.Time) {
			replay.RecordDuration(at.Sub(subscribed))
			complete.Add(1)
			for {
				prev := lastDone.Load()
				if at.UnixNano() <= prev || lastDone.CompareAndSwap(prev, at.UnixNano()) {
					return
				}
			}
		}
		if gap == 0 {
			done(subscribed)
		}
		finished := gap == 0 // owned by the reader goroutine once started: a duplicate does not count twice
		c.(*leanConn).start(r.leanRead(got, &age, func(m *leanMsg) {
			if !finished && m.Seq == lastSeq && m.RoomName == rm.String() {
				finished = true
				done(m.Now)
			}
		}))
	})
	res := r.connectResults(d)
	res.Publisher = pub
	closed := false
	defer func() {
		if !closed {
			r.closeAll(d.conns)
		}
	}()
	connected := res.Clients.Connected

	r.phase.Store("drain")
	r.drain(ctx, func() bool { return complete.Load() < int64(connected) })
	res.Clients.Disconnected = disconnected(d)
	r.captureMetrics()
	r.phase.Store("close")
	r.closeAll(d.conns)
	closed = true

	r.phase.Store("check")
	rr := &ResumeResults{Since: since, Gap: gap, Complete: int(complete.Load()), Replay: latencyOf(&replay)}
	if last := lastDone.Load(); last > 0 && rr.Complete == connected {
		w := Duration(time.Unix(0, last).Sub(start))
		rr.Wall = &w
	}
	window := time.Since(start)
	if rr.Wall != nil {
		window = time.Duration(*rr.Wall)
	}
	res.Resume = rr
	var sum deliverycheck.Summary
	res.Delivery, sum = r.checkRoom(published, received, rm, d.pos, gap, window, nil)
	if !sum.OK() || pub.Failed > 0 || pub.Published < pub.Target || res.Clients.Disconnected != nil || rr.Complete < connected {
		res.OK = false
	}
	if connected == 0 {
		res.Notes = append(res.Notes, "no client connected: nothing resumed")
	}
	return res, nil
}
