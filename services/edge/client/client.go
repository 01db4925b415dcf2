// Package client is the Go client of the eventedge WebSocket protocol v1.
//
// Dial connects and authenticates; Subscribe and Unsubscribe wait for the
// server's reply; server messages that are not replies (events, and notices
// such as unsubscribed) arrive in order on Messages. One goroutine, owned by
// the Conn, reads the connection; Close stops it and waits for it.
//
// This is the single-connection layer: it does not reconnect. Consume
// Messages promptly: while the channel is full the reader waits, replies
// wait behind it, and the server eventually closes a client that does not
// read (4008, slow consumer).
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
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
	// changes, updatedBy, changedFields).
	Data json.RawMessage `json:"data"`
}

// Message is one server message that is not a reply: op "event" (Event set)
// or a notice such as "unsubscribed" (Reason set).
type Message struct {
	Op     string `json:"op"`
	Room   string `json:"room,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Reason string `json:"reason,omitempty"`
	Event  *Event `json:"event,omitempty"`
	// Raw is the message as received.
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
	welcome  Welcome
	messages chan *Message
	done     chan struct{} // closed when the reader ends
	ctx      context.Context
	cancel   context.CancelFunc

	writeMu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64                 // guarded by mu
	pending map[uint64]chan []byte // guarded by mu: replies and pongs by id
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
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: opts.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: HTTP %d: %w", url, resp.StatusCode, err)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	ws.SetReadLimit(opts.ReadLimit)
	c := &Conn{
		ws:       ws,
		messages: make(chan *Message, opts.MessageBuffer),
		done:     make(chan struct{}),
		pending:  make(map[uint64]chan []byte),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	if !opts.HeaderAuth {
		auth, _ := json.Marshal(map[string]string{"op": "auth", "token": opts.Token, "deviceId": opts.DeviceID, "clientVersion": opts.ClientVersion})
		if err := ws.Write(ctx, websocket.MessageText, auth); err != nil {
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
	first, rest, _ := strings.Cut(string(data), "\n")
	var w struct {
		Op string `json:"op"`
		Welcome
	}
	if err := json.Unmarshal([]byte(first), &w); err != nil || w.Op != "welcome" {
		ws.CloseNow()
		return nil, fmt.Errorf("expected welcome, got %.200s", first)
	}
	c.welcome = w.Welcome
	go c.readLoop([]byte(rest))
	return c, nil
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
	for _, line := range strings.Split(string(frame), "\n") {
		if line == "" {
			continue
		}
		if !c.dispatch([]byte(line)) {
			return false
		}
	}
	return true
}

func (c *Conn) dispatch(line []byte) bool {
	var head struct {
		Op string  `json:"op"`
		ID *uint64 `json:"id"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		c.mu.Lock()
		c.err = fmt.Errorf("undecodable server message: %w", err)
		c.mu.Unlock()
		c.ws.CloseNow()
		return false
	}
	if (head.Op == "reply" || head.Op == "pong") && head.ID != nil {
		c.mu.Lock()
		ch := c.pending[*head.ID]
		delete(c.pending, *head.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- line
		}
		return true
	}
	m := &Message{Raw: line}
	if err := json.Unmarshal(line, m); err != nil {
		c.mu.Lock()
		c.err = fmt.Errorf("undecodable server message: %w", err)
		c.mu.Unlock()
		c.ws.CloseNow()
		return false
	}
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

// command sends msg with a fresh id and waits for the reply with that id.
func (c *Conn) command(ctx context.Context, msg map[string]any) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	msg["id"] = id
	data, _ := json.Marshal(msg)
	if err := c.WriteRaw(ctx, data); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case line, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return line, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Conn) replyCommand(ctx context.Context, msg map[string]any) (*reply, error) {
	line, err := c.command(ctx, msg)
	if err != nil {
		return nil, err
	}
	var r reply
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("decode reply: %w", err)
	}
	if !r.OK {
		if r.Error == nil {
			r.Error = &ReplyError{Code: "internal", Message: "reply without ok or error"}
		}
		return nil, r.Error
	}
	return &r, nil
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
	msg := map[string]any{"op": "subscribe", "room": room}
	if len(eventTypes) > 0 {
		msg["events"] = eventTypes
	}
	if since != nil {
		msg["since"] = *since
	}
	r, err := c.replyCommand(ctx, msg)
	if err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Ack acknowledges every event of room up to seq (cumulative). Without a
// reply: acks are frequent and an unanswered one is superseded by the next.
func (c *Conn) Ack(ctx context.Context, room string, seq uint64) error {
	data, _ := json.Marshal(map[string]any{"op": "ack", "room": room, "seq": seq})
	return c.WriteRaw(ctx, data)
}

// Unsubscribe leaves room.
func (c *Conn) Unsubscribe(ctx context.Context, room string) error {
	_, err := c.replyCommand(ctx, map[string]any{"op": "unsubscribe", "room": room})
	return err
}

// Refresh replaces the connection's token and returns its expiry.
func (c *Conn) Refresh(ctx context.Context, token string) (time.Time, error) {
	r, err := c.replyCommand(ctx, map[string]any{"op": "auth", "token": token})
	if err != nil {
		return time.Time{}, err
	}
	return r.ExpiresAt, nil
}

// Ping sends a protocol ping and returns the round-trip time.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if _, err := c.command(ctx, map[string]any{"op": "ping"}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// WriteRaw sends data as one text frame, as is. For tools and tests that
// need to send what the typed methods would not.
func (c *Conn) WriteRaw(ctx context.Context, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
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
