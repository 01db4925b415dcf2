package session

import (
	"io"
	"sync"
)

// Cork is the writing end of a connection, under the WebSocket library's
// buffered writer. While the session's writer writes a frame the Cork is
// corked: the library's writes (the frame header, the payload, in pieces)
// are gathered in a pooled buffer and leave in one write call when the frame
// is complete (uncork). While it is not corked, writes go straight through.
// The Cork does not tell writers apart: a ping, pong or close frame that
// another goroutine writes while a data frame is corked (the library
// serialises frames, so it comes after it) is gathered and leaves with it,
// in order. uncork holds the Cork's lock across the socket write, so such a
// frame also waits for a blocked data write — as it would on the socket.
//
// So a frame costs one system call whatever its size, and the library's
// own buffer in front of the Cork can be a few bytes (a frame header):
// an idle connection holds no write buffer.
type Cork struct {
	mu     sync.Mutex
	w      io.Writer // the connection
	corked bool      // guarded by mu
	buf    *[]byte   // guarded by mu: what was gathered while corked (from framePool)
}

// NewCork returns a Cork writing to w.
func NewCork(w io.Writer) *Cork { return &Cork{w: w} }

// Write gathers p while corked, else writes it through.
func (c *Cork) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.w.Write(p)
	}
	if c.buf == nil {
		c.buf = framePool.Get().(*[]byte)
		*c.buf = (*c.buf)[:0]
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

func (c *Cork) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
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
		_, err = c.w.Write(*b)
	}
	if cap(*b) <= maxPooledFrame {
		framePool.Put(b)
	}
	return err
}
