package session

import (
	"testing"
	"unsafe"
)

// TestSessionSizeClass: every connection holds one Session, allocated from
// the runtime's 480-byte size class; a field more would move every
// connection to the 512-byte one. A change that needs the room raises this
// bound on purpose, with its L4 figure in docs/benchmarks.md.
func TestSessionSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(Session{}); size > 480 {
		t.Fatalf("Session is %d bytes; the 480-byte size class holds it only up to 480", size)
	}
}

// TestItemSize: every queued message is an item, copied as the queue
// moves it (lanes, frames, held events); a field more would make every
// queue larger. A change that needs the room raises this bound on
// purpose, with its benchmark figures (BenchmarkDeliverBacklog1000).
func TestItemSize(t *testing.T) {
	if size := unsafe.Sizeof(item{}); size > 112 {
		t.Fatalf("item is %d bytes; want at most 112", size)
	}
}
