package session

import (
	"context"
	"sync"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// The writer: a goroutine that runs only while the session has something to
// send. kickLocked queues it with the node's Flusher (which starts writers
// in rounds, flusher.go) when the queue goes from empty to non-empty, or
// starts it at once when the session starts closing; it writes frames until
// the queue is empty and then exits, so an idle connection holds no writer
// goroutine, no frame buffer and no batch. At most one writer is queued or
// runs at a time; once a writer has sent the close frame or a write failed,
// none starts again (writerDone).

// Writer states, guarded by Session.mu.
const (
	writerIdle    = iota // none queued or running; kickLocked queues one
	writerQueued         // waiting in the Flusher for its round
	writerRunning        // running; it looks at the queue again before it exits
	writerDone           // the connection is closed or failed: never again
)

// kickLocked queues the writer for the next round, or starts it at once
// when the session is closing (or has no Flusher), unless one is queued or
// runs or the session's writing is over. Caller holds s.mu.
func (s *Session) kickLocked() {
	switch {
	case s.writer == writerQueued && s.reason != nil:
		// Closing: do not wait for the round. The Flusher finds it started.
		s.writer = writerRunning
		go s.writeLoop(nil)
	case s.writer != writerIdle:
	case s.reason == nil && s.env.Flusher != nil:
		s.writer = writerQueued
		s.writers.Add(1) // Run's teardown waits for a queued writer too
		if !s.env.Flusher.add(s) {
			s.writer = writerRunning
			go s.writeLoop(nil)
		}
	default:
		s.writer = writerRunning
		s.writers.Add(1)
		go s.writeLoop(nil)
	}
}

// startQueued starts the writer queued with f, as part of f's round. It
// reports false when the writer is no longer queued (it was started because
// the session is closing). f is nil when the Flusher is closing.
func (s *Session) startQueued(f *Flusher) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writer != writerQueued {
		return false
	}
	s.writer = writerRunning
	go s.writeLoop(f)
	return true
}

// writeLoop writes frames while messages are queued. Each frame takes, in
// priority order, as many queued messages as fit in MaxBatchBytes, so a
// high-priority event that arrives while a backlog is being written goes out
// in the next frame. Once the session is closing it sends the close frame
// and ends the session's writing.
func (s *Session) writeLoop(round *Flusher) {
	defer s.writers.Done()
	if round != nil {
		round.writerStarted()
	}
	for {
		s.mu.Lock()
		reason := s.reason
		if reason != nil {
			s.writer = writerDone
			s.mu.Unlock()
			s.closeConn(reason)
			return
		}
		if s.q.msgs > 0 {
			s.env.Metrics.QueueDepth.Observe(float64(s.q.msgs))
			s.env.Metrics.QueueBytes.Observe(float64(s.q.bytes))
		}
		if s.batchPool == nil && s.q.msgs > 0 {
			s.batchPool = getItems()
			s.batch = *s.batchPool
		}
		s.batch = s.q.take(s.batch[:0], s.opts.MaxBatchBytes)
		if len(s.batch) == 0 {
			s.q.forget()
			putItems(s.batchPool, s.batch)
			s.batch, s.batchPool = nil, nil
			s.writer = writerIdle
			s.mu.Unlock()
			return
		}
		if s.writeTimer == nil {
			s.writeTimer = time.AfterFunc(time.Hour, s.writeTimedOut)
			s.writeTimer.Stop()
		}
		batch := s.batch
		s.mu.Unlock()
		select { // room in the queue again: wake a waiting replay
		case s.space <- struct{}{}:
		default:
		}
		ok := s.writeFrame(batch)
		clear(batch) // drop references to sent data
		if !ok {
			s.mu.Lock()
			s.writer = writerDone
			s.mu.Unlock()
			return
		}
	}
}

// framePool holds the buffers frames of several messages are joined in:
// only a writer with a backlog needs one, and only while it writes.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledFrame is the largest frame buffer put back in framePool.
const maxPooledFrame = 256 << 10

// writeFrame writes items as one frame: JSON messages joined by '\n',
// protobuf ones (each with its length prefix) one after the other.
func (s *Session) writeFrame(items []item) bool {
	frame := items[0].data
	var pooled *[]byte
	if len(items) > 1 {
		pooled = framePool.Get().(*[]byte)
		buf := (*pooled)[:0]
		sep := s.info.Mode == protocol.JSON
		for i, it := range items {
			if i > 0 && sep {
				buf = append(buf, '\n')
			}
			buf = append(buf, it.data...)
		}
		*pooled = buf
		frame = buf
	}
	ok := s.write(frame)
	if pooled != nil && cap(*pooled) <= maxPooledFrame {
		framePool.Put(pooled)
	}
	if !ok {
		return false
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
	return true
}

// write writes one frame within WriteTimeout. The timeout is one timer per
// session, re-armed for each write, rather than a context per write: the
// library would otherwise register a context callback on every frame. When
// it fires, the connection is closed under the blocked write.
func (s *Session) write(frame []byte) bool {
	s.writeSince.Store(time.Now().UnixNano())
	s.writeTimer.Reset(s.opts.WriteTimeout)
	var err error
	if c := s.info.Cork; c != nil {
		c.cork()
		err = s.conn.Write(context.Background(), s.info.Mode.MessageType(), frame)
		if uerr := c.uncork(err == nil); err == nil {
			err = uerr
		}
	} else {
		err = s.conn.Write(context.Background(), s.info.Mode.MessageType(), frame)
	}
	s.writeSince.Store(0)
	fired := !s.writeTimer.Stop() // the timer closes the connection (or already did)
	if err != nil || fired {
		if fired {
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

// closeGrace bounds how long a closing session waits for a frame whose
// write is blocked (the client is not reading) before it drops the
// connection: such a client would not read the close frame either, and a
// slow consumer or a drained node should not hold the connection for the
// rest of WriteTimeout.
const closeGrace = 2 * time.Second

// cutBlockedWriteLocked shortens the wait for the frame in flight, if any,
// to closeGrace. The write may finish meanwhile; the timer then drops the
// connection closeGrace later, which at worst cuts the close handshake
// short. Caller holds s.mu and has just set s.reason.
func (s *Session) cutBlockedWriteLocked() {
	since := s.writeSince.Load()
	if since == 0 || s.writeTimer == nil {
		return
	}
	if s.opts.WriteTimeout-time.Since(time.Unix(0, since)) > closeGrace {
		s.writeTimer.Reset(closeGrace)
	}
}

// writeTimedOut runs on the write timer: a frame did not leave within
// WriteTimeout. Closing the connection fails the blocked write.
func (s *Session) writeTimedOut() {
	s.Close(protocol.ReasonWriteTimeout)
	_ = s.conn.CloseNow()
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
