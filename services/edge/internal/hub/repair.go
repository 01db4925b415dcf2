package hub

import (
	"context"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// controlHeader marks the hub's own requests in a shard channel: "resync"
// or "reset". They have no Sub, unlike every message NATS delivers, so they
// cannot be forged.
const controlHeader = "Eventedge-Control"

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
	msg := &nats.Msg{Subject: rs.subject, Header: nats.Header{controlHeader: []string{what}}}
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
func (h *Hub) ResyncAll() {
	for _, rs := range h.snapshot() {
		h.requestResync(rs)
	}
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
