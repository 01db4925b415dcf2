package session

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// writes records each Write call it receives; it has no other method of a
// net.Conn (the embedded interface is nil).
type writes struct {
	net.Conn
	calls [][]byte
	err   error
}

func (w *writes) Write(p []byte) (int, error) {
	w.calls = append(w.calls, append([]byte(nil), p...))
	return len(p), w.err
}

// TestCork: corked, the pieces of a frame leave in one write call when
// uncorked; uncorked, writes go straight through; a failed frame's bytes
// are dropped; the underlying error is returned.
func TestCork(t *testing.T) {
	w := &writes{}
	c := NewCork(w)
	if _, err := c.Write([]byte("ping")); err != nil || len(w.calls) != 1 {
		t.Fatalf("uncorked write: %d calls, %v", len(w.calls), err)
	}
	c.cork()
	for _, piece := range []string{"\x81\x05", "he", "llo"} {
		if n, err := c.Write([]byte(piece)); err != nil || n != len(piece) {
			t.Fatalf("corked write %q: %d, %v", piece, n, err)
		}
	}
	if len(w.calls) != 1 {
		t.Fatalf("corked writes reached the connection: %q", w.calls)
	}
	if err := c.uncork(true); err != nil {
		t.Fatal(err)
	}
	if len(w.calls) != 2 || string(w.calls[1]) != "\x81\x05hello" {
		t.Fatalf("calls %q, want the frame in one call", w.calls)
	}
	c.cork()
	_, _ = c.Write([]byte("lost"))
	if err := c.uncork(false); err != nil || len(w.calls) != 2 {
		t.Fatalf("uncork(false): %d calls, %v; want the bytes dropped", len(w.calls), err)
	}
	w.err = errors.New("broken pipe")
	c.cork()
	_, _ = c.Write([]byte("x"))
	if err := c.uncork(true); err == nil {
		t.Fatal("uncork: the connection's error was lost")
	}
	if err := c.uncork(true); err != nil { // nothing gathered: no call
		t.Fatal(err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestCorkTry: a frame corked with tryCork leaves whole with tryUncork when
// the socket has room. When it has not, the rest stays corked, the Cork
// refuses another tryCork, a write made meanwhile gathers behind it, and
// uncork sends everything in order once the peer reads. A writer without
// raw access is never tried. A closed connection gives tryUncork an error.
func TestCorkTry(t *testing.T) {
	if NewCork(&writes{}).tryCork() {
		t.Fatal("tryCork on a writer without raw access")
	}
	peer, conn := tcpPair(t)
	c := NewCork(conn)
	w := newRawWriter()
	if !c.tryCork() {
		t.Fatal("tryCork refused on an idle connection")
	}
	_, _ = c.Write([]byte("\x81\x05"))
	_, _ = c.Write([]byte("hello"))
	if sent, err := c.tryUncork(w); !sent || err != nil {
		t.Fatalf("tryUncork with room: %v, %v", sent, err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "\x81\x05hello" {
		t.Fatalf("peer read %q, %v", got, err)
	}

	// Fill: far more than the socket buffers hold while the peer does not read.
	if err := conn.SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if !c.tryCork() {
		t.Fatal("tryCork refused after a frame left whole")
	}
	_, _ = c.Write(big)
	if sent, err := c.tryUncork(w); sent || err != nil {
		t.Fatalf("tryUncork of 1 MiB to a peer that does not read: sent %v, %v; want the rest corked", sent, err)
	}
	if c.tryCork() {
		t.Fatal("tryCork accepted while a frame's rest is corked")
	}
	_, _ = c.Write([]byte("pong")) // another goroutine's frame: gathers behind
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big)+4)))
		read <- b
	}()
	if err := c.uncork(true); err != nil {
		t.Fatal(err)
	}
	if b := <-read; !bytes.Equal(b, append(big, "pong"...)) {
		t.Fatalf("peer read %d bytes, want the 1 MiB frame then \"pong\" (%d)", len(b), len(big)+4)
	}

	// A write straight through (a pong while nothing is corked) blocked on
	// the full socket holds the Cork: tryCork refuses at once instead of
	// waiting for it.
	const stuck = 4 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, stuck))
		wrote <- err
	}()
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil { // the write has begun: it holds the Cork
		t.Fatal(err)
	}
	refused := make(chan bool, 1)
	go func() { refused <- !c.tryCork() }()
	select {
	case ok := <-refused:
		if !ok {
			t.Fatal("tryCork accepted while a write blocked on the socket held the Cork")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tryCork waited for a write blocked on the socket")
	}
	if _, err := io.CopyN(io.Discard, peer, stuck-1); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !c.tryCork() {
		t.Fatal("tryCork refused after the blocked write ended")
	}
	_ = c.uncork(false)

	conn.Close()
	if !c.tryCork() {
		t.Fatal("tryCork refused")
	}
	_, _ = c.Write([]byte("late"))
	if sent, err := c.tryUncork(w); sent || err == nil {
		t.Fatalf("tryUncork on a closed connection: %v, %v; want an error", sent, err)
	}
	if err := c.uncork(false); err != nil {
		t.Fatal(err)
	}
}

// TestCorkTryAllocsNothing: a frame corked, gathered and sent with
// tryUncork allocates nothing once the frame buffers are pooled.
func TestCorkTryAllocsNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector (sync.Pool drops items on purpose); make test runs this test again without -race")
	}
	peer, conn := tcpPair(t)
	go io.Copy(io.Discard, peer) // returns when the test closes the connection
	c := NewCork(conn)
	w := newRawWriter()
	frame := []byte("\x81\x05hello")
	allocs := testing.AllocsPerRun(1000, func() {
		if !c.tryCork() {
			t.Fatal("tryCork refused")
		}
		_, _ = c.Write(frame)
		if sent, err := c.tryUncork(w); !sent || err != nil {
			t.Fatalf("tryUncork: %v, %v", sent, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}

// TestCorkCloseSendsCorked: closing the connection while bytes are corked
// (a frame's rest and, behind it, the library's reply to a client's close,
// which the library writes just before closing) sends them first; a Close
// while a write blocked on a full socket holds the Cork does not wait for
// it, and the blocked write fails.
func TestCorkCloseSendsCorked(t *testing.T) {
	peer, conn := tcpPair(t)
	c := NewCork(conn)
	if !c.tryCork() {
		t.Fatal("tryCork refused")
	}
	_, _ = c.Write([]byte("frame"))
	_, _ = c.Write([]byte("close-reply"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(peer); err != nil || string(b) != "frameclose-reply" {
		t.Fatalf("peer read %q, %v; want the corked bytes, then the end", b, err)
	}

	peer, conn = tcpPair(t)
	c = NewCork(conn)
	if err := conn.SetWriteBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 4<<20)) // blocks: the peer does not read
		wrote <- err
	}()
	if _, err := io.ReadFull(peer, make([]byte, 1)); err != nil { // the write holds the Cork
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a write blocked on the socket")
	}
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the blocked write succeeded on a closed connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked write did not fail when the connection closed")
	}
}
