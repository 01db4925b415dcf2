package session

import (
	"net"
	"sync"
	"syscall"
)

// Cork is the writing end of a connection, under the WebSocket library's
// buffered writer. While the session's writer writes a frame the Cork is
// corked: the library's writes (the frame header, the payload, in pieces)
// are gathered in a pooled buffer and leave in one write call when the frame
// is complete (uncork). While it is not corked, writes go straight through.
// The Cork does not tell writers apart: a ping, a pong or the library's
// reply to a client's close that another goroutine writes while a data
// frame is corked (the library serialises frames, so it comes after it) is
// gathered and leaves with it, in order. uncork holds the Cork's lock
// across the socket write, so such a frame also waits for a blocked data
// write — as it would on the socket. The library closes the connection
// right after writing its reply to a client's close: Close first sends
// what is corked (that reply among it) with one write that does not wait,
// so the reply is not lost. The session's own close frame is written only
// when nothing is corked.
//
// So a frame costs one system call whatever its size, and the library's
// own buffer in front of the Cork can be a few bytes (a frame header):
// an idle connection holds no write buffer.
//
// A frame can also be written without blocking (tryCork, tryUncork), which
// lets the Flusher write it on its own goroutine: when the socket does not
// take all of it, the rest stays corked — anything written meanwhile is
// gathered behind it, in order — until uncork sends it.
//
// The Cork is the connection the WebSocket library is given (the server's
// Hijack hands it over): reads, deadlines and addresses are the
// connection's own; Write and Close are the Cork's.
type Cork struct {
	net.Conn // the connection
	mu       sync.Mutex
	corked   bool    // guarded by mu
	buf      *[]byte // guarded by mu: what was gathered while corked (from framePool)

	// raw is the connection's raw form, for writes that must not wait
	// (tryUncork); nil when it has none: tryCork then always refuses.
	raw syscall.RawConn
}

// NewCork returns a Cork writing to conn.
func NewCork(conn net.Conn) *Cork {
	c := &Cork{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok && canTryWrite {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

// Write gathers p while corked, else writes it through.
func (c *Cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = framePool.Get().(*[]byte)
		*c.buf = (*c.buf)[:0]
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// Close closes the connection. What is still corked — a frame's rest, and
// what was gathered behind it, such as the library's reply to a client's
// close, written just before it closes — first gets one write that does
// not wait, unless another write holds the Cork (one blocked on a full
// socket: closing fails it).
func (c *Cork) Close() error {
	if c.raw != nil && c.mu.TryLock() {
		if b := c.buf; b != nil && len(*b) > 0 {
			_, _ = newRawWriter().write(c.raw, *b) // a closing connection: the allocation is rare
			c.buf = nil
			if cap(*b) <= maxPooledFrame {
				framePool.Put(b)
			}
		}
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

func (c *Cork) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// tryCork corks for a frame that tryUncork will try to send without
// blocking. It refuses (false, nothing changed) when the connection has no
// raw access or another write holds the Cork: one blocked on a full socket,
// or a frame still corked. The caller then writes the frame on a goroutine
// that may block.
func (c *Cork) tryCork() bool {
	if c.raw == nil || !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	if c.corked {
		return false
	}
	c.corked = true
	return true
}

// uncork writes what was gathered in one call (with send; without it the
// bytes are dropped: the frame failed and the connection is being closed)
// and lets later writes through.
func (c *Cork) uncork(send bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	b := c.buf
	if b == nil {
		return nil
	}
	c.buf = nil
	var err error
	if send && len(*b) > 0 {
		_, err = c.Conn.Write(*b)
	}
	if cap(*b) <= maxPooledFrame {
		framePool.Put(b)
	}
	return err
}

// tryUncork sends what was gathered in one system call that does not wait
// for the socket, made with w. It reports true when all of it left (the
// Cork is then uncorked, as after uncork); false when the socket took only
// part of it or none: the rest stays corked, later writes gather behind
// it, and the caller must call uncork, which blocks until it has left. On
// an error the bytes stay corked too; the caller drops them with
// uncork(false).
func (c *Cork) tryUncork(w *rawWriter) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	if b != nil && len(*b) > 0 {
		n, err := w.write(c.raw, *b)
		if err != nil {
			return false, err
		}
		if n < len(*b) {
			*b = (*b)[:copy(*b, (*b)[n:])]
			return false, nil
		}
	}
	c.corked = false
	c.buf = nil
	if b != nil && cap(*b) <= maxPooledFrame {
		framePool.Put(b)
	}
	return true, nil
}

// rawWriter makes tryUncork's writes. It is the scratch space of one
// goroutine (a Flusher's; Close makes its own), not of a connection: the function it hands to
// RawConn.Write is made once, so a write allocates nothing, and a
// connection holds nothing for it.
type rawWriter struct {
	p   []byte                // the bytes of the write in progress
	n   int                   // how many of them the socket took
	err error                 // the write's error (EAGAIN is not one: n is then 0)
	fn  func(fd uintptr) bool // w.tryFD
}

func newRawWriter() *rawWriter {
	w := &rawWriter{}
	w.fn = w.tryFD
	return w
}

// write writes p to raw in one system call that does not wait, and
// returns how much of p the socket took (0 when its buffer is full).
func (w *rawWriter) write(raw syscall.RawConn, p []byte) (int, error) {
	w.p = p
	err := raw.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	if err != nil {
		return 0, err
	}
	return n, werr
}
