package session

import (
	"context"
	"time"

	"github.com/coder/websocket"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// writeLoop is the only goroutine that writes to the connection. Each
// frame takes, in priority order, as many queued messages as fit in
// MaxBatchBytes, so a high-priority event that arrives while a backlog is
// being written goes out in the next frame. Once the session is closing it
// sends the close frame and returns.
func (s *Session) writeLoop(ctx context.Context) {
	var (
		batch []item
		buf   []byte
	)
	for {
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
		for {
			s.mu.Lock()
			reason := s.reason
			if reason == nil {
				if s.q.msgs > 0 {
					s.env.Metrics.QueueDepth.Observe(float64(s.q.msgs))
					s.env.Metrics.QueueBytes.Observe(float64(s.q.bytes))
				}
				batch = s.q.take(batch[:0], s.opts.MaxBatchBytes)
				if s.q.msgs == 0 {
					s.q.forget() // idle: keep no per-room lanes
				}
			}
			s.mu.Unlock()
			if reason != nil {
				s.closeConn(reason)
				return
			}
			if len(batch) == 0 {
				break
			}
			select { // room in the queue again: wake a waiting replay
			case s.space <- struct{}{}:
			default:
			}
			var ok bool
			if buf, ok = s.writeFrame(ctx, batch, buf); !ok {
				return
			}
			clear(batch) // drop references to sent data
		}
	}
}

// writeFrame writes items as one frame, joined by '\n'.
func (s *Session) writeFrame(ctx context.Context, items []item, buf []byte) ([]byte, bool) {
	frame := items[0].data
	if len(items) > 1 {
		buf = buf[:0]
		for i, it := range items {
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
	for _, it := range items {
		switch {
		case it.ts.IsZero(): // not an event
		case it.replay:
			s.env.Metrics.ReplayLatency.Observe(now.Sub(it.ts).Seconds())
		default:
			s.env.Metrics.LiveLatency.Observe(now.Sub(it.ts).Seconds())
		}
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
