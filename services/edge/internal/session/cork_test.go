package session

import (
	"errors"
	"testing"
)

// writes records each Write call it receives.
type writes struct {
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
