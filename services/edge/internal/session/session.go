package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
	"github.com/eventedge/eventedge/services/edge/internal/revocation"
)

// Env is what sessions share: the node's components.
type Env struct {
	Node     string
	Hub      *hub.Hub
	Verifier *auth.Verifier
	Metrics  *metrics.Metrics
	// Positions stores acknowledged positions of devices; nil disables
	// offline queueing.
	Positions *positions.Store
	// LowBudget is the node's budget for low-priority events, shared by
	// every session; nil: unlimited.
	LowBudget *rate.Limiter
	// Revocations refuses rooms (or users) revoked on NATS; nil: none.
	Revocations *revocation.List
	// Policy adds per-room required permissions; nil: none.
	Policy *policy.Policy
	// Users bounds each user's connections (slots.go); nil: no limit.
	Users   UserSlots
	Log     zerolog.Logger
	Options Options // with defaults applied by New
}

// subState is one subscription and the catch-up that may run for it.
type subState struct {
	sub    *hub.Subscription
	cancel context.CancelFunc // stops its catch-up; nil when none was started
	done   chan struct{}      // closed when the catch-up has returned
}

// Info describes the connection, from the upgrade request.
type Info struct {
	ID         string
	RemoteAddr string
	UserAgent  string
	// HeaderToken is the bearer token of the Authorization header, if any.
	HeaderToken string
}

// Session is one client connection. Create with New, then call Run once.
type Session struct {
	// static after construction
	env   *Env
	opts  Options
	conn  *websocket.Conn
	info  Info
	log   zerolog.Logger
	start time.Time
	wake  chan struct{} // cap 1: the writer has something to do
	space chan struct{} // cap 1: the writer drained the queue (for DeliverWait)

	claims   atomic.Pointer[auth.Claims] // nil until authenticated
	deviceID atomic.Pointer[string]
	cmdLimit *rate.Limiter // commands from the client; owned by the reader

	// subsMu guards subs: the reader's commands and revocations (from the
	// node's NATS subscription) both change them.
	subsMu sync.Mutex
	subs   map[string]*subState // by room name

	// owned by the reader (Run)
	userSlot    string // the user whose Env.Users slot this session holds; "" none
	authTimer   *time.Timer
	expTimer    *time.Timer
	noticeTimer *time.Timer    // sends expiring before the token's expiry
	catchUps    sync.WaitGroup // catch-up goroutines, started by the reader, waited for by Run

	mu        sync.Mutex
	q         *queue                // guarded by mu
	flow      flow                  // guarded by mu: throttling and held progress
	reason    *protocol.CloseReason // guarded by mu; set once: the session is closing
	pingTimer *time.Timer           // guarded by mu
	pingWG    sync.WaitGroup        // a ping in flight
	done      bool                  // guarded by mu: Run is tearing down; no new pings
}

// New returns a session for an accepted connection.
func New(env *Env, conn *websocket.Conn, info Info) *Session {
	s := &Session{
		env:   env,
		opts:  env.Options.WithDefaults(),
		conn:  conn,
		info:  info,
		start: time.Now(),
		wake:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		subs:  make(map[string]*subState),
		q:     newQueue(),
	}
	s.flow.init(s.opts)
	s.cmdLimit = rate.NewLimiter(rate.Limit(s.opts.CommandRate), s.opts.CommandBurst)
	s.log = env.Log.With().Str("session", info.ID).Str("remote", info.RemoteAddr).Logger()
	return s
}

// ID returns the session id.
func (s *Session) ID() string { return s.info.ID }

// Claims returns the current claims, nil before authentication. It
// implements hub.Sink.
func (s *Session) Claims() *auth.Claims { return s.claims.Load() }

// Close asks the session to end with reason; Run returns once it has. Safe
// to call from any goroutine, any number of times: the first reason wins.
func (s *Session) Close(reason *protocol.CloseReason) {
	s.mu.Lock()
	if s.reason == nil {
		s.reason = reason
	}
	s.mu.Unlock()
	s.signal()
}

func (s *Session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Deliver queues an event for the client. It never blocks. Low-priority
// events may be coalesced, held back (throttled) or dropped; when a high or
// normal one cannot be queued the session is closed as a slow consumer. It
// implements hub.Sink.
func (s *Session) Deliver(o *hub.Outbound) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	if !s.enqueue(o, false) {
		s.reason = protocol.ReasonSlowConsumer
		s.mu.Unlock()
		s.env.Metrics.Dropped(hub.PriorityLabel(o.Priority), "slow_consumer")
		s.signal()
		return
	}
	s.mu.Unlock()
	s.signal()
}

// errClosing is returned by DeliverWait once the session is closing.
var errClosing = errors.New("session closing")

// DeliverWait queues an event, waiting while the queue is more than half
// full, so a replay goes at the client's pace instead of overflowing it.
// Replayed events are never throttled or dropped. It implements hub.Sink.
func (s *Session) DeliverWait(ctx context.Context, o *hub.Outbound) error {
	for {
		if err := ctx.Err(); err != nil {
			return err // the subscription ended: queue nothing more for it
		}
		s.mu.Lock()
		if s.reason != nil {
			s.mu.Unlock()
			return errClosing
		}
		if s.q.msgs < s.opts.QueueMessages/2 && s.q.bytes+len(o.Data) <= s.opts.QueueBytes/2 || s.q.msgs == 0 {
			s.enqueue(o, true)
			s.mu.Unlock()
			s.signal()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Send queues a control message (reply, welcome, pong, reset). Control
// messages are small and bounded by the client's own commands; they are
// not subject to the slow-consumer limit. It implements hub.Sink.
func (s *Session) Send(data []byte) {
	s.send(data)
}

// Reset queues a reset of room in the room's own order (see hub.Sink); with
// purge the room's queued events are discarded first. Held progress of the
// room goes with them. It implements hub.Sink.
func (s *Session) Reset(room string, data []byte, purge bool) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	if purge {
		s.dropRoomLocked(room)
	} else {
		s.releaseHeld(room)
	}
	s.q.push(item{data: data, room: room, prio: pb.Priority_PRIORITY_HIGH})
	s.mu.Unlock()
	s.signal()
}

// dropRoomLocked discards everything queued or held for room. Caller holds mu.
func (s *Session) dropRoomLocked(room string) {
	s.q.dropRoom(room)
	for key, h := range s.flow.held {
		if h.room == room {
			delete(s.flow.held, key)
		}
	}
}

func (s *Session) send(data []byte) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	s.q.pushControl(data)
	s.mu.Unlock()
	s.signal()
}

// Run serves the connection until it ends and returns why. The caller must
// not use the connection afterwards.
func (s *Session) Run(ctx context.Context) *protocol.CloseReason {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var writerDone sync.WaitGroup
	writerDone.Add(1)
	go func() {
		defer writerDone.Done()
		s.writeLoop(ctx)
	}()

	if s.info.HeaderToken != "" {
		s.authenticate(nil, s.info.HeaderToken, "", "")
	} else {
		s.authTimer = time.AfterFunc(s.opts.AuthTimeout, func() {
			if s.Claims() == nil {
				s.env.Metrics.AuthFailures.WithLabelValues("timeout").Inc()
				s.Close(protocol.Unauthenticated("no auth message within " + s.opts.AuthTimeout.String()))
			}
		})
	}
	s.schedulePing()

	s.readLoop(ctx)

	// Teardown: stop timers, leave rooms, let the writer finish the close.
	if s.authTimer != nil {
		s.authTimer.Stop()
	}
	if s.expTimer != nil {
		s.expTimer.Stop()
	}
	if s.noticeTimer != nil {
		s.noticeTimer.Stop()
	}
	s.subsMu.Lock()
	for _, st := range s.subs {
		s.leave(st)
	}
	clear(s.subs)
	s.subsMu.Unlock()
	s.catchUps.Wait()
	s.mu.Lock()
	s.done = true
	if s.flow.timer != nil {
		s.flow.timer.Stop()
	}
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	if s.reason == nil {
		s.reason = protocol.ReasonPeerClosed
	}
	reason := s.reason
	s.mu.Unlock()
	s.signal()
	writerDone.Wait()
	cancel()
	_ = s.conn.CloseNow()
	s.pingWG.Wait()
	if s.userSlot != "" { // per-user connection limit (slots.go)
		s.env.Users.ReleaseUser(s.userSlot)
	}
	s.logClose(reason)
	return reason
}

func (s *Session) logClose(r *protocol.CloseReason) {
	ev := s.log.Info().Str("reason", r.Label).Int("code", int(r.Code)).Dur("duration_ms", time.Since(s.start))
	if c := s.Claims(); c != nil {
		ev = ev.Str("user", c.Subject)
	}
	ev.Msg("connection closed")
}

// readLoop reads until the connection fails or closes.
func (s *Session) readLoop(ctx context.Context) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			s.noteReadError(err)
			return
		}
		if s.closing() {
			continue // keep reading so the close handshake completes
		}
		if typ != websocket.MessageText {
			s.Close(protocol.ProtocolViolation("binary frames are not part of protocol v1 (JSON)"))
			continue
		}
		protocol.Split(data, func(msg []byte) bool {
			s.env.Metrics.MessagesIn.Inc()
			s.handle(ctx, msg)
			return !s.closing()
		})
	}
}

func (s *Session) noteReadError(err error) {
	var ce websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig:
		s.Close(protocol.ReasonTooBig)
	case errors.Is(err, websocket.ErrMessageTooBig):
		s.Close(protocol.ReasonTooBig)
	default:
		s.Close(protocol.ReasonPeerClosed)
	}
}

func (s *Session) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason != nil
}

// handle executes one client message.
func (s *Session) handle(ctx context.Context, data []byte) {
	msg, err := protocol.Decode(data)
	if (err != nil || msg.Op != protocol.OpAck) && !s.cmdLimit.Allow() {
		// Acks are not counted: cheap, unanswered, and sent per room.
		s.Close(protocol.RateLimited(fmt.Sprintf("more than %g commands per second", s.opts.CommandRate)))
		return
	}
	if err != nil {
		var de *protocol.DecodeError
		if errors.As(err, &de) && de.ID != nil {
			s.send(protocol.EncodeError(de.ID, protocol.CodeBadRequest, de.Reason))
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
		s.send(protocol.EncodePong(msg.ID))
	case protocol.OpSubscribe, protocol.OpUnsubscribe, protocol.OpAck:
		if !authed {
			if msg.ID == nil {
				s.Close(protocol.Unauthenticated("authenticate first"))
				return
			}
			s.send(protocol.EncodeError(msg.ID, protocol.CodeUnauthorized, "authenticate first: send {\"op\":\"auth\",\"token\":…}"))
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

// authenticate handles the first authentication (from the header or the
// first auth message) and later token refreshes.
func (s *Session) authenticate(id *uint64, token, deviceID, clientVersion string) {
	claims, err := s.env.Verifier.Verify(token)
	prev := s.Claims()
	if err != nil {
		reason := auth.ReasonOf(err)
		s.env.Metrics.AuthFailures.WithLabelValues(string(reason)).Inc()
		if prev == nil {
			s.Close(protocol.Unauthenticated(err.Error()))
			return
		}
		// A failed refresh leaves the current, still valid token in force.
		s.send(protocol.EncodeError(id, protocol.CodeUnauthorized, err.Error()))
		return
	}
	if s.env.Revocations != nil && s.env.Revocations.User(claims.Subject, claims.IssuedAt) {
		s.env.Metrics.AuthFailures.WithLabelValues("revoked").Inc()
		s.Close(protocol.Forbidden("access revoked: get a new token"))
		return
	}
	if prev != nil && claims.Subject != prev.Subject {
		s.env.Metrics.AuthFailures.WithLabelValues(string(auth.ReasonSubjectDiffs)).Inc()
		s.send(protocol.EncodeError(id, protocol.CodeUnauthorized, "token refresh: sub differs from the session's user"))
		return
	}
	// Per-user connection limit (slots.go; added with the server's
	// connection limits): the first authentication takes a slot, released
	// by Run's teardown.
	if prev == nil && s.env.Users != nil {
		if !s.env.Users.AcquireUser(claims.Subject) {
			s.Close(protocol.RateLimited("too many connections for this user"))
			return
		}
		s.userSlot = claims.Subject
	}
	s.claims.Store(claims)
	s.armExpiry(claims)
	if prev != nil {
		s.send(protocol.EncodeRefreshed(id, claims.ExpiresAt))
		s.subsMu.Lock()
		s.recheckSubscriptions(claims)
		s.subsMu.Unlock()
		return
	}
	if s.authTimer != nil {
		s.authTimer.Stop()
	}
	if deviceID != "" {
		s.deviceID.Store(&deviceID)
	}
	s.log = s.log.With().Str("user", claims.Subject).Logger()
	s.send(protocol.EncodeWelcome(s.info.ID, s.env.Node, claims.Subject, claims.ExpiresAt))
	s.log.Info().Str("node", s.env.Node).Str("device", deviceID).Str("client_version", clientVersion).
		Str("user_agent", s.info.UserAgent).Msg("connection authenticated")
}

// armExpiry closes the session with 4001 when the token expires, unless a
// refresh replaces it first.
func (s *Session) armExpiry(c *auth.Claims) {
	if s.expTimer != nil {
		s.expTimer.Stop()
	}
	if s.noticeTimer != nil {
		s.noticeTimer.Stop()
	}
	if notice := time.Until(c.ExpiresAt) - s.opts.ExpiringNotice; notice > 0 {
		s.noticeTimer = time.AfterFunc(notice, func() {
			if s.Claims() == c {
				secs := int(time.Until(c.ExpiresAt).Round(time.Second) / time.Second)
				s.send(protocol.EncodeExpiring(max(secs, 0)))
			}
		})
	}
	d := time.Until(c.ExpiresAt) + s.env.Verifier.Leeway()
	s.expTimer = time.AfterFunc(d, func() {
		if cur := s.Claims(); cur == c {
			s.env.Metrics.AuthFailures.WithLabelValues(string(auth.ReasonExpired)).Inc()
			s.Close(protocol.Unauthenticated("token expired"))
		}
	})
}

// recheckSubscriptions leaves the rooms the refreshed claims no longer allow.
func (s *Session) recheckSubscriptions(c *auth.Claims) {
	for name, st := range s.subs {
		if err := s.mayJoin(c, st.sub.Room()); err != nil {
			s.leave(st)
			delete(s.subs, name)
			s.send(protocol.EncodeUnsubscribed(name, "forbidden"))
		}
	}
}

func (s *Session) subscribe(ctx context.Context, msg *protocol.ClientMessage) {
	r, err := room.Parse(msg.Room)
	if err != nil {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	for _, t := range msg.Events {
		if !events.KnownType(t) {
			s.send(protocol.EncodeError(msg.ID, protocol.CodeBadRequest, fmt.Sprintf("events: unknown event type %q", clip(t))))
			return
		}
	}
	claims := s.Claims()
	if err := s.mayJoin(claims, r); err != nil {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeForbidden, err.Error()))
		return
	}
	if s.env.Revocations != nil && s.env.Revocations.Room(claims.Subject, r, claims.IssuedAt) {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeForbidden, "access to "+r.String()+" was revoked: get a new token"))
		return
	}
	name := r.String()
	if st, ok := s.subs[name]; ok {
		if msg.Since == nil {
			// Same room again without a position: only the filter changes.
			st.sub.SetEvents(msg.Events)
			s.send(protocol.EncodeSubscribed(msg.ID, st.sub.Position()))
			return
		}
		s.leave(st) // resubscribing from a position starts over
		delete(s.subs, name)
	}
	if len(s.subs) >= s.opts.MaxSubscriptions {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeBadRequest, fmt.Sprintf("subscription limit reached: at most %d rooms per connection", s.opts.MaxSubscriptions)))
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
			s.log.Error().Err(err).Str("room", name).Msg("read device position")
			s.send(protocol.EncodeError(msg.ID, protocol.CodeInternal, "could not read this device's position; try again"))
			return
		}
		resume, since = ok, seq
	}

	sub := hub.NewSubscription(r, s, msg.Events, resume)
	err = s.env.Hub.Join(ctx, sub, since, func(pos uint64) { s.send(protocol.EncodeSubscribed(msg.ID, pos)) })
	if errors.Is(err, hub.ErrRoomFull) {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeRoomFull, r.String()+" is full on this node; try again later"))
		return
	}
	if err != nil {
		s.log.Error().Err(err).Str("room", name).Msg("join room")
		s.send(protocol.EncodeError(msg.ID, protocol.CodeInternal, "could not subscribe; try again"))
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
			s.log.Error().Err(err).Str("room", name).Uint64("since", since).Msg("catch-up failed")
			s.Close(protocol.TryAgainLater(2 * time.Second))
		}
	}()
}

// mayJoin applies the built-in room rules and the room policy's extra
// permissions.
func (s *Session) mayJoin(c *auth.Claims, r room.Room) error {
	if err := c.CanJoin(r); err != nil {
		return err
	}
	for _, p := range s.env.Policy.For(r).Permissions {
		if !c.Has(p) {
			return fmt.Errorf("%w: %s needs permission %s", auth.ErrForbidden, r, p)
		}
	}
	return nil
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
			s.send(protocol.EncodeUnsubscribed(name, "revoked"))
		}
	}
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
		s.send(protocol.EncodeError(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	st, ok := s.subs[r.String()]
	if !ok {
		s.send(protocol.EncodeError(msg.ID, protocol.CodeNotFound, "not subscribed to "+r.String()))
		return
	}
	s.leave(st)
	delete(s.subs, r.String())
	s.send(protocol.EncodeOK(msg.ID))
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
		s.send(protocol.EncodeError(msg.ID, protocol.CodeBadRequest, err.Error()))
		return
	}
	st, ok := s.subs[r.String()]
	if !ok {
		// Acks may cross an unsubscribe on the wire: not an error without id.
		if msg.ID != nil {
			s.send(protocol.EncodeError(msg.ID, protocol.CodeNotFound, "not subscribed to "+r.String()))
		}
		return
	}
	seq := min(*msg.Seq, st.sub.Position())
	if dev := s.device(); dev != "" && s.env.Positions != nil && seq > 0 {
		s.env.Positions.Ack(s.Claims().Subject, dev, r, seq)
	}
	if msg.ID != nil {
		s.send(protocol.EncodeOK(msg.ID))
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
