package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// handle executes one client message.
func (s *Session) handle(ctx context.Context, data []byte) {
	var msg *protocol.ClientMessage
	var err error
	if s.info.Mode == protocol.Protobuf {
		msg, err = protocol.DecodeBinary(data)
	} else {
		msg, err = protocol.Decode(data)
	}
	if err == nil && msg.Op == protocol.OpAck {
		// Acks have a budget of their own: sent per room, they would use
		// up the commands'.
		if s.ackLimit == nil {
			s.ackLimit = rate.NewLimiter(rate.Limit(s.opts.AckRate), s.opts.AckBurst)
		}
		if !s.ackLimit.Allow() {
			s.Close(protocol.RateLimited(fmt.Sprintf("more than %g acks per second", s.opts.AckRate)))
			return
		}
	} else if !s.cmdLimit.Allow() {
		s.Close(protocol.RateLimited(fmt.Sprintf("more than %g commands per second", s.opts.CommandRate)))
		return
	}
	if err != nil {
		var de *protocol.DecodeError
		if errors.As(err, &de) && de.ID != nil {
			s.send(s.info.Mode.Error(de.ID, protocol.CodeBadRequest, de.Reason))
			return
		}
		s.Close(protocol.ProtocolViolation(err.Error()))
		return
	}
	authed := s.Claims() != nil
	switch msg.Op {
	case protocol.OpAuth:
		s.authenticate(msg.ID, msg.Token, msg.DeviceID, msg.ClientVersion)
	case protocol.OpPing:
		s.send(s.info.Mode.Pong(msg.ID))
	case protocol.OpSubscribe, protocol.OpUnsubscribe, protocol.OpAck:
		if !authed {
			if msg.ID == nil {
				s.Close(protocol.Unauthenticated("authenticate first"))
				return
			}
			s.send(s.info.Mode.Error(msg.ID, protocol.CodeUnauthorized, "authenticate first: send auth with a token"))
			return
		}
		s.subsMu.Lock()
		defer s.subsMu.Unlock()
		switch msg.Op {
		case protocol.OpSubscribe:
			s.subscribe(ctx, msg)
		case protocol.OpUnsubscribe:
			s.unsubscribe(msg)
		case protocol.OpAck:
			s.ack(msg)
		}
	}
}

func (s *Session) subscribe(ctx context.Context, msg *protocol.ClientMessage) {
	r, err := room.Parse(msg.Room)
	if err != nil {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	for _, t := range msg.Events {
		if !events.KnownType(t) {
			s.send(s.info.Mode.Error(msg.ID, protocol.CodeBadRequest, fmt.Sprintf("events: unknown event type %q", clip(t))))
			return
		}
	}
	claims := s.Claims()
	if err := s.mayJoin(claims, r); err != nil {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeForbidden, err.Error()))
		return
	}
	if s.env.Revocations != nil && s.env.Revocations.Room(claims.Subject, r, claims.IssuedAt) {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeForbidden, "access to "+r.String()+" was revoked: get a new token"))
		return
	}
	name := r.String()
	if st, ok := s.subs[name]; ok {
		if msg.Since == nil {
			// Same room again without a position: only the filter changes.
			st.sub.SetEvents(msg.Events)
			s.send(s.info.Mode.Subscribed(msg.ID, st.sub.Position()))
			return
		}
		s.leave(st) // resubscribing from a position starts over
		delete(s.subs, name)
	}
	if len(s.subs) >= s.opts.MaxSubscriptions {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeBadRequest, fmt.Sprintf("subscription limit reached: at most %d rooms per connection", s.opts.MaxSubscriptions)))
		return
	}

	// Where to start: an explicit since wins; else the device's stored
	// position; else live.
	resume, since := msg.Since != nil, uint64(0)
	if resume {
		since = *msg.Since
	} else if dev := s.device(); dev != "" && s.env.Positions != nil {
		seq, ok, err := s.env.Positions.Get(ctx, claims.Subject, dev, r)
		if err != nil {
			s.logEvent(s.env.Log.Error()).Err(err).Str("room", name).Msg("read device position")
			s.send(s.info.Mode.Error(msg.ID, protocol.CodeInternal, "could not read this device's position; try again"))
			return
		}
		resume, since = ok, seq
	}

	sub := hub.NewSubscription(r, s, msg.Events, resume)
	err = s.env.Hub.Join(ctx, sub, since, func(pos uint64) { s.send(s.info.Mode.Subscribed(msg.ID, pos)) })
	if errors.Is(err, hub.ErrRoomFull) {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeRoomFull, r.String()+" is full on this node; try again later"))
		return
	}
	if err != nil {
		s.logEvent(s.env.Log.Error()).Err(err).Str("room", name).Msg("join room")
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeInternal, "could not subscribe; try again"))
		return
	}
	st := &subState{sub: sub}
	s.subs[name] = st
	if !resume {
		return
	}
	s.env.Metrics.Resumes.Inc()
	cctx, cancel := context.WithCancel(ctx)
	st.cancel, st.done = cancel, make(chan struct{})
	s.catchUps.Add(1)
	go func() {
		defer s.catchUps.Done()
		defer close(st.done)
		defer cancel()
		err := s.env.Hub.CatchUp(cctx, sub)
		if err != nil && cctx.Err() == nil && !errors.Is(err, errClosing) {
			s.logEvent(s.env.Log.Error()).Err(err).Str("room", name).Uint64("since", since).Msg("catch-up failed")
			s.Close(protocol.TryAgainLater(2 * time.Second))
		}
	}()
}

// leave ends a subscription: its catch-up stops (and has queued its last
// event when leave returns, so nothing of it follows a later reply) and it
// leaves the room.
func (s *Session) leave(st *subState) {
	if st.cancel != nil {
		st.cancel()
		<-st.done
	}
	s.env.Hub.Leave(st.sub)
	s.mu.Lock()
	s.dropRoomLocked(st.sub.Room().String()) // nothing of the room follows the reply
	s.mu.Unlock()
}

func (s *Session) device() string {
	if d := s.deviceID.Load(); d != nil {
		return *d
	}
	return ""
}

func (s *Session) unsubscribe(msg *protocol.ClientMessage) {
	r, err := room.Parse(msg.Room)
	if err != nil {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	st, ok := s.subs[r.String()]
	if !ok {
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeNotFound, "not subscribed to "+r.String()))
		return
	}
	s.leave(st)
	delete(s.subs, r.String())
	s.send(s.info.Mode.OK(msg.ID))
}

// ack records the client's cumulative acknowledgment of a room. The
// position stored for the device never passes what the room delivered.
func (s *Session) ack(msg *protocol.ClientMessage) {
	s.env.Metrics.Acks.Inc()
	r, err := room.Parse(msg.Room)
	if err != nil {
		if msg.ID == nil {
			s.Close(protocol.ProtocolViolation("ack: " + err.Error()))
			return
		}
		s.send(s.info.Mode.Error(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	st, ok := s.subs[r.String()]
	if !ok {
		// Acks may cross an unsubscribe on the wire: not an error without id.
		if msg.ID != nil {
			s.send(s.info.Mode.Error(msg.ID, protocol.CodeNotFound, "not subscribed to "+r.String()))
		}
		return
	}
	seq := min(*msg.Seq, st.sub.Position())
	if dev := s.device(); dev != "" && s.env.Positions != nil && seq > 0 {
		s.env.Positions.Ack(s.Claims().Subject, dev, r, seq)
	}
	if msg.ID != nil {
		s.send(s.info.Mode.OK(msg.ID))
	}
}

// Revoke applies a revocation received on NATS: the listed rooms are left
// at once ({"op":"unsubscribed","reason":"revoked"}), or, without rooms,
// the connection is closed with 4003. Safe to call from any goroutine.
func (s *Session) Revoke(rooms []room.Room) {
	if len(rooms) == 0 {
		s.Close(protocol.Forbidden("access revoked"))
		return
	}
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for _, r := range rooms {
		name := r.String()
		if st, ok := s.subs[name]; ok {
			s.leave(st)
			delete(s.subs, name)
			s.send(s.info.Mode.Unsubscribed(name, "revoked"))
		}
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
