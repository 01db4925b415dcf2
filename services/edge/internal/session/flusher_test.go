package session

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// pair is a session on the server end of a real loopback WebSocket
// connection (its reader not running: the test drives the writer through
// Deliver and Close) and the client end. The session writes through a Cork
// over the TCP connection, as the edge's server sets it up.
type pair struct {
	s      *Session
	client *websocket.Conn
	tcp    *net.TCPConn // the server end
}

// corkedWriter hands the hijacked connection to the WebSocket library
// through a Cork, as the edge's server does (server.statusWriter).
type corkedWriter struct {
	http.ResponseWriter
	cork *Cork
	tcp  *net.TCPConn
}

func (w *corkedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	w.tcp = conn.(*net.TCPConn)
	w.cork = NewCork(conn)
	return w.cork, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.cork, 32)), nil
}

// smallReadBufferClient dials with a 64 KiB receive buffer, whatever the
// host's default, so a test knows how much a client that does not read
// lets the server write before the socket is full.
var smallReadBufferClient = &http.Client{Transport: &http.Transport{
	DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	},
}}

// newPairs returns n pairs whose sessions share env.
func newPairs(t *testing.T, env *Env, n int) []pair {
	t.Helper()
	type accepted struct {
		c *websocket.Conn
		w *corkedWriter
	}
	conns := make(chan accepted, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkedWriter{ResponseWriter: w}
		c, err := websocket.Accept(cw, r, nil)
		if err != nil {
			return
		}
		conns <- accepted{c, cw}
	}))
	t.Cleanup(srv.Close)
	out := make([]pair, n)
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: smallReadBufferClient})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		a := <-conns
		s := New(env, a.c, Info{ID: fmt.Sprint("s", i), Cork: a.w.cork})
		s.setClaims(&auth.Claims{Subject: fmt.Sprint("u", i)})
		out[i] = pair{s: s, client: c, tcp: a.w.tcp}
		t.Cleanup(func() { c.CloseNow(); s.conn.CloseNow() })
	}
	return out
}

// closeFlusher closes f, failing the test if that takes over 5 s (a round
// waiting for a writer that never starts).
func closeFlusher(t *testing.T, f *Flusher) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("Flusher.Close did not return: a round is stuck")
	}
}

// runningFlusherEnv returns an Env with one Flusher, running until the
// test's cleanup closes it.
func runningFlusherEnv(t *testing.T) *Env {
	f := NewFlusher()
	go f.Run()
	t.Cleanup(func() { closeFlusher(t, f) })
	return flusherEnv(f)
}

// wantIdle waits for s's writer to stop and fails unless s is idle: its
// queue drained, no writer queued or running.
func wantIdle(t *testing.T, s *Session) {
	t.Helper()
	waitWriters(t, s)
	s.mu.Lock()
	st := s.writer
	s.mu.Unlock()
	if st != writerIdle {
		t.Fatalf("writer state %d after the queue drained, want idle", st)
	}
}

func flusherEnv(f *Flusher) *Env {
	return &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop(), Flushers: []*Flusher{f}}
}

// readEvents reads frames from c until it has n event messages, and
// returns their seqs in order.
func readEvents(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var seqs []string
	for len(seqs) < n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", seqs, err)
		}
		seqs = append(seqs, strings.Split(string(b), "\n")...)
	}
	return seqs
}

// TestFlusherDeliversInRounds: events queued for many sessions while the
// Flusher runs reach every client, in order, every frame written by the
// Flusher itself (the sockets have room: none is handed to a writer
// goroutine), and every session goes back to idle, holding no goroutine.
// It checks delivery through the Flusher, not the batching itself (the load
// set measures that: frames per delivery in docs/benchmarks.md).
func TestFlusherDeliversInRounds(t *testing.T) {
	env := runningFlusherEnv(t)
	pairs := newPairs(t, env, 20)
	const events = 30
	for seq := 1; seq <= events; seq++ {
		o := normalOutbound(uint64(seq))
		o.Data = []byte(fmt.Sprint(seq))
		for _, p := range pairs {
			p.s.Deliver(o)
		}
	}
	want := make([]string, events)
	for i := range want {
		want[i] = fmt.Sprint(i + 1)
	}
	for i, p := range pairs {
		if got := readEvents(t, p.client, events); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("client %d got %v, want %v", i, got, want)
		}
	}
	for _, p := range pairs {
		wantIdle(t, p.s)
	}
	frames := testutil.ToFloat64(env.Metrics.FramesOut)
	if handedOff := testutil.ToFloat64(env.Metrics.FramesHandedOff); frames < 20 || handedOff != 0 {
		t.Fatalf("%v frames, %v handed off to a writer goroutine; want >= 20 frames, all written by the Flusher", frames, handedOff)
	}
}

// TestFlusherClosingWhileQueued: a session that starts closing while its
// writer waits for a round sends its close frame at once, and the Flusher's
// next rounds still complete (the round does not wait for that writer).
func TestFlusherClosingWhileQueued(t *testing.T) {
	f := NewFlusher() // not running yet: writers stay queued
	pairs := newPairs(t, flusherEnv(f), 3)
	for _, p := range pairs {
		p.s.Deliver(normalOutbound(1))
	}
	pairs[0].s.Close(protocol.ReasonSlowConsumer)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := pairs[0].client.Read(ctx)
	if websocket.CloseStatus(err) != protocol.ReasonSlowConsumer.Code {
		t.Fatalf("closing session: %v, want close %d before any round", err, protocol.ReasonSlowConsumer.Code)
	}
	go f.Run() // the round holds the two others and the closed one
	defer closeFlusher(t, f)
	for _, p := range pairs[1:] {
		readEvents(t, p.client, 1)
	}
	// A later round runs too.
	pairs[1].s.Deliver(normalOutbound(2))
	readEvents(t, pairs[1].client, 1)
}

// TestFlusherCloseStartsQueued: writers queued when the Flusher closes
// still start (in its last round or by Close), and after Close writers
// start directly.
func TestFlusherCloseStartsQueued(t *testing.T) {
	f := NewFlusher()
	done := make(chan struct{})
	go func() { defer close(done); f.Run() }()
	pairs := newPairs(t, flusherEnv(f), 2)
	closeFlusher(t, f)
	<-done
	pairs[0].s.Deliver(normalOutbound(1)) // after Close: starts directly
	readEvents(t, pairs[0].client, 1)

	g := NewFlusher() // never run: only Close starts what is queued
	pairs[1].s.flusher = g
	pairs[1].s.Deliver(normalOutbound(1))
	go g.Run()
	closeFlusher(t, g)
	readEvents(t, pairs[1].client, 1)
}

// bigOutbound is event seq with a payload of n bytes that tells its seq
// apart: "<seq>:" and then the seq's last digit repeated.
func bigOutbound(seq uint64, n int) *hub.Outbound {
	o := normalOutbound(seq)
	head := fmt.Sprintf("%d:", seq)
	o.Data = append([]byte(head), bytes.Repeat([]byte{'0' + byte(seq%10)}, n-len(head))...)
	return o
}

// TestFlusherHandsOffFullSocket: a client that does not read fills its
// socket; the Flusher hands the frame that does not fit to the session's
// writer goroutine, which finishes it once the client reads — with a ping
// written meanwhile by another goroutine — and every event arrives whole
// and in order. Afterwards the session is idle again and its next frame is
// written by the Flusher.
func TestFlusherHandsOffFullSocket(t *testing.T) {
	env := runningFlusherEnv(t)
	env.Options.QueueBytes = 16 << 20
	p := newPairs(t, env, 1)[0]
	if err := p.tcp.SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	const events, size = 100, 16 << 10 // 1.6 MB: far more than the two socket buffers hold
	for seq := uint64(1); seq <= events; seq++ {
		p.s.Deliver(bigOutbound(seq, size))
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.s.writeSince.Load() == 0 { // a frame's write waits on the full socket
		if time.Now().After(deadline) {
			t.Fatal("no write blocked on the full socket")
		}
		time.Sleep(time.Millisecond)
	}
	handedOff := testutil.ToFloat64(env.Metrics.FramesHandedOff)
	if handedOff < 1 {
		t.Fatalf("%v frames handed off to a writer goroutine while one is blocked, want at least 1", handedOff)
	}
	go p.s.conn.Read(context.Background()) // reads the pong; returns when the test closes the connection
	pinged := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pinged <- p.s.conn.Ping(ctx) // its frame queues behind the blocked one
	}()

	got := readEvents(t, p.client, events) // the client's reader answers the ping too
	for i, m := range got {
		if want := string(bigOutbound(uint64(i+1), size).Data); m != want {
			t.Fatalf("event %d: %d bytes starting %.12q, want %d bytes starting %.12q", i+1, len(m), m, len(want), want)
		}
	}
	if err := <-pinged; err != nil {
		t.Fatalf("ping sent while a frame was blocked: %v", err)
	}
	wantIdle(t, p.s)
	frames := testutil.ToFloat64(env.Metrics.FramesOut)
	p.s.Deliver(bigOutbound(events+1, 100))
	readEvents(t, p.client, 1)
	waitWriters(t, p.s)
	if n, fr := testutil.ToFloat64(env.Metrics.FramesHandedOff), testutil.ToFloat64(env.Metrics.FramesOut); n != handedOff || fr != frames+1 {
		t.Fatalf("after draining: %v handed off (was %v), %v frames (was %v); want the next frame written by the Flusher", n, handedOff, fr, frames)
	}
}

// TestCloseGraceForHandedOffFrame: a frame handed to the writer goroutine
// after the session began closing — a Close came before the goroutine
// armed its write timer — waits for a client that does not read only
// closeGrace, not the whole WriteTimeout (an hour here): the connection is
// dropped and the writer ends. Both hand-offs of writeInline: the Cork was
// busy (the frame unwritten), and the socket was full (the frame's rest
// corked).
func TestCloseGraceForHandedOffFrame(t *testing.T) {
	for _, corked := range []bool{false, true} {
		t.Run(fmt.Sprint("corked=", corked), func(t *testing.T) {
			f := NewFlusher() // not running: the test hands the frame over itself
			env := flusherEnv(f)
			env.Options.WriteTimeout = time.Hour
			p := newPairs(t, env, 1)[0]
			if err := p.tcp.SetWriteBuffer(4 << 10); err != nil {
				t.Fatal(err)
			}
			batch := []item{{data: bigOutbound(1, 4<<20).Data}} // far more than the two socket buffers hold
			size := 0
			if corked {
				if !p.s.info.Cork.tryCork() {
					t.Fatal("the Cork is busy")
				}
				var sent bool
				var err error
				if size, sent, err = p.s.tryFrame(batch, f.raw); err != nil || sent {
					t.Fatalf("tryFrame: sent %v, %v; want the rest corked", sent, err)
				}
			}
			// As writeInline hands a batch over: the writer running,
			// counted; then the Close, which finds the writer running and
			// no write in flight.
			p.s.mu.Lock()
			p.s.writer = writerRunning
			p.s.writers.Add(1)
			p.s.mu.Unlock()
			p.s.Close(protocol.ReasonSlowConsumer)
			go p.s.writeLoop(batch, corked, size)

			done := make(chan struct{})
			go func() { defer close(done); p.s.writers.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * closeGrace):
				t.Fatalf("the writer still waits on a client that does not read %v after the close; want the connection dropped after %v", 10*closeGrace, closeGrace)
			}
			p.s.mu.Lock()
			st := p.s.writer
			p.s.mu.Unlock()
			if st != writerDone {
				t.Fatalf("writer state %d after the blocked frame was cut, want done", st)
			}
		})
	}
}

// TestFlusherPeerGone: when the client's connection is gone, the frame
// written for it by the Flusher fails, and the session closes with
// ReasonPeerClosed and writes no more.
func TestFlusherPeerGone(t *testing.T) {
	p := newPairs(t, runningFlusherEnv(t), 1)[0]
	p.client.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for seq := uint64(1); ; seq++ {
		p.s.Deliver(normalOutbound(seq)) // the first writes may still reach the kernel
		waitWriters(t, p.s)
		p.s.mu.Lock()
		st, reason := p.s.writer, p.s.reason
		p.s.mu.Unlock()
		if st == writerDone {
			if reason != protocol.ReasonPeerClosed {
				t.Fatalf("closed with %v, want %v", reason, protocol.ReasonPeerClosed)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d events the session still writes (state %d) to a closed connection", seq, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitWriters waits until s has no writer queued or running, failing the
// test after 5 s.
func waitWriters(t *testing.T, s *Session) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); s.writers.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the session's writer did not stop")
	}
}

// TestSessionsSpreadOverFlushers: New gives a node's sessions to its
// flushers in turn, so each writes its share.
func TestSessionsSpreadOverFlushers(t *testing.T) {
	fs := []*Flusher{NewFlusher(), NewFlusher(), NewFlusher()}
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop(), Flushers: fs}
	count := map[*Flusher]int{}
	for i := range 3 * len(fs) {
		s := New(env, nil, Info{ID: fmt.Sprint("s", i)})
		count[s.flusher]++
	}
	for i, f := range fs {
		if count[f] != 3 {
			t.Fatalf("flusher %d has %d sessions, want 3 of 9: %v", i, count[f], count)
		}
	}
	if s := New(&Env{Metrics: env.Metrics, Log: zerolog.Nop()}, nil, Info{}); s.flusher != nil {
		t.Fatal("a session without flushers has one")
	}
}
