package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// State is where a Client stands.
type State int

// States of a Client.
const (
	// StateConnecting: the first connection attempt is under way.
	StateConnecting State = iota + 1
	// StateConnected: authenticated; the rooms are being (re)subscribed
	// on this connection (Subscribed reports each once the server has
	// answered).
	StateConnected
	// StateReconnecting: the connection was lost or refused; the next
	// attempt is in StateChange.RetryIn.
	StateReconnecting
	// StateUnauthorized: the server refused the token (4001) and no
	// TokenFunc could give a new one, or it closed with 4003. Run returns.
	StateUnauthorized
	// StateOffline: Run has stopped (its context ended).
	StateOffline
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateUnauthorized:
		return "unauthorized"
	case StateOffline:
		return "offline"
	}
	return "unknown"
}

// StateChange reports a new State.
type StateChange struct {
	State State
	// Node is the edge node connected to (StateConnected).
	Node string
	// URL is the URL connected to or about to be tried.
	URL string
	// RetryIn is the wait before the next attempt (StateReconnecting).
	RetryIn time.Duration
	// Err is why the last connection ended or failed.
	Err error
}

// Config configures a Client. URLs and a token source are required.
type Config struct {
	// URLs of edge nodes; attempts go round them in order.
	URLs []string
	// Token is the JWT, used when TokenFunc is nil.
	Token string
	// TokenFunc, when set, is asked for a token before every connection
	// attempt (so a refused, expired token is replaced).
	TokenFunc func(ctx context.Context) (string, error)
	// DeviceID identifies this device; with it, acknowledged positions are
	// stored by the server and survive a restart of the client.
	DeviceID      string
	ClientVersion string
	Header        http.Header
	HTTPClient    *http.Client
	// BaseDelay and MaxDelay bound the exponential backoff with full
	// jitter between attempts. Defaults 250ms and 30s. A 1013 close's
	// retry-after, and with a single URL a refused upgrade's Retry-After
	// header when longer, take the backoff's place; neither is capped by
	// MaxDelay (both are at most an hour).
	BaseDelay, MaxDelay time.Duration
	// AckInterval is how often each room's position is acknowledged.
	// Default 250ms; negative disables acks.
	AckInterval time.Duration
	// PingInterval is how often a protocol ping checks the connection; a
	// ping unanswered within PingTimeout ends it (and a reconnect follows),
	// so a silently dead network is noticed in seconds, not minutes.
	// Defaults 15s and 10s.
	PingInterval, PingTimeout time.Duration
	// OnState, when set, is called on every state change, from Run's
	// goroutine; it must not block.
	OnState func(StateChange)
	// Buffer is the capacity of the Events channel. Default 1024.
	Buffer int
	// Protocol is the wire format of every connection. Default JSON.
	Protocol Protocol
}

type roomSub struct {
	events []string
	pos    uint64 // last delivered (or reset-to) seq; 0 with known false: none yet
	known  bool
	acked  uint64
	queued bool // handed to a subscriber goroutine on the current connection
	live   bool // subscribed on the current connection (the server answered)
}

// Client is a connection to eventedge that survives failures: it
// reconnects with backoff, re-subscribes every room from its last
// delivered seq, drops duplicates by seq and acknowledges what it
// delivered. Every event of a room published while it was away arrives
// once, in order, within the stream's retention (else a reset says so).
//
// Create with NewClient, add rooms with Subscribe, and call Run once; Run's
// goroutine owns the connection. Events and resets arrive on Events.
type Client struct {
	// static after NewClient
	cfg    Config
	events chan *Message

	dups atomic.Uint64 // events dropped as already delivered

	mu    sync.Mutex
	rooms map[string]*roomSub // guarded by mu
	conn  *Conn               // guarded by mu; nil while disconnected
	added chan struct{}       // cap 1: rooms were added; Run subscribes the unqueued ones
}

// NewClient returns a Client for cfg; it does not connect until Run.
func NewClient(cfg Config) *Client {
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 250 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 30 * time.Second
	}
	if cfg.AckInterval == 0 {
		cfg.AckInterval = 250 * time.Millisecond
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 1024
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 10 * time.Second
	}
	return &Client{cfg: cfg, events: make(chan *Message, cfg.Buffer), rooms: make(map[string]*roomSub), added: make(chan struct{}, 1)}
}

// Events returns the events (op "event") and resets (op "reset") of every
// subscribed room, each room's in ascending seq without duplicates. It is
// closed when Run returns.
func (c *Client) Events() <-chan *Message { return c.events }

// Subscribe adds room (receiving only the listed event types, all when
// none). It takes effect on the current connection and every later one.
func (c *Client) Subscribe(room string, eventTypes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.rooms[room]; ok {
		return
	}
	c.rooms[room] = &roomSub{events: eventTypes}
	select {
	case c.added <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// unqueued marks and returns the rooms not yet handed to a subscriber
// goroutine on the current connection.
func (c *Client) unqueued() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for name, r := range c.rooms {
		if !r.queued {
			r.queued = true
			names = append(names, name)
		}
	}
	return names
}

// Position returns the last seq delivered (or reset to) in room.
func (c *Client) Position(room string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[room]; r != nil {
		return r.pos
	}
	return 0
}

// Duplicates is the number of events the client dropped because their
// room had already delivered their seq: copies a resume or a failover
// sent again. Events never reports them.
func (c *Client) Duplicates() uint64 { return c.dups.Load() }

// Subscribed reports whether room is subscribed on the current connection:
// the server has answered its subscribe, so every event of the room stored
// from now on reaches Events. It is false before the first connection,
// while reconnecting, and until a new connection's subscribe is answered.
func (c *Client) Subscribed(room string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[room]
	return r != nil && r.live && c.conn != nil
}

func (c *Client) setState(s StateChange) {
	if c.cfg.OnState != nil {
		c.cfg.OnState(s)
	}
}

// ErrUnauthorized is returned by Run when the server refuses the client's
// credentials for good.
var ErrUnauthorized = errors.New("unauthorized")

// Run connects and keeps the client connected until ctx ends (it then
// returns nil) or the server refuses the credentials (ErrUnauthorized).
func (c *Client) Run(ctx context.Context) error {
	defer close(c.events)
	defer c.setState(StateChange{State: StateOffline})
	if len(c.cfg.URLs) == 0 {
		return errors.New("client: no URLs")
	}
	c.setState(StateChange{State: StateConnecting, URL: c.cfg.URLs[0]})
	attempt := 0
	for i := 0; ; i++ {
		url := c.cfg.URLs[i%len(c.cfg.URLs)]
		start := time.Now()
		err := c.session(ctx, url)
		if ctx.Err() != nil {
			return nil
		}
		var ce *CloseError
		errors.As(err, &ce)
		if ce != nil && (ce.Code == 4003 || ce.Code == 4001 && c.cfg.TokenFunc == nil) {
			c.setState(StateChange{State: StateUnauthorized, URL: url, Err: err})
			return errors.Join(ErrUnauthorized, err)
		}
		if time.Since(start) > 10*time.Second {
			attempt = 0 // it had been up: start the backoff over
		}
		delay := c.backoff(attempt)
		switch {
		case ce != nil && ce.Code == 1012:
			delay = rand.N(c.cfg.BaseDelay) // restart: elsewhere at once, spread out
			attempt = 0
		case ce != nil && ce.Code == 1013:
			if d, ok := retryAfter(ce.Reason); ok {
				delay = d
			}
		}
		// A node that refused the upgrade with Retry-After (full, starting,
		// at a limit) is not asked again before then; with several URLs
		// the next attempt goes to another node, at the usual backoff.
		var he *HandshakeError
		if errors.As(err, &he) && len(c.cfg.URLs) == 1 && he.RetryAfter > delay {
			delay = he.RetryAfter
		}
		attempt++
		next := c.cfg.URLs[(i+1)%len(c.cfg.URLs)]
		c.setState(StateChange{State: StateReconnecting, URL: next, RetryIn: delay, Err: err})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// backoff is exponential with full jitter: uniform in [0, min(max, base·2^n)).
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.MaxDelay
	if attempt < 62 && c.cfg.BaseDelay <= c.cfg.MaxDelay>>attempt { // no overflow
		d = c.cfg.BaseDelay << attempt
	}
	return rand.N(d) + time.Millisecond
}

func retryAfter(reason string) (time.Duration, bool) {
	v, ok := strings.CutPrefix(reason, "retry-after=")
	if !ok {
		return 0, false
	}
	secs, err := strconv.Atoi(v)
	if err != nil || secs < 0 || secs > 3600 {
		return 0, false
	}
	return time.Duration(secs) * time.Second, true
}

// session runs one connection until it ends and returns why.
func (c *Client) session(ctx context.Context, url string) error {
	token := c.cfg.Token
	if c.cfg.TokenFunc != nil {
		t, err := c.cfg.TokenFunc(ctx)
		if err != nil {
			return err
		}
		token = t
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := Dial(dctx, url, Options{
		Token: token, DeviceID: c.cfg.DeviceID, ClientVersion: c.cfg.ClientVersion,
		Header: c.cfg.Header, HTTPClient: c.cfg.HTTPClient, MessageBuffer: c.cfg.Buffer,
		Protocol: c.cfg.Protocol,
	})
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()

	c.mu.Lock()
	c.conn = conn
	for _, r := range c.rooms {
		r.queued, r.live = false, false // every room is subscribed anew on this connection
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
	}()
	c.setState(StateChange{State: StateConnected, Node: conn.Welcome().Node, URL: url})

	// Subscribing waits for replies, which the reader can only deliver
	// while Messages is drained: subscribe from a goroutine of this session.
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	subErr := make(chan error, 1)
	var subWG sync.WaitGroup
	subscribe := func(names ...string) {
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			for _, name := range names {
				if err := c.subscribeRoom(sctx, conn, name); err != nil {
					select {
					case subErr <- err:
					default:
					}
					return
				}
			}
		}()
	}
	subscribe(c.unqueued()...)
	defer subWG.Wait()
	defer scancel()

	var tick <-chan time.Time
	if c.cfg.AckInterval > 0 && c.cfg.DeviceID != "" {
		t := time.NewTicker(c.cfg.AckInterval)
		defer t.Stop()
		tick = t.C
	}
	pings := time.NewTicker(c.cfg.PingInterval)
	defer pings.Stop()
	pingErr := make(chan error, 1)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-subErr:
			return err
		case <-pings.C:
			// The reply arrives through the reader, which this loop keeps
			// draining: ping from a goroutine of this session.
			subWG.Add(1)
			go func() {
				defer subWG.Done()
				pctx, cancel := context.WithTimeout(sctx, c.cfg.PingTimeout)
				defer cancel()
				if _, err := conn.Ping(pctx); err != nil && sctx.Err() == nil {
					select {
					case pingErr <- err:
					default:
					}
				}
			}()
		case err := <-pingErr:
			return fmt.Errorf("connection dead: ping: %w", err)
		case <-c.added:
			if names := c.unqueued(); len(names) > 0 {
				subscribe(names...)
			}
		case <-tick:
			c.ack(ctx, conn)
		case m, ok := <-conn.Messages():
			if !ok {
				if err := conn.Err(); err != nil {
					return err
				}
				return errors.New("connection ended")
			}
			if m.Op == "expiring" && c.cfg.TokenFunc != nil {
				// Refresh before the server closes with 4001: no reconnect.
				subWG.Add(1)
				go func() {
					defer subWG.Done()
					if err := c.refresh(sctx, conn); err != nil && sctx.Err() == nil {
						c.setState(StateChange{State: StateConnected, Node: conn.Welcome().Node, URL: url, Err: fmt.Errorf("token refresh: %w", err)})
					}
				}()
				continue
			}
			if err := c.handle(ctx, m); err != nil {
				return err
			}
		}
	}
}

// refresh replaces the connection's token with a fresh one from TokenFunc.
func (c *Client) refresh(ctx context.Context, conn *Conn) error {
	tok, err := c.cfg.TokenFunc(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = conn.Refresh(rctx, tok)
	return err
}

// subscribeRoom subscribes name from its position (or live when it has
// none yet) and adopts the position the server continues after.
func (c *Client) subscribeRoom(ctx context.Context, conn *Conn, name string) error {
	c.mu.Lock()
	r := c.rooms[name]
	var since *uint64
	if r.known {
		p := r.pos
		since = &p
	}
	events := r.events
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	seq, err := conn.SubscribeFrom(rctx, name, since, events...)
	if err != nil {
		var re *ReplyError
		if errors.As(err, &re) && (re.Code == "forbidden" || re.Code == "bad_request") {
			// Not retryable: drop the room and say so once.
			c.mu.Lock()
			delete(c.rooms, name)
			c.mu.Unlock()
			return c.emit(ctx, &Message{Op: "unsubscribed", Room: name, Reason: re.Code})
		}
		return err
	}
	c.mu.Lock()
	if since == nil { // a fresh subscription continues after seq
		if !r.known || seq > r.pos {
			r.pos, r.known = max(r.pos, seq), true
		}
	}
	if c.conn == conn {
		r.live = true
	}
	c.mu.Unlock()
	return nil
}

// handle passes one server message on, dropping duplicates.
func (c *Client) handle(ctx context.Context, m *Message) error {
	c.mu.Lock()
	r := c.rooms[m.Room]
	if r == nil {
		c.mu.Unlock()
		return nil // a room given up
	}
	switch m.Op {
	case "event":
		if r.known && m.Seq <= r.pos {
			c.mu.Unlock()
			c.dups.Add(1)
			return nil // already delivered
		}
		r.pos, r.known = m.Seq, true
	case "reset":
		r.pos, r.known = m.Seq, true
	case "unsubscribed":
		delete(c.rooms, m.Room)
	}
	c.mu.Unlock()
	return c.emit(ctx, m)
}

func (c *Client) emit(ctx context.Context, m *Message) error {
	select {
	case c.events <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ack acknowledges every room whose position moved since its last ack.
func (c *Client) ack(ctx context.Context, conn *Conn) {
	type pending struct {
		room string
		seq  uint64
	}
	var todo []pending
	c.mu.Lock()
	for name, r := range c.rooms {
		if r.known && r.pos > r.acked {
			todo = append(todo, pending{name, r.pos})
		}
	}
	c.mu.Unlock()
	for _, p := range todo {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := conn.Ack(actx, p.room, p.seq)
		cancel()
		if err != nil {
			return // the connection is ending; what was not acked is acked on the next one
		}
		c.mu.Lock()
		if r := c.rooms[p.room]; r != nil && p.seq > r.acked {
			r.acked = p.seq
		}
		c.mu.Unlock()
	}
}

// CloseCode returns the WebSocket close code in err, or -1.
func CloseCode(err error) websocket.StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}
