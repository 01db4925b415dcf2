package session

import (
	"context"
	"sync"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// The writer. Under a Flusher (flusher.go) the session's frames are written
// by the Flusher's own goroutine, in rounds, as long as the socket takes
// each frame whole without waiting (writeInline); a frame that does not fit
// in the socket's send buffer is finished by a writer goroutine of the
// session's own (writeLoop), which then writes until the queue is empty and
// exits. Without a Flusher, or once the session is closing, the writer
// goroutine is started at once. An idle connection holds no writer
// goroutine, no frame buffer and no batch. At most one writer is queued or
// runs at a time; once a writer has sent the close frame or a write failed,
// none starts again (writerDone).

// Writer states, guarded by Session.mu.
const (
	writerIdle    = iota // none queued or running; kickLocked queues one
	writerQueued         // waiting in the Flusher for its round
	writerRunning        // writing: on the Flusher's goroutine or its own; it looks at the queue again before it stops
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
		go s.writeLoop(nil, false, 0)
	case s.writer != writerIdle:
	case s.reason == nil && s.flusher != nil:
		s.writer = writerQueued
		s.writers.Add(1) // Run's teardown waits for a queued writer too
		if !s.flusher.add(s) {
			s.writer = writerRunning
			go s.writeLoop(nil, false, 0)
		}
	default:
		s.writer = writerRunning
		s.writers.Add(1)
		go s.writeLoop(nil, false, 0)
	}
}

// startQueued starts the writer goroutine of a session queued with the
// Flusher, which is closing.
func (s *Session) startQueued() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writer != writerQueued {
		return
	}
	s.writer = writerRunning
	go s.writeLoop(nil, false, 0)
}

// writeInline writes the session's next frame on the calling goroutine, the
// Flusher's (f), without waiting for the socket. When the socket does not
// take the whole frame, or cannot be written without waiting (a frame is
// blocked on it already), or the session is closing, the session's writer
// goroutine takes over. After a frame, a session with more queued goes back
// to f for the next round.
func (s *Session) writeInline(f *Flusher) {
	s.mu.Lock()
	if s.writer != writerQueued { // started otherwise: the session is closing
		s.mu.Unlock()
		return
	}
	s.writer = writerRunning
	if s.reason != nil {
		go s.writeLoop(nil, false, 0)
		s.mu.Unlock()
		return
	}
	batch := s.takeLocked()
	if len(batch) == 0 {
		s.idleLocked()
		s.mu.Unlock()
		s.writers.Done()
		return
	}
	space := s.space
	s.mu.Unlock()
	signalSpace(space)

	c := s.info.Cork
	if c == nil || !c.tryCork() {
		s.env.Metrics.FramesHandedOff.Inc()
		go s.writeLoop(batch, false, 0)
		return
	}
	size, sent, err := s.tryFrame(batch, f.raw)
	switch {
	case err != nil:
		_ = c.uncork(false)
		s.failed(false)
		clear(batch)
		s.mu.Lock()
		s.writer = writerDone
		s.mu.Unlock()
		s.writers.Done()
		return
	case !sent: // the rest is corked: the writer goroutine sends it
		s.env.Metrics.FramesHandedOff.Inc()
		go s.writeLoop(batch, true, size)
		return
	}
	s.wroteFrame(size)
	s.observe(batch)
	clear(batch) // drop references to sent data
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.reason != nil: // the writer goroutine sends the close frame
		go s.writeLoop(nil, false, 0)
	case s.q.msgs > 0:
		s.writer = writerQueued
		if !f.add(s) {
			s.writer = writerRunning
			go s.writeLoop(nil, false, 0)
		}
	default:
		s.idleLocked()
		s.writers.Done()
	}
}

// takeLocked takes the next frame's messages from the queue into s.batch:
// in priority order, as many as fit in MaxBatchBytes, so a high-priority
// event that arrives while a backlog is being written goes out in the next
// frame. Caller holds s.mu and is the running writer.
func (s *Session) takeLocked() []item {
	if s.q.msgs > 0 {
		s.env.Metrics.QueueDepth.Observe(float64(s.q.msgs))
		s.env.Metrics.QueueBytes.Observe(float64(s.q.bytes))
		if s.batchPool == nil {
			s.batchPool = getItems()
			s.batch = *s.batchPool
		}
	}
	s.batch = s.q.take(s.batch[:0], s.opts.MaxBatchBytes)
	return s.batch
}

// idleLocked ends the running writer's turn with the queue empty: the
// lanes' and the batch's arrays go back to their pool. Caller holds s.mu
// and calls s.writers.Done after unlocking.
func (s *Session) idleLocked() {
	s.q.forget()
	putItems(s.batchPool, s.batch)
	s.batch, s.batchPool = nil, nil
	s.writer = writerIdle
}

// signalSpace wakes a replay waiting for room in the queue (DeliverWait)
// on space, the session's channel read under s.mu; nil (no replay has
// waited yet) does nothing. A replay makes the channel under s.mu before
// it decides to wait, so a take after that decision finds it, and a take
// before is in the queue that decision saw.
func signalSpace(space chan struct{}) {
	select {
	case space <- struct{}{}:
	default:
	}
}

// writeLoop is the writer goroutine: it writes frames while messages are
// queued, first carried (a batch taken by writeInline, not written yet; or,
// with corked, written in part: the rest of its frame, size bytes in all,
// waits in the Cork), then from the queue. Once the session is closing it
// sends the close frame and ends the session's writing.
func (s *Session) writeLoop(carried []item, corked bool, size int) {
	defer s.writers.Done()
	if len(carried) > 0 {
		var ok bool
		if corked {
			ok = s.finishFrame(size)
			if ok {
				s.observe(carried)
			}
		} else {
			ok = s.writeFrame(carried)
		}
		clear(carried) // drop references to sent data
		if !ok {
			s.setWriterDone()
			return
		}
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
		batch := s.takeLocked()
		if len(batch) == 0 {
			s.idleLocked()
			s.mu.Unlock()
			return
		}
		space := s.space
		s.mu.Unlock()
		signalSpace(space)
		ok := s.writeFrame(batch)
		clear(batch) // drop references to sent data
		if !ok {
			s.setWriterDone()
			return
		}
	}
}

func (s *Session) setWriterDone() {
	s.mu.Lock()
	s.writer = writerDone
	s.mu.Unlock()
}

// framePool holds the buffers frames of several messages are joined in:
// only a writer with a backlog needs one, and only while it writes.
var framePool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledFrame is the largest frame buffer put back in framePool.
const maxPooledFrame = 256 << 10

// joinFrame returns items as one frame: JSON messages joined by '\n',
// protobuf ones (each with its length prefix) one after the other. A frame
// of several messages is built in a buffer from framePool; release it with
// releaseFrame once written. Coalesced events are encoded here (freshen),
// by the writer, outside the session's lock: the batch is the writer's.
func (s *Session) joinFrame(items []item) (frame []byte, pooled *[]byte) {
	s.freshen(items)
	if len(items) == 1 {
		return items[0].data, nil
	}
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
	return buf, pooled
}

func releaseFrame(pooled *[]byte) {
	if pooled != nil && cap(*pooled) <= maxPooledFrame {
		framePool.Put(pooled)
	}
}

// writeFrame writes items as one frame, waiting for the socket (within
// WriteTimeout).
func (s *Session) writeFrame(items []item) bool {
	frame, pooled := s.joinFrame(items)
	ok := s.write(frame)
	releaseFrame(pooled)
	if ok {
		s.observe(items)
	}
	return ok
}

// tryFrame writes items as one frame through the Cork, which the caller
// has corked (tryCork), without waiting for the socket (w makes the
// write). It returns the
// frame's size and whether all of it left; when not (and no error), the
// rest is corked and must be finished with finishFrame. On an error the
// Cork stays corked too: the caller drops it and fails the connection.
func (s *Session) tryFrame(items []item, w *rawWriter) (size int, sent bool, err error) {
	frame, pooled := s.joinFrame(items)
	size = len(frame)
	err = s.conn.Write(context.Background(), s.info.Mode.MessageType(), frame)
	releaseFrame(pooled) // the Cork holds a copy
	if err != nil {
		return size, false, err
	}
	sent, err = s.info.Cork.tryUncork(w)
	return size, sent, err
}

// observe records the delivery of items, a frame just written: the
// session's last activity and each event's latency.
func (s *Session) observe(items []item) {
	now := time.Now().UnixNano()
	s.act.last.Store(now)
	for _, it := range items {
		switch {
		case it.ts == 0: // not an event
		case it.replay:
			s.env.Metrics.ReplayLatency.Observe(time.Duration(now - it.ts).Seconds())
		default:
			s.env.Metrics.LiveLatency.Observe(time.Duration(now - it.ts).Seconds())
		}
	}
}

// write writes one frame within WriteTimeout. The timeout is one timer per
// session, re-armed for each write, rather than a context per write: the
// library would otherwise register a context callback on every frame. When
// it fires, the connection is closed under the blocked write.
func (s *Session) write(frame []byte) bool {
	s.armWrite()
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
	return s.disarmWrite(err, len(frame))
}

// finishFrame sends the rest of a frame that tryFrame left corked, and
// whatever was gathered behind it, within WriteTimeout; size is the
// frame's.
func (s *Session) finishFrame(size int) bool {
	s.armWrite()
	return s.disarmWrite(s.info.Cork.uncork(true), size)
}

// armWrite starts the write timeout for a frame about to be written: the
// WriteTimeout, or closeGrace if shorter and the session is closing
// already. Under s.mu, so a Close either comes first and is seen here, or
// comes after and finds writeSince set (cutBlockedWriteLocked): a frame
// handed to the writer goroutine just before the Close gets the grace too.
func (s *Session) armWrite() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeSince.Store(time.Now().UnixNano())
	d := s.opts.WriteTimeout
	if s.reason != nil && d > closeGrace {
		d = closeGrace
	}
	if s.writeTimer == nil { // the session's first write outside the Flusher
		s.writeTimer = time.AfterFunc(d, s.writeTimedOut)
		return
	}
	s.writeTimer.Reset(d)
}

// disarmWrite stops the write timeout after a frame of size bytes was
// written (err == nil) or failed. It reports whether the frame left; when
// not, the session is closing and its connection is dropped.
func (s *Session) disarmWrite(err error, size int) bool {
	s.writeSince.Store(0)
	fired := !s.writeTimer.Stop() // the timer closes the connection (or already did)
	if err != nil || fired {
		s.failed(fired)
		return false
	}
	s.wroteFrame(size)
	return true
}

// failed closes the session after a failed write (timedOut: the write
// timeout fired) and drops its connection.
func (s *Session) failed(timedOut bool) {
	if timedOut {
		s.Close(protocol.ReasonWriteTimeout)
	} else {
		s.Close(protocol.ReasonPeerClosed)
	}
	_ = s.conn.CloseNow()
}

// wroteFrame counts a frame of size bytes written.
func (s *Session) wroteFrame(size int) {
	s.env.Metrics.FramesOut.Inc()
	s.env.Metrics.BytesOut.Add(float64(size))
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

// ping runs on the goroutine of the clock's tick (clock.go): it sends a WebSocket ping and waits
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
