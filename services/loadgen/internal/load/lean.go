package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/services/edge/client"
)

// leanReadLimit is the largest server frame a lean client accepts, as the
// Go client's default: a single event can be about 1 MiB.
const leanReadLimit = 16 << 20

// conn is a client connection of a run, lean or the full Go client.
type conn interface {
	Done() <-chan struct{}
	Err() error
	Close() error
}

// leanConn is one client's connection on the lean receive path: connect,
// auth and subscribe are done synchronously by dialLean, then one
// goroutine (start) reads every frame into a reused buffer and scans its
// messages with ScanLine (JSON) or ScanBinary (protobuf), handing events
// and resets to a callback, with no allocation per message. Compare the Go client, which copies, splits
// and decodes every message twice and hands it to a second goroutine.
type leanConn struct {
	// static after dialLean
	ws       *websocket.Conn
	rooms    []string      // subscribed rooms, in order: events' rooms are matched against them
	leftover []byte        // messages read during the subscribes, after their replies
	done     chan struct{} // closed when the reader ends (or by Close when it never started)
	closing  chan struct{} // closed when Close starts
	// compressed: the server accepted permessage-deflate
	compressed bool
	binary     bool // the protobuf mode (leanOptions.binary)

	startOnce, closeOnce sync.Once

	mu  sync.Mutex
	err error // guarded by mu: why the reader ended
}

// leanMsg is one event or reset handed to a leanConn's handler. Room is
// one of the conn's room names (not allocated per message), or, for a
// room the client did not subscribe to, a copy. Line's slices are valid
// only during the call.
type leanMsg struct {
	Line
	RoomName string
	Raw      []byte    // the message's bytes (protobuf: without its length prefix)
	Now      time.Time // when its frame was read
}

// leanHandler sees every event and reset of a conn, from its reader
// goroutine, in arrival order. malformed is called for a message that is
// not valid (the reader goes on), for the rest of a binary frame whose
// length prefix is broken, and for a frame of the other mode's type.
type leanHandler struct {
	msg       func(m *leanMsg)
	malformed func(line []byte, err error)
}

// subprotocolProtobuf is the WebSocket subprotocol of the protobuf mode
// (the edge's protocol.SubprotocolProtobuf, which an internal package
// keeps from the load generator).
const subprotocolProtobuf = "eventedge.v1.protobuf"

// leanOptions are how a lean client talks to the edge.
type leanOptions struct {
	// compress offers permessage-deflate (no context takeover); the
	// reply's headers say whether the server took it
	// (leanConn.compressed).
	compress bool
	// binary speaks the protobuf mode: the client offers the subprotocol
	// eventedge.v1.protobuf, sends length-delimited ClientMessages in
	// binary frames and reads ServerMessages with ScanBinary. A server
	// that does not echo the subprotocol is refused. Default: JSON.
	binary bool
	// since, when set, resumes every room after it: the subscribes carry
	// it, and the edge replays the room's stored events after it.
	since *uint64
}

// dialLean connects to url through hc, authenticates with tok and
// subscribes to rooms in order (with o.since, if set), returning the
// replies' seqs. Errors are shaped as the Go client's, so classify names
// them alike: HTTP status of a refused upgrade, *client.CloseError,
// *client.ReplyError.
func dialLean(ctx context.Context, url string, hc *http.Client, tok string, rooms []string, o leanOptions) (*leanConn, []uint64, error) {
	opts := &websocket.DialOptions{HTTPClient: hc}
	if o.compress {
		opts.CompressionMode = websocket.CompressionNoContextTakeover
	}
	if o.binary {
		opts.Subprotocols = []string{subprotocolProtobuf}
	}
	ws, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp != nil {
			return nil, nil, &stageError{stage: "dial", err: fmt.Errorf("dial %s: HTTP %d: %w", url, resp.StatusCode, err)}
		}
		return nil, nil, &stageError{stage: "dial", err: fmt.Errorf("dial %s: %w", url, err)}
	}
	ws.SetReadLimit(leanReadLimit)
	c := &leanConn{ws: ws, rooms: rooms, binary: o.binary, done: make(chan struct{}), closing: make(chan struct{}),
		compressed: strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")}
	fail := func(stage string, err error) (*leanConn, []uint64, error) {
		ws.CloseNow()
		return nil, nil, &stageError{stage: stage, err: err}
	}
	if o.binary && ws.Subprotocol() != subprotocolProtobuf {
		return fail("dial", fmt.Errorf("dial %s: the server answered subprotocol %q to %s: it has no protobuf mode", url, ws.Subprotocol(), subprotocolProtobuf))
	}

	// auth and every subscribe in one frame (the protocol takes several
	// messages per frame, handled in order): one round trip, not one per
	// message. The replies come after the welcome, in the same order.
	first, err := firstFrame(tok, rooms, o.since, o.binary)
	if err != nil {
		return fail("dial", err)
	}
	if err := ws.Write(ctx, c.frameType(), first); err != nil {
		return fail("dial", fmt.Errorf("send auth: %w", err))
	}
	// The first message is the welcome, or the connection is closed.
	_, pending, err := ws.Read(ctx) // pending: the messages not handled yet
	if err != nil {
		return fail("dial", leanCloseErr(err))
	}
	var l Line
	welcome, rest, ok, err := c.next(pending)
	if err != nil || !ok || c.scan(welcome, &l) != nil || l.Op != OpWelcome {
		return fail("dial", fmt.Errorf("expected welcome, got %.200q", pending))
	}
	pending = rest

	pos := make([]uint64, len(rooms))
	for k := range rooms {
		id := uint64(k + 1)
		found := false
		for !found {
			// What comes before the reply (a previous room's events) is kept
			// for the reader.
			for !found {
				msg, rest, ok, err := c.next(pending)
				if err != nil {
					return fail("subscribe", fmt.Errorf("%w: %.200q", err, pending))
				}
				if !ok {
					break
				}
				pending = rest
				if c.scan(msg, &l) == nil && l.Op == OpReply && l.ID == id {
					found = true
					break
				}
				c.leftover = c.appendMsg(c.leftover, msg)
			}
			if found {
				break
			}
			if _, pending, err = ws.Read(ctx); err != nil {
				return fail("subscribe", leanCloseErr(err))
			}
		}
		if !l.OK {
			re := &client.ReplyError{Code: string(l.ErrCode), Message: string(l.ErrMsg)}
			if !o.binary {
				re.Message = unquote(l.ErrMsg)
			}
			if re.Code == "" {
				re.Code = "internal"
			}
			return fail("subscribe", re)
		}
		pos[k] = l.Seq
	}
	c.leftover = append(c.leftover, pending...)
	return c, pos, nil
}

// firstFrame is the frame of the auth and the subscribes (ids 1, 2, …),
// each after since when it is set.
func firstFrame(tok string, rooms []string, since *uint64, binary bool) ([]byte, error) {
	if !binary {
		b := append([]byte(`{"op":"auth","clientVersion":"loadgen","token":`), strconv.Quote(tok)...)
		b = append(b, '}')
		for k, rm := range rooms {
			b = fmt.Appendf(b, "\n{\"op\":\"subscribe\",\"id\":%d,\"room\":%q", k+1, rm)
			if since != nil {
				b = fmt.Appendf(b, ",\"since\":%d", *since)
			}
			b = append(b, '}')
		}
		return b, nil
	}
	msgs := []*pb.ClientMessage{{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{ClientVersion: "loadgen", Token: tok}}}}
	for k, rm := range rooms {
		msgs = append(msgs, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: proto.Uint64(uint64(k + 1)), Room: rm, Since: since}}})
	}
	var b []byte
	for _, m := range msgs {
		mb, err := proto.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode %T: %w", m.Op, err)
		}
		b = protowire.AppendBytes(b, mb)
	}
	return b, nil
}

// frameType is the WebSocket frame type of c's mode.
func (c *leanConn) frameType() websocket.MessageType {
	if c.binary {
		return websocket.MessageBinary
	}
	return websocket.MessageText
}

// next cuts the first message off frame, in c's mode: a line of JSON
// (white space trimmed, empty lines skipped) or a length-prefixed
// protobuf message. ok is false when frame holds no further message. An
// error is a broken length prefix: the rest of the frame cannot be read.
func (c *leanConn) next(frame []byte) (msg, rest []byte, ok bool, err error) {
	if c.binary {
		if len(frame) == 0 {
			return nil, nil, false, nil
		}
		msg, rest, err = nextBinary(frame)
		return msg, rest, err == nil, err
	}
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		if line = bytes.TrimSpace(line); len(line) > 0 {
			return line, frame, true, nil
		}
	}
	return nil, nil, false, nil
}

// scan scans one message of c's mode into l.
func (c *leanConn) scan(msg []byte, l *Line) error {
	if c.binary {
		return ScanBinary(msg, l)
	}
	return ScanLine(msg, l)
}

// appendMsg appends msg to dst in c's framing, for next to find again.
func (c *leanConn) appendMsg(dst, msg []byte) []byte {
	if c.binary {
		return protowire.AppendBytes(dst, msg)
	}
	return append(append(dst, msg...), '\n')
}

// unquote decodes the escapes of a raw JSON string content (rare: error
// messages only), falling back to the raw bytes.
func unquote(raw []byte) string {
	if s, err := strconv.Unquote(`"` + string(raw) + `"`); err == nil {
		return s
	}
	return string(raw)
}

// leanCloseErr turns the server's close into a *client.CloseError, as the
// Go client reports it ("read: close 4008").
func leanCloseErr(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &client.CloseError{Code: ce.Code, Reason: ce.Reason}
	}
	return err
}

// start runs the reader goroutine with h (nil: discard every message; the
// reader still runs, so the server's pings are answered). Only the first
// call counts.
func (c *leanConn) start(h *leanHandler) {
	c.startOnce.Do(func() { go c.read(h) })
}

// frameBufs holds the frame buffers of the lean readers: a reader takes
// one for a frame and puts it back after scanning it, so thousands of
// clients share about as many buffers as frames are being read at once
// (one per P, plus the readers blocked inside a frame), not one each.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// read reads frames until the connection ends. Its context is
// Background on purpose: coder/websocket then sets up no per-read
// timeout (a context.AfterFunc per frame, a good share of the cost of a
// small frame); Close ends the read by closing the connection.
func (c *leanConn) read(h *leanHandler) {
	defer close(c.done)
	var m leanMsg
	if len(c.leftover) > 0 {
		c.frame(h, &m, c.leftover, time.Now())
		c.leftover = nil
	}
	for {
		typ, rd, err := c.ws.Reader(context.Background())
		if err == nil {
			bp := frameBufs.Get().(*[]byte)
			*bp, err = readAll(rd, (*bp)[:0])
			switch {
			case err != nil:
			case typ != c.frameType():
				if h != nil && h.malformed != nil {
					h.malformed(*bp, fmt.Errorf("%w: a %v frame in the %s mode", errMalformed, typ, c.mode()))
				}
			default:
				c.frame(h, &m, *bp, time.Now())
			}
			frameBufs.Put(bp)
		}
		if err != nil {
			c.mu.Lock()
			c.err = leanCloseErr(err)
			c.mu.Unlock()
			return
		}
	}
}

// readAll appends what rd yields to buf, growing it only when a frame is
// larger than any before.
func readAll(rd io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// frame hands each event and reset of one frame to h.
func (c *leanConn) frame(h *leanHandler, m *leanMsg, frame []byte, now time.Time) {
	if h == nil {
		return
	}
	for {
		line, rest, ok, err := c.next(frame)
		if err != nil {
			if h.malformed != nil {
				h.malformed(frame, err) // the rest of the frame: its framing is lost
			}
			return
		}
		if !ok {
			return
		}
		frame = rest
		if err := c.scan(line, &m.Line); err != nil {
			if h.malformed != nil {
				h.malformed(line, err)
			}
			continue
		}
		if m.Op != OpEvent && m.Op != OpReset {
			continue // reply, pong, expiring, unsubscribed, …: not measured
		}
		m.RoomName = ""
		for _, rm := range c.rooms {
			if string(m.Room) == rm {
				m.RoomName = rm
				break
			}
		}
		if m.RoomName == "" {
			m.RoomName = string(m.Room) // not ours: the delivery check counts it as unexpected
		}
		m.Raw, m.Now = line, now
		h.msg(m)
	}
}

// mode names c's mode for messages.
func (c *leanConn) mode() string {
	if c.binary {
		return ProtocolProtobuf
	}
	return ProtocolJSON
}

// Done is closed when the connection has ended.
func (c *leanConn) Done() <-chan struct{} { return c.done }

// Closing is closed as soon as Close is called: a handler that waits
// (slow clients) stops waiting.
func (c *leanConn) Closing() <-chan struct{} { return c.closing }

// Err returns why the connection ended (a *client.CloseError when the
// server closed it), or nil while it is open.
func (c *leanConn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection normally and waits for the reader.
func (c *leanConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.closing)
		c.startOnce.Do(func() { close(c.done) }) // never started: nothing to wait for
		// Close waits (≤ 5 s) for the server's close frame, which the
		// reader consumes, and closes the connection, which ends the
		// reader; CloseNow makes sure of it.
		err = c.ws.Close(websocket.StatusNormalClosure, "")
		c.ws.CloseNow()
		<-c.done
		c.mu.Lock()
		if c.err == nil {
			c.err = client.ErrClosed
		}
		c.mu.Unlock()
	})
	if err != nil && (errors.Is(err, net.ErrClosed) || websocket.CloseStatus(err) != -1) {
		err = nil
	}
	return err
}
