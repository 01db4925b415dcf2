package hub

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// controlHeader marks the hub's own requests in a shard channel: "resync"
// or "reset". They have no Sub, unlike every message NATS delivers, so they
// cannot be forged. A resync may carry the room's stream position, looked
// up already, in lastHeader.
const (
	controlHeader = "Eventedge-Control"
	lastHeader    = "Eventedge-Last"
	epochHeader   = "Eventedge-Epoch" // the room's epoch when it was looked up
)

// resyncLookups bounds the stream lookups ResyncAll runs at once.
const resyncLookups = 16

// repair reads the room's stored events in (after, upTo] and fans them out.
// It reports false when the stream could not be read: the room keeps its
// position and is re-checked after RetryDelay.
func (h *Hub) repair(rs *roomState, after, upTo uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := 0
	err := h.hist.Range(ctx, rs.stored, after, upTo, func(m *jetstream.RawStreamMsg) error {
		n++
		h.fanoutOne(rs, m.Sequence, m.Data, m.Header.Get(events.HeaderContentType))
		return nil
	})
	h.m.GapRepairs.Add(float64(n))
	rs.repaired.Add(uint64(n))
	if err != nil {
		h.m.GapRepairFailures.Inc()
		rs.repairFailures.Add(1)
		h.log.Warn().Err(err).Str("room", rs.name).Uint64("after", after).Uint64("up_to", upTo).Msg("gap repair failed; retrying")
		h.scheduleResync(rs)
		return false
	}
	if n > 0 {
		h.log.Info().Str("room", rs.name).Int("events", n).Uint64("after", after).Msg("gap repaired from the stream")
	}
	rs.repairs.Add(1)
	// Whatever was not found is gone from the stream: nothing more to wait
	// for below upTo.
	h.advance(rs, upTo)
	return true
}

// resync compares the room's position with the stream's and repairs the
// difference: after a NATS reconnect, or a failed repair.
func (h *Hub) resync(rs *roomState) {
	rs.retry.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last, err := h.hist.Last(ctx, rs.stored)
	if err != nil {
		h.log.Warn().Err(err).Str("room", rs.name).Msg("room re-check failed; retrying")
		h.scheduleResync(rs)
		return
	}
	h.resyncTo(rs, last)
}

// resyncTo brings the room up to last, its stream position looked up
// after whatever it may have missed: it repairs the events between the
// room's position and last (runs on the room's shard).
func (h *Hub) resyncTo(rs *roomState, last uint64) {
	if !rs.known.Load() {
		// The room's position was never known: start from the stream's.
		h.advance(rs, last)
		rs.known.Store(true)
		return
	}
	if cur := rs.lastSeq.Load(); last > cur {
		h.repair(rs, cur, last)
	}
}

// advance moves the room's position forward to seq.
func (h *Hub) advance(rs *roomState, seq uint64) {
	rs.mu.Lock()
	if seq > rs.lastSeq.Load() {
		rs.lastSeq.Store(seq)
	}
	rs.mu.Unlock()
}

// scheduleResync asks the room's shard to re-check it after RetryDelay.
func (h *Hub) scheduleResync(rs *roomState) {
	if !rs.retry.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(h.opts.RetryDelay, func() { h.requestResync(rs) })
}

// requestResync queues a resync request on the room's shard.
func (h *Hub) requestResync(rs *roomState) {
	if !h.request(rs, "resync") {
		rs.retry.Store(false)
		h.scheduleResync(rs) // shard busy: try again later
	}
}

// request queues a control request on the room's shard without blocking.
func (h *Hub) request(rs *roomState, what string) bool {
	return h.requestMsg(rs, &nats.Msg{Subject: rs.subject, Header: nats.Header{controlHeader: []string{what}}})
}

// requestResyncTo queues a resync to last, looked up in the room's
// epoch, on the room's shard; when the shard is full, a resync that looks
// up again later.
func (h *Hub) requestResyncTo(rs *roomState, epoch, last uint64) {
	msg := &nats.Msg{Subject: rs.subject, Header: nats.Header{
		controlHeader: []string{"resync"},
		lastHeader:    []string{strconv.FormatUint(last, 10)},
		epochHeader:   []string{strconv.FormatUint(epoch, 10)},
	}}
	if !h.requestMsg(rs, msg) {
		h.scheduleResync(rs)
	}
}

// requestMsg queues msg, a control request, on rs's shard without
// blocking; false when the shard's channel is full.
func (h *Hub) requestMsg(rs *roomState, msg *nats.Msg) bool {
	select {
	case h.shardFor(rs.subject) <- msg:
		return true
	case <-h.quit:
		return true
	default:
		return false
	}
}

// ResetAll tells every room that the stream was recreated: each room
// restarts at the new stream's position and its subscribers get a reset
// (stream_recreated), since their positions belong to the old stream.
func (h *Hub) ResetAll() {
	for _, rs := range h.snapshot() {
		for !h.request(rs, "reset") {
			time.Sleep(10 * time.Millisecond) // rare: wait for the shard to take it
		}
	}
}

// reset restarts the room at the recreated stream's position.
func (h *Hub) reset(rs *roomState) {
	rs.epoch.Store(h.epochs.Add(1)) // positions looked up before are the old stream's
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	last, err := h.hist.Last(ctx, rs.stored)
	if err != nil {
		h.log.Warn().Err(err).Str("room", rs.name).Msg("reset after stream recreation: position unknown")
		rs.known.Store(false)
		h.scheduleResync(rs)
	} else {
		rs.known.Store(true)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.lastSeq.Store(last)
	for sub := range rs.subs {
		sub.restart(last)
		sub.sink.Reset(rs.name, string(history.Recreated), last, true)
		h.m.Resets.WithLabelValues(string(history.Recreated)).Inc()
	}
}

// Resync re-checks the room of a live subject against the stream: called
// when NATS reports it dropped messages for its subscription, since the
// last of them may be followed by no live message that would reveal the gap.
func (h *Hub) Resync(subject string) {
	if rs := h.room(subject); rs != nil {
		h.scheduleResync(rs)
	}
}

// ResyncAll re-checks every room against the stream: called after the
// node reconnects to NATS, since messages published while it was away were
// never delivered to it.
//
// The rooms' stream positions are looked up here, resyncLookups at a
// time (over all runs), and not on the shards: there each lookup took a
// round trip in turn while the live events of every room behind it waited
// (after each reconnect, rooms ÷ shards round trips). Only a room the
// stream is ahead of, or whose position was never known, is then resynced
// on its shard, with the position found; a room whose lookup failed gets
// a plain resync after RetryDelay (its shard looks again, as after a
// failed repair). A run stops early when a newer one starts (NATS
// reconnected again): that one checks every room. ResyncAll returns
// once every room is looked up and queued, or soon after the hub closes
// (Close waits for it); the node runs it on a goroutine of its own.
func (h *Hub) ResyncAll() {
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return
	}
	h.wg.Add(1) // under mu: Close, which waits, has not begun
	h.mu.RUnlock()
	defer h.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	run := h.resyncRuns.Add(1)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	defer func() {
		wg.Wait()
		if n := failed.Load(); n > 0 {
			h.log.Warn().Int64("rooms", n).Msg("room re-check after reconnecting failed; retrying on their shards")
		}
	}()
	for _, rs := range h.snapshot() {
		if h.resyncRuns.Load() != run {
			return // a newer run (NATS reconnected again) checks every room
		}
		select {
		case h.lookups <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-h.lookups; wg.Done() }()
			if !h.lookUp(ctx, rs) {
				failed.Add(1)
			}
		}()
	}
}

// lookUp looks the room's stream position up for ResyncAll and queues a
// resync on its shard when the stream is ahead of it. It reports false
// when the lookup failed; the room's shard then looks it up again after
// RetryDelay (scheduleResync), as for a failed repair.
func (h *Hub) lookUp(ctx context.Context, rs *roomState) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	epoch := rs.epoch.Load() // before the lookup: a reset after it renews the epoch
	last, err := h.hist.Last(ctx, rs.stored)
	switch {
	case err != nil:
		h.scheduleResync(rs) // harmless once the hub has closed: nothing reads the request
		return false
	case rs.known.Load() && last <= rs.lastSeq.Load():
		// Nothing missed: the room has had every event up to last.
	default:
		h.requestResyncTo(rs, epoch, last)
	}
	return true
}

// lookedUp returns the position a resync request carries, when it was
// looked up in the room's current epoch (the same room object, and no
// stream recreation since); false: the shard must look it up itself.
func lookedUp(rs *roomState, msg *nats.Msg) (uint64, bool) {
	last, err := strconv.ParseUint(msg.Header.Get(lastHeader), 10, 64)
	if err != nil {
		return 0, false
	}
	epoch, err := strconv.ParseUint(msg.Header.Get(epochHeader), 10, 64)
	return last, err == nil && epoch == rs.epoch.Load()
}

// snapshot returns the rooms present now.
func (h *Hub) snapshot() []*roomState {
	h.mu.RLock()
	defer h.mu.RUnlock()
	rooms := make([]*roomState, 0, len(h.rooms))
	for _, rs := range h.rooms {
		rooms = append(rooms, rs)
	}
	return rooms
}
