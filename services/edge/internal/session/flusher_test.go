package session

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// pair is a session on the server end of a real loopback WebSocket
// connection (its reader not running: the test drives the writer through
// Deliver and Close) and the client end.
type pair struct {
	s      *Session
	client *websocket.Conn
}

// newPairs returns n pairs whose sessions share env.
func newPairs(t *testing.T, env *Env, n int) []pair {
	t.Helper()
	conns := make(chan *websocket.Conn, n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
	}))
	t.Cleanup(srv.Close)
	out := make([]pair, n)
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		s := New(env, <-conns, Info{ID: fmt.Sprint("s", i)})
		s.claims.Store(&auth.Claims{Subject: fmt.Sprint("u", i)})
		out[i] = pair{s: s, client: c}
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

func flusherEnv(f *Flusher) *Env {
	return &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.Nop(), Flusher: f}
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
// Flusher runs reach every client, in order, and every writer ends (the
// sessions go back to idle, holding no goroutine). It checks delivery
// through the Flusher, not the batching itself (the load set measures
// that: frames per delivery in docs/benchmarks.md).
func TestFlusherDeliversInRounds(t *testing.T) {
	f := NewFlusher()
	go f.Run()
	defer closeFlusher(t, f)
	pairs := newPairs(t, flusherEnv(f), 20)
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
		p.s.writers.Wait() // returns only once the writer has exited
		p.s.mu.Lock()
		st := p.s.writer
		p.s.mu.Unlock()
		if st != writerIdle {
			t.Fatalf("writer state %d after the queue drained, want idle", st)
		}
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
	pairs[1].s.env = flusherEnv(g)
	pairs[1].s.Deliver(normalOutbound(1))
	go g.Run()
	closeFlusher(t, g)
	readEvents(t, pairs[1].client, 1)
}
