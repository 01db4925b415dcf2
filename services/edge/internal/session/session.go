package session

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

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
	// Revocations refuses rooms (or users) revoked (the REVOCATIONS
	// stream, read by the node's follower); nil: none.
	Revocations *revocation.List
	// Policy adds per-room required permissions; nil: none.
	Policy *policy.Policy
	// Merges shares the encodings of coalesced task_progress between the
	// sessions (merge.go); nil: each session encodes its own.
	Merges *Merges
	// Users bounds each user's connections (slots.go); nil: no limit.
	Users UserSlots
	// Flushers write the sessions' frames in rounds (flusher.go), one per
	// processor; each session uses one of them, chosen in turn by New.
	// Empty: each session's writer goroutine starts as soon as its queue
	// has something.
	Flushers []*Flusher
	Log      zerolog.Logger
	// Options configure every session. With the defaults applied
	// (Options.WithDefaults, as the node does) every session points to
	// them; otherwise each session holds a copy with the defaults, 128
	// bytes of every connection. Not to be changed once a session exists.
	Options Options
}

// options returns the options a new session of env uses: env.Options
// when they have the defaults applied, else a copy of its own that has.
func (e *Env) options() *Options {
	if e.Options.WithDefaults() == e.Options {
		return &e.Options
	}
	o := e.Options.WithDefaults()
	return &o
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
	// Mode is the wire format negotiated at the handshake (JSON unless
	// the client asked for eventedge.v1.protobuf).
	Mode protocol.Mode
	// Cork, when set, is the connection's writing end under the WebSocket
	// library's buffer: each data frame then leaves in one write call.
	Cork *Cork
}

// Session is one client connection. Create with New, then call Run once.
type Session struct {
	// static after construction
	env   *Env
	opts  *Options // the Env's, with defaults; shared by every session
	conn  *websocket.Conn
	info  Info
	start time.Duration // when the session started, an offset from epoch
	// flusher is the one of Env.Flushers that writes this session's frames;
	// nil: none.
	flusher *Flusher

	tok      atomic.Pointer[token] // nil until authenticated
	deviceID atomic.Pointer[string]
	cmdLimit *rate.Limiter // commands from the client; owned by the reader
	ackLimit *rate.Limiter // acks from the client; owned by the reader, made by the first ack

	// subsMu guards subs: the reader's commands and revocations (from the
	// node's NATS subscription) both change them.
	subsMu sync.Mutex
	subs   map[string]*subState // by room name

	// owned by the reader (Run)
	userSlot  string // the user whose Env.Users slot this session holds; "" none
	authTimer *time.Timer
	catchUps  sync.WaitGroup // catch-up goroutines, started by the reader, waited for by Run

	mu         sync.Mutex
	q          *queue                // guarded by mu
	space      chan struct{}         // guarded by mu, made by the first DeliverWait that waits (cap 1): the writer took from the queue
	writer     uint8                 // guarded by mu: writerIdle, writerQueued, writerRunning or writerDone (write.go)
	done       bool                  // guarded by mu: Run is tearing down; no new pings, the clock does nothing
	writers    sync.WaitGroup        // a writer queued with the flusher or running (inline or on its goroutine)
	batch      []item                // owned by the running writer
	batchPool  *[]item               // owned by the running writer: batch's entry in itemPool
	writeTimer *time.Timer           // made once under mu by the first armWrite (a close-only writer makes none); Reset/Stop by the writer and cutBlockedWriteLocked, stopped by Run's teardown
	writeSince atomic.Int64          // when the frame in flight began to be written (unix ns); 0: none
	flow       flow                  // guarded by mu: throttling and held progress
	reason     *protocol.CloseReason // guarded by mu; set once: the session is closing
	clock      clock                 // guarded by mu: the next ping, the expiring notice and the token's expiry (clock.go)
	pingWG     sync.WaitGroup        // a ping in flight

	act activity // what the admin API shows (snapshot.go)
}

// epoch is the process's reference on the monotonic clock: a session
// keeps its times as offsets from it (8 bytes each, where a time.Time
// takes 24: every connection holds a Session).
var epoch = time.Now()

// flusherTurn spreads new sessions over the node's flushers in turn.
var flusherTurn atomic.Uint32

// New returns a session for an accepted connection.
func New(env *Env, conn *websocket.Conn, info Info) *Session {
	s := &Session{
		env:   env,
		opts:  env.options(),
		conn:  conn,
		info:  info,
		start: time.Since(epoch),
		subs:  make(map[string]*subState),
		q:     newQueue(),
	}
	if n := len(env.Flushers); n > 0 {
		s.flusher = env.Flushers[int(flusherTurn.Add(1)%uint32(n))]
	}
	s.flow.init(s.opts)
	s.cmdLimit = rate.NewLimiter(rate.Limit(s.opts.CommandRate), s.opts.CommandBurst)
	return s
}

// logEvent adds the session's fields (the session, the remote address
// and, once authenticated, the user) to e, an event of the node's logger:
// s.logEvent(s.env.Log.Info()).Msg(…). A connection keeps no logger
// context, and an event below the node's level is nil, so a disabled
// level costs nothing here.
func (s *Session) logEvent(e *zerolog.Event) *zerolog.Event {
	if e == nil {
		return nil
	}
	e = e.Str("session", s.info.ID).Str("remote", s.info.RemoteAddr)
	if c := s.Claims(); c != nil {
		e = e.Str("user", c.Subject)
	}
	return e
}

// ID returns the session id.
func (s *Session) ID() string { return s.info.ID }

// Claims returns the current claims, nil before authentication. It
// implements hub.Sink.
func (s *Session) Claims() *auth.Claims {
	if t := s.tok.Load(); t != nil {
		return t.claims
	}
	return nil
}

// Token returns the claims of the session's current token and when the
// session accepted it (first authentication or refresh), as one pair; nil
// and zero before the first authentication.
func (s *Session) Token() (*auth.Claims, time.Time) {
	if t := s.tok.Load(); t != nil {
		return t.claims, t.acceptedAt
	}
	return nil, time.Time{}
}

// token is a session's current token: its claims and when it was
// accepted. Immutable; replaced whole on a refresh.
type token struct {
	claims     *auth.Claims
	acceptedAt time.Time
}

// setClaims makes c the session's current token, accepted now.
func (s *Session) setClaims(c *auth.Claims) {
	s.tok.Store(&token{claims: c, acceptedAt: time.Now()})
}

// Close asks the session to end with reason; Run returns once it has. Safe
// to call from any goroutine, any number of times: the first reason wins.
func (s *Session) Close(reason *protocol.CloseReason) {
	s.mu.Lock()
	s.closeLocked(reason)
	s.mu.Unlock()
}

// closeLocked is Close with s.mu held.
func (s *Session) closeLocked(reason *protocol.CloseReason) {
	if s.reason == nil {
		s.reason = reason
		s.cutBlockedWriteLocked()
	}
	s.kickLocked()
}

// Deliver queues events for the client, in order: the hub hands a
// subscriber all the events of a room it fans out together in one call,
// so the session is locked and its writer kicked once per batch, not per
// event. It never blocks and does not keep batch. Low-priority events may
// be coalesced, held back (throttled) or dropped; when a high or normal one
// cannot be queued the session is closed as a slow consumer (and the rest
// of the batch is not queued). It implements hub.Sink.
func (s *Session) Deliver(batch ...*hub.Outbound) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	for _, o := range batch {
		if !s.enqueue(o, false) {
			s.closeLocked(protocol.ReasonSlowConsumer)
			s.dropped(o.Priority, dropSlowConsumer)
			s.mu.Unlock()
			return
		}
	}
	s.kickLocked()
	s.mu.Unlock()
}

// errClosing is returned by DeliverWait once the session is closing.
var errClosing = errors.New("session closing")

// DeliverWait queues an event, waiting while the queue is more than half
// full, so a replay goes at the client's pace instead of overflowing it.
// Replayed events are never throttled or dropped. It implements hub.Sink.
func (s *Session) DeliverWait(ctx context.Context, o *hub.Outbound) error {
	var woke chan struct{} // the channel whose wake-up the last wait took
	for {
		if err := ctx.Err(); err != nil {
			// The subscription ended: queue nothing more for it. A wake-up
			// just taken goes on to another replay of this session that
			// may be waiting (not covered by a test: the interleaving
			// cannot be forced from outside).
			if woke != nil {
				signalSpace(woke)
			}
			return err
		}
		s.mu.Lock()
		if s.reason != nil {
			s.mu.Unlock()
			return errClosing
		}
		if s.q.msgs < s.opts.QueueMessages/2 && s.q.bytes+len(o.Bytes(s.info.Mode)) <= s.opts.QueueBytes/2 || s.q.msgs == 0 {
			s.enqueue(o, true)
			s.kickLocked()
			s.mu.Unlock()
			return nil
		}
		if s.space == nil {
			s.space = make(chan struct{}, 1)
		}
		space := s.space
		s.mu.Unlock()
		woke = nil
		select {
		case <-space:
			woke = space
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Reset queues a reset of room in the room's own order (see hub.Sink); with
// purge the room's queued events are discarded first. Held progress of the
// room goes with them. It implements hub.Sink.
func (s *Session) Reset(room, reason string, seq uint64, purge bool) {
	data := s.info.Mode.Reset(room, reason, seq)
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
	s.kickLocked()
	s.mu.Unlock()
}

// dropRoomLocked discards everything queued or held for room. Caller holds mu.
func (s *Session) dropRoomLocked(room string) {
	s.q.dropRoom(room)
	s.flow.held.takeRoom(room)
	s.tidyHeld()
}

// send queues a control message (a reply, pong, welcome, refreshed,
// unsubscribed…): ahead of events, counted toward the queue's bounds. One
// that does not fit closes the client as a slow consumer (4008), as a high
// or normal event would: a client that sends commands and does not read
// the replies.
func (s *Session) send(data []byte) {
	s.mu.Lock()
	if s.reason != nil {
		s.mu.Unlock()
		return
	}
	if s.q.msgs >= s.opts.QueueMessages || s.q.bytes+len(data) > s.opts.QueueBytes {
		// Replies count toward the queue's bounds: a client that sends
		// commands (acks with an id, pings) and does not read the answers
		// is a slow consumer, however fast it sends.
		s.closeLocked(protocol.ReasonSlowConsumer)
		s.mu.Unlock()
		return
	}
	s.q.pushControl(data)
	s.kickLocked()
	s.mu.Unlock()
}

// Run serves the connection until it ends and returns why. The caller must
// not use the connection afterwards.
func (s *Session) Run(ctx context.Context) *protocol.CloseReason {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	if s.info.HeaderToken != "" {
		aside(func() { s.authenticate(nil, s.info.HeaderToken, "", "") })
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
	s.mu.Lock()
	s.disarmExpiryLocked() // pings go on until done, below
	s.mu.Unlock()
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
	if s.clock.timer != nil {
		s.clock.timer.Stop()
	}
	if s.reason == nil {
		s.reason = protocol.ReasonPeerClosed
	}
	reason := s.reason
	s.kickLocked() // to send the close frame, unless the writing is over
	s.mu.Unlock()
	s.writers.Wait()
	s.mu.Lock()
	if s.writeTimer != nil {
		s.writeTimer.Stop() // a close grace armed as the last write finished must not fire after Run
	}
	s.mu.Unlock()
	cancel()
	_ = s.conn.CloseNow()
	s.pingWG.Wait()
	if s.userSlot != "" { // per-user connection limit (slots.go)
		s.env.Users.ReleaseUser(s.userSlot, s)
	}
	s.logClose(reason)
	return reason
}

func (s *Session) logClose(r *protocol.CloseReason) {
	s.logEvent(s.env.Log.Info()).Str("reason", r.Label).Int("code", int(r.Code)).Dur("duration_ms", time.Since(epoch)-s.start).Msg("connection closed")
}

// readLoop reads until the connection fails or closes.
//
// The reads take ctx without its cancellation: nothing cancels it before
// readLoop returns (Run does, after), and a read ends when the connection
// closes. With a context that can be done, coder/websocket registers an
// AfterFunc on it for every read and makes its done channel: per idle
// connection about 350 bytes held (the registration, an entry in the
// parent's children, the channel), and per message a registration made
// and dropped.
func (s *Session) readLoop(ctx context.Context) {
	rctx := context.WithoutCancel(ctx)
	for {
		typ, data, buf, err := s.readMessage(rctx)
		if err != nil {
			s.noteReadError(err)
			return
		}
		s.act.last.Store(time.Now().UnixNano())
		s.handleFrame(ctx, typ, data)
		putReadBuffer(buf)
	}
}

// readPool holds the buffers client messages are read into: a message is
// handled (and its bytes copied where kept) before the next one is read,
// so a connection holds no read buffer between messages, and reading one
// allocates nothing.
var readPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledRead is the largest read buffer put back in readPool.
const maxPooledRead = 64 << 10

// readMessage reads the next message into a buffer from readPool, which
// the caller returns with putReadBuffer once the message is handled.
func (s *Session) readMessage(ctx context.Context) (websocket.MessageType, []byte, *bytes.Buffer, error) {
	typ, r, err := s.conn.Reader(ctx)
	if err != nil {
		return 0, nil, nil, err
	}
	buf := readPool.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		putReadBuffer(buf)
		return 0, nil, nil, err
	}
	return typ, buf.Bytes(), buf, nil
}

func putReadBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledRead {
		readPool.Put(buf)
	}
}

// handleFrame handles one message (frame) of the client.
func (s *Session) handleFrame(ctx context.Context, typ websocket.MessageType, data []byte) {
	if s.closing() {
		return // the reader keeps reading so the close handshake completes
	}
	mode := s.info.Mode
	if typ != mode.MessageType() {
		if mode == protocol.Protobuf {
			s.Close(protocol.ProtocolViolation("text frame on an " + protocol.SubprotocolProtobuf + " connection: send binary frames"))
		} else {
			s.Close(protocol.ProtocolViolation("binary frame on a JSON connection: send text frames, or connect with subprotocol " + protocol.SubprotocolProtobuf))
		}
		return
	}
	each := func(msg []byte) bool {
		s.env.Metrics.MessagesIn.Inc()
		s.handle(ctx, msg)
		return !s.closing()
	}
	aside(func() {
		if mode == protocol.JSON {
			protocol.Split(data, each)
		} else if err := protocol.SplitBinary(data, each); err != nil {
			s.Close(protocol.ProtocolViolation(err.Error()))
		}
	})
}

// aside runs f on a goroutine of its own and waits for it. The reader
// lives as long as the connection, blocked in Read nearly all the time,
// and its stack is a large part of an idle connection's memory: the work
// that needs a deep stack (verifying a token, joining a room) runs aside,
// one frame at a time and in order, so the reader's stack stays the size
// of the read path. The price is a goroutine start and a channel per client
// frame (acks included), which client command rates bound.
func aside(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
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
