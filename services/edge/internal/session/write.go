package session

import (
	"context"
	"time"

	"github.com/coder/websocket"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// writeLoop is the only goroutine that writes to the connection. It drains
// the queue into as few frames as possible and, once the session is
// closing, sends the close frame and returns.
func (s *Session) writeLoop(ctx context.Context) {
	var (
		spare []item
		buf   []byte
	)
	for {
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		batch, reason := s.queue, s.reason
		s.queue, s.queueBytes = spare[:0], 0
		s.mu.Unlock()

		if reason != nil {
			s.closeConn(reason)
			return
		}
		select { // room in the queue again: wake a waiting replay
		case s.space <- struct{}{}:
		default:
		}
		var ok bool
		if buf, ok = s.writeBatch(ctx, batch, buf); !ok {
			return
		}
		clear(batch) // drop references to sent data
		spare = batch
	}
}

// writeBatch writes items, joining consecutive ones with '\n' into frames of
// at most MaxBatchBytes. It returns false when the connection failed.
func (s *Session) writeBatch(ctx context.Context, items []item, buf []byte) ([]byte, bool) {
	for len(items) > 0 {
		n, size := 1, len(items[0].data)
		for n < len(items) && size+1+len(items[n].data) <= s.opts.MaxBatchBytes {
			size += 1 + len(items[n].data)
			n++
		}
		frame := items[0].data
		if n > 1 {
			buf = buf[:0]
			for i, it := range items[:n] {
				if i > 0 {
					buf = append(buf, '\n')
				}
				buf = append(buf, it.data...)
			}
			frame = buf
		}
		if !s.write(ctx, frame) {
			return buf, false
		}
		now := time.Now()
		for _, it := range items[:n] {
			if !it.ts.IsZero() {
				s.env.Metrics.DeliveryLatency.Observe(now.Sub(it.ts).Seconds())
			}
		}
		items = items[n:]
	}
	return buf, true
}

func (s *Session) write(ctx context.Context, frame []byte) bool {
	wctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	err := s.conn.Write(wctx, websocket.MessageText, frame)
	cancel()
	if err != nil {
		if wctx.Err() == context.DeadlineExceeded {
			s.Close(protocol.ReasonWriteTimeout)
		} else {
			s.Close(protocol.ReasonPeerClosed)
		}
		_ = s.conn.CloseNow()
		return false
	}
	s.env.Metrics.FramesOut.Inc()
	s.env.Metrics.BytesOut.Add(float64(len(frame)))
	return true
}

// closeConn sends the close frame for reason, or just drops the connection
// when the reason has no code (the peer is gone).
func (s *Session) closeConn(r *protocol.CloseReason) {
	if r.Code == 0 {
		_ = s.conn.CloseNow()
		return
	}
	// Close performs the handshake: it writes our close frame and waits
	// (bounded by the library, 5s each way) for the peer's, which the
	// reader, still reading, lets through.
	_ = s.conn.Close(r.Code, r.Text)
}

// schedulePing arms the next ping.
func (s *Session) schedulePing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if s.pingTimer == nil {
		s.pingTimer = time.AfterFunc(s.opts.PingInterval, s.ping)
		return
	}
	s.pingTimer.Reset(s.opts.PingInterval)
}

// ping runs on its timer's goroutine: it sends a WebSocket ping and waits
// for the pong. A peer that does not answer in PingTimeout is dropped.
func (s *Session) ping() {
	s.mu.Lock()
	if s.done || s.reason != nil {
		s.mu.Unlock()
		return
	}
	s.pingWG.Add(1)
	s.mu.Unlock()
	defer s.pingWG.Done()

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.PingTimeout)
	err := s.conn.Ping(ctx)
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	switch {
	case err == nil:
		s.schedulePing()
	case timedOut:
		s.Close(protocol.ReasonPingTimeout)
		_ = s.conn.CloseNow()
	}
	// Any other error: the connection is already closing; Run cleans up.
}
