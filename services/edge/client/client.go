// Package client is the Go client of the eventedge WebSocket protocol v1.
//
// Dial connects and authenticates; Subscribe and Unsubscribe wait for the
// server's reply; server messages that are not replies (events, and notices
// such as unsubscribed) arrive in order on Messages. One goroutine, owned by
// the Conn, reads the connection; Close stops it and waits for it.
//
// Two wire formats, chosen with Options.Protocol: JSON (the default) and
// Protobuf (subprotocol eventedge.v1.protobuf, binary frames of
// length-delimited messages). Both deliver the same Messages; in protobuf
// mode an event also carries its decoded protobuf (Event.Proto).
//
// This is the single-connection layer: it does not reconnect. Consume
// Messages promptly: while the channel is full the reader waits, replies
// wait behind it, and the server eventually closes a client that does not
// read (4008, slow consumer).
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	eventedgev1 "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// Options configures Dial. Only Token is required.
type Options struct {
	// Token is the JWT.
	Token string
	// HeaderAuth sends the token in the upgrade request's Authorization
	// header instead of as the first message. Default false (browsers
	// cannot set headers; the auth message works everywhere).
	HeaderAuth bool
	// DeviceID identifies this device across connections (optional).
	DeviceID string
	// ClientVersion is reported to the server (optional).
	ClientVersion string
	// Header is added to the upgrade request (e.g. Origin).
	Header http.Header
	// HTTPClient dials the connection. Default http.DefaultClient.
	HTTPClient *http.Client
	// MessageBuffer is the capacity of the Messages channel. Default 1024.
	MessageBuffer int
	// ReadLimit is the largest server frame accepted. Default 16 MiB.
	ReadLimit int64
	// Protocol is the wire format. Default JSON.
	Protocol Protocol
}

// Protocol is a connection's wire format.
type Protocol int

// Protocols.
const (
	// JSON: text frames of JSON messages. No subprotocol is offered, so
	// any eventedge node accepts it.
	JSON Protocol = iota
	// Protobuf: subprotocol eventedge.v1.protobuf, binary frames of
	// length-delimited ClientMessage and ServerMessage protobufs.
	Protobuf
)

// String returns "json" or "protobuf".
func (p Protocol) String() string {
	if p == Protobuf {
		return "protobuf"
	}
	return "json"
}

// ParseProtocol parses "json" or "protobuf".
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "json":
		return JSON, nil
	case "protobuf":
		return Protobuf, nil
	}
	return JSON, fmt.Errorf("protocol %q: want json or protobuf", s)
}

// Event is an event as the server delivers it.
type Event struct {
	ID                 string            `json:"id"`
	Type               string            `json:"type"`
	Timestamp          time.Time         `json:"timestamp"`
	UserID             string            `json:"userId,omitempty"`
	Priority           string            `json:"priority"`
	RequiredPermission string            `json:"requiredPermission,omitempty"`
	Metadata           map[string]string `json:"metadata"`
	// Data is the payload in its JSON form (for task_updated: taskId,
	// changes, updatedBy, changedFields). In protobuf mode the client
	// derives it from Proto.
	Data json.RawMessage `json:"data"`
	// Proto is the event as published, decoded, in protobuf mode (nil in
	// JSON mode).
	Proto *eventedgev1.Event `json:"-"`
}

// Message is one server message that is not a reply: op "event" (Event set)
// or a notice such as "unsubscribed" (Reason set).
type Message struct {
	Op     string `json:"op"`
	Room   string `json:"room,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason,omitempty"`
	Event  *Event `json:"event,omitempty"`
	// In is an expiring notice's seconds until the token expires.
	In int `json:"in,omitempty"`
	// Raw is the message as received (in protobuf mode, the ServerMessage
	// without its length prefix).
	Raw []byte `json:"-"`
}

// Welcome is the server's answer to a successful authentication.
type Welcome struct {
	Session   string    `json:"session"`
	Node      string    `json:"node"`
	User      string    `json:"user"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ReplyError is a command the server refused.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *ReplyError) Error() string { return e.Code + ": " + e.Message }

// CloseError is how the connection ended, when the server closed it.
type CloseError struct {
	Code   websocket.StatusCode
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("closed %d: %s", int(e.Code), e.Reason) }

// HandshakeError is an upgrade the server answered without switching
// protocols: 503 when the node is full, starting or draining, 429 at a
// per-address or per-user limit, 403 for a foreign origin, 400 for an
// unknown subprotocol (protocol.md §6, handshake answers).
type HandshakeError struct {
	URL    string
	Status int // the HTTP status
	// RetryAfter is the Retry-After header's delay (whole seconds, up to an
	// hour); 0 when the answer had none.
	RetryAfter time.Duration
	Err        error // coder/websocket's error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("dial %s: HTTP %d: %v", e.URL, e.Status, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// retryAfterHeader parses a Retry-After header of whole seconds (what the
// edge sends; an HTTP date is not used by it and counts as none).
func retryAfterHeader(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 || secs > 3600 {
		return 0
	}
	return time.Duration(secs) * time.Second
}

// ErrClosed is returned by commands on a closed Conn.
var ErrClosed = errors.New("connection closed")

type reply struct {
	OK        bool        `json:"ok"`
	Error     *ReplyError `json:"error"`
	ExpiresAt time.Time   `json:"expiresAt"`
	Seq       uint64      `json:"seq"`
}

// Conn is one authenticated connection. Safe for concurrent use.
type Conn struct {
	// static after Dial
	ws       *websocket.Conn
	proto    Protocol
	welcome  Welcome
	messages chan *Message
	done     chan struct{} // closed when the reader ends
	ctx      context.Context
	cancel   context.CancelFunc

	writeMu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64                 // guarded by mu
	pending map[uint64]chan *reply // guarded by mu: replies and pongs by id
	err     error                  // guarded by mu: why the reader ended
}

// Dial connects to url (ws://host:port/v1/ws), authenticates and returns
// once the server has welcomed the connection. A refused token yields a
// *CloseError with code 4001.
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	if opts.MessageBuffer <= 0 {
		opts.MessageBuffer = 1024
	}
	if opts.ReadLimit <= 0 {
		opts.ReadLimit = 16 << 20
	}
	h := http.Header{}
	for k, v := range opts.Header {
		h[k] = v
	}
	if opts.HeaderAuth {
		h.Set("Authorization", "Bearer "+opts.Token)
	}
	dopts := &websocket.DialOptions{HTTPClient: opts.HTTPClient, HTTPHeader: h}
	if opts.Protocol == Protobuf {
		dopts.Subprotocols = []string{subprotocolProtobuf}
	}
	ws, resp, err := websocket.Dial(ctx, url, dopts)
	if err != nil {
		if resp != nil {
			return nil, &HandshakeError{URL: url, Status: resp.StatusCode, RetryAfter: retryAfterHeader(resp.Header.Get("Retry-After")), Err: err}
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	if opts.Protocol == Protobuf && ws.Subprotocol() != subprotocolProtobuf {
		ws.CloseNow()
		return nil, fmt.Errorf("dial %s: the server did not accept subprotocol %s (a node without the protobuf mode?)", url, subprotocolProtobuf)
	}
	ws.SetReadLimit(opts.ReadLimit)
	c := &Conn{
		ws:       ws,
		proto:    opts.Protocol,
		messages: make(chan *Message, opts.MessageBuffer),
		done:     make(chan struct{}),
		pending:  make(map[uint64]chan *reply),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	if !opts.HeaderAuth {
		auth := command{Op: protocol.OpAuth, Token: opts.Token, DeviceID: opts.DeviceID, ClientVersion: opts.ClientVersion}
		if err := ws.Write(ctx, c.frameType(), encodeCommand(&auth, c.proto)); err != nil {
			ws.CloseNow()
			return nil, fmt.Errorf("send auth: %w", err)
		}
	}
	// The first message is the welcome, or the connection is closed.
	_, data, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, closeErr(err)
	}
	var w *Welcome
	var rest []byte
	if c.proto == Protobuf {
		w, rest, err = welcomeProto(data)
	} else {
		w, rest, err = welcomeJSON(data)
	}
	if err != nil {
		ws.CloseNow()
		return nil, err
	}
	c.welcome = *w
	go c.readLoop(rest)
	return c, nil
}

// welcomeJSON decodes the welcome at the start of a JSON frame and returns
// the frame's other messages.
func welcomeJSON(frame []byte) (*Welcome, []byte, error) {
	first, rest, _ := bytes.Cut(frame, []byte("\n"))
	var w struct {
		Op string `json:"op"`
		Welcome
	}
	if err := json.Unmarshal(first, &w); err != nil || w.Op != "welcome" {
		return nil, nil, fmt.Errorf("expected welcome, got %.200s", first)
	}
	return &w.Welcome, rest, nil
}

// Protocol returns the connection's wire format.
func (c *Conn) Protocol() Protocol { return c.proto }

// frameType is the WebSocket message type of the connection's frames.
func (c *Conn) frameType() websocket.MessageType {
	if c.proto == Protobuf {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// Welcome returns the server's welcome.
func (c *Conn) Welcome() Welcome { return c.welcome }

// Messages returns the channel of events and notices, in arrival order. It
// is closed when the connection ends; Err then says why.
func (c *Conn) Messages() <-chan *Message { return c.messages }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (a *CloseError when the server
// closed it), or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func closeErr(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: ce.Reason}
	}
	return err
}

func (c *Conn) readLoop(leftover []byte) {
	defer close(c.done)
	defer close(c.messages)
	defer c.failPending()
	defer func() {
		c.mu.Lock()
		if c.err == nil {
			c.err = ErrClosed // ended by Close while handing over a message
		}
		c.mu.Unlock()
	}()
	if len(leftover) > 0 && !c.dispatchFrame(leftover) {
		return
	}
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.mu.Lock()
			c.err = closeErr(err)
			c.mu.Unlock()
			return
		}
		if !c.dispatchFrame(data) {
			return
		}
	}
}

func (c *Conn) dispatchFrame(frame []byte) bool {
	if c.proto == Protobuf {
		for len(frame) > 0 {
			msg, rest, err := nextDelimited(frame)
			if err != nil {
				return c.fail(err)
			}
			frame = rest
			if !c.dispatch(decodeProto(msg)) {
				return false
			}
		}
		return true
	}
	for len(frame) > 0 {
		var line []byte
		line, frame, _ = bytes.Cut(frame, []byte("\n"))
		if len(line) == 0 {
			continue
		}
		if !c.dispatch(decodeJSON(bytes.Clone(line))) {
			return false
		}
	}
	return true
}

// incoming is one decoded server message: a reply (or pong) to a command
// with its id, or a Message for the Messages channel.
type incoming struct {
	id    *uint64
	reply *reply // set for a reply or pong; with id, answers a command
	msg   *Message
	err   error // undecodable
}

// fail ends the connection because a server message could not be decoded.
func (c *Conn) fail(err error) bool {
	c.mu.Lock()
	c.err = fmt.Errorf("undecodable server message: %w", err)
	c.mu.Unlock()
	c.ws.CloseNow()
	return false
}

func (c *Conn) dispatch(in incoming) bool {
	if in.err != nil {
		return c.fail(in.err)
	}
	if in.reply != nil && in.id != nil {
		c.mu.Lock()
		ch := c.pending[*in.id]
		delete(c.pending, *in.id)
		c.mu.Unlock()
		if ch != nil {
			ch <- in.reply
		}
		return true
	}
	m := in.msg
	select {
	case c.messages <- m:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *Conn) failPending() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

// command sends cmd with a fresh id and waits for the reply with that id.
func (c *Conn) command(ctx context.Context, cmd command) (*reply, error) {
	ch := make(chan *reply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	cmd.ID = &id
	if err := c.WriteRaw(ctx, encodeCommand(&cmd, c.proto)); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return r, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Conn) replyCommand(ctx context.Context, cmd command) (*reply, error) {
	r, err := c.command(ctx, cmd)
	if err != nil {
		return nil, err
	}
	if !r.OK {
		if r.Error == nil {
			r.Error = &ReplyError{Code: "internal", Message: "reply without ok or error"}
		}
		return nil, r.Error
	}
	return r, nil
}

// Subscribe joins room, receiving only the listed event types (all when
// none), from now on. A refusal is a *ReplyError (bad_request, forbidden, …).
func (c *Conn) Subscribe(ctx context.Context, room string, eventTypes ...string) error {
	_, err := c.SubscribeFrom(ctx, room, nil, eventTypes...)
	return err
}

// SubscribeFrom joins room. With since set, the server first replays every
// retained event of the room after that sequence (0: the whole retained
// history), or sends a reset when they are gone. It returns the position
// the subscription continues after: events with a larger seq follow.
func (c *Conn) SubscribeFrom(ctx context.Context, room string, since *uint64, eventTypes ...string) (uint64, error) {
	r, err := c.replyCommand(ctx, command{Op: protocol.OpSubscribe, Room: room, Events: eventTypes, Since: since})
	if err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Ack acknowledges every event of room up to seq (cumulative). Without a
// reply: acks are frequent and an unanswered one is superseded by the next.
func (c *Conn) Ack(ctx context.Context, room string, seq uint64) error {
	cmd := command{Op: protocol.OpAck, Room: room, Seq: &seq}
	return c.WriteRaw(ctx, encodeCommand(&cmd, c.proto))
}

// Unsubscribe leaves room.
func (c *Conn) Unsubscribe(ctx context.Context, room string) error {
	_, err := c.replyCommand(ctx, command{Op: protocol.OpUnsubscribe, Room: room})
	return err
}

// Refresh replaces the connection's token and returns its expiry.
func (c *Conn) Refresh(ctx context.Context, token string) (time.Time, error) {
	r, err := c.replyCommand(ctx, command{Op: protocol.OpAuth, Token: token})
	if err != nil {
		return time.Time{}, err
	}
	return r.ExpiresAt, nil
}

// Ping sends a protocol ping and returns the round-trip time.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if _, err := c.command(ctx, command{Op: protocol.OpPing}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// WriteRaw sends data as one frame, as is: a text frame in JSON mode, a
// binary one in protobuf mode. For tools and tests that need to send what
// the typed methods would not.
func (c *Conn) WriteRaw(ctx context.Context, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.Write(ctx, c.frameType(), data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Close closes the connection normally and waits for the reader to end.
// Closing a connection the server already closed is not an error.
func (c *Conn) Close() error {
	c.writeMu.Lock()
	err := c.ws.Close(websocket.StatusNormalClosure, "")
	c.writeMu.Unlock()
	c.cancel()
	<-c.done
	if err != nil && (errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != -1) {
		err = nil
	}
	return err
}
