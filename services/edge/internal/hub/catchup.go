package hub

import (
	"context"
	"sync"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/nats-io/nats.go/jetstream"
)

// CatchUp brings a subscription created with resume=true up to date: it
// replays the room's stored events after the subscription's position (or,
// when they are gone from the stream, sends a reset), then merges the live
// events held meanwhile and lets later ones flow. It returns when the
// subscription is live, or with ctx's error (the session ended or left).
func (h *Hub) CatchUp(ctx context.Context, sub *Subscription) error {
	since := sub.Position()
	pos, err := h.replays.Check(ctx, sub.room.Subject(), since)
	if err != nil {
		return err
	}
	if pos.Gap != "" {
		h.m.Resets.WithLabelValues(string(pos.Gap)).Inc()
		sub.resetTo(pos.Last)
		sub.sink.Reset(sub.name, string(pos.Gap), pos.Last, false)
	}
	upTo := pos.Last
	for {
		if err := h.replay(ctx, sub, upTo); err != nil {
			return err
		}
		live, err := sub.drainPending(ctx)
		if err != nil || live {
			return err
		}
		// Held live events overflowed: read on from the stream.
		if upTo, err = h.replays.Last(ctx, sub.room.Subject()); err != nil {
			return err
		}
	}
}

func (h *Hub) replay(ctx context.Context, sub *Subscription, upTo uint64) error {
	n := 0
	err := h.replays.Range(ctx, sub.room.Subject(), sub.Position(), upTo, func(m *jetstream.RawStreamMsg) error {
		out, err := h.encoded.get(sub.name, m)
		if err != nil {
			h.m.EventsInvalid.Inc()
			h.log.Warn().Err(err).Str("room", sub.name).Uint64("seq", m.Sequence).Msg("skipped invalid stored event")
			sub.skipTo(m.Sequence)
			return nil
		}
		ok, err := sub.replayed(ctx, out)
		if ok {
			n++
		}
		return err
	})
	h.m.Replayed.Add(float64(n))
	return err
}

// Encoded-replay limits (see encodedReplays).
const (
	encodedReplaysMax   = 4096
	encodedReplaysBytes = 32 << 20
)

// encodedReplays keeps the Outbound of each stored event a resume replayed,
// by the event's *RawStreamMsg: the history Store hands every resume of a
// room the same message for the same event (its cache), so the event is
// decoded and encoded once per room for all of them, as a live event is,
// and not once per client. A message read outside the Store's cache is a
// new pointer and never hits again; it still takes a place, and filling
// the map empties it, shared entries included (a room's resumes then
// encode their next events again, once). Bounded: past encodedReplaysMax entries
// or about encodedReplaysBytes of events and their encodings it starts
// empty.
type encodedReplays struct {
	mu    sync.Mutex
	outs  map[*jetstream.RawStreamMsg]*Outbound // guarded by mu
	bytes int                                   // guarded by mu
}

// get returns m's Outbound for room, encoding it on first use.
func (e *encodedReplays) get(roomName string, m *jetstream.RawStreamMsg) (*Outbound, error) {
	e.mu.Lock()
	out := e.outs[m]
	e.mu.Unlock()
	if out != nil && out.Room == roomName {
		return out, nil
	}
	out, err := encode(roomName, m.Sequence, m.Data, m.Header.Get(events.HeaderContentType))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.outs == nil || len(e.outs) >= encodedReplaysMax || e.bytes > encodedReplaysBytes {
		e.outs, e.bytes = make(map[*jetstream.RawStreamMsg]*Outbound), 0
	}
	e.outs[m] = out
	// The stored body, its decoded event (about as large), the client JSON
	// and the protobuf form.
	e.bytes += 2*len(m.Data) + len(out.Data) + len(out.raw)
	return out, nil
}
