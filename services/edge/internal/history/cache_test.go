package history

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// fill extends subject's chain from its end with n events of size bytes,
// at sequences 1, 2, … after the chain's end.
func fill(c *cache, subject string, n, size int) {
	for range n {
		_, ch := c.next(subject, lastSeq(c, subject))
		if ch == nil {
			panic("no chain to extend at its end")
		}
		p := lastSeq(c, subject)
		c.extend(subject, ch, p, &jetstream.RawStreamMsg{Subject: subject, Sequence: p + 1, Data: make([]byte, size)})
	}
}

func lastSeq(c *cache, subject string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.chains[subject]; ch != nil {
		return ch.endLocked()
	}
	return 0
}

// TestCacheBounds: a chain keeps at most cacheChainMsgs events and
// cacheChainBytes bytes, dropping its oldest (its start moves past them);
// the cache keeps at most cacheBytes bytes and cacheChains chains,
// dropping whole chains; the byte count stays exact.
func TestCacheBounds(t *testing.T) {
	c := newCache()
	fill(c, "a", cacheChainMsgs+10, 10)
	ch := c.chains["a"]
	if len(ch.msgs) != cacheChainMsgs || ch.after != 10 || ch.msgs[0].Sequence != 11 {
		t.Fatalf("chain of %d events after %d starting at %d; want %d after 10 from 11", len(ch.msgs), ch.after, ch.msgs[0].Sequence, cacheChainMsgs)
	}
	// The events dropped are no longer served: a read from before the
	// chain's start is not answered from it.
	if m, chn := c.next("a", 5); m != nil || chn != nil {
		t.Fatalf("next(5) = %v, %v; want nothing (before the chain)", m, chn)
	}

	big := 100 << 10
	fill(c, "b", 100, big)
	if b := c.chains["b"].bytes; b > cacheChainBytes {
		t.Fatalf("chain b holds %d bytes, over %d", b, cacheChainBytes)
	}
	for i := range 40 {
		fill(c, fmt.Sprint("c", i), 40, big)
	}
	total := 0
	for _, ch := range c.chains {
		n := 0
		for _, m := range ch.msgs {
			n += msgBytes(m)
		}
		if n != ch.bytes {
			t.Fatalf("a chain counts %d bytes, holds %d", ch.bytes, n)
		}
		total += n
	}
	if total != c.bytes || c.bytes > cacheBytes {
		t.Fatalf("cache counts %d bytes, holds %d; bound %d", c.bytes, total, cacheBytes)
	}

	for i := range cacheChains + 10 {
		c.next(fmt.Sprint("r", i), 0)
	}
	if len(c.chains) > cacheChains {
		t.Fatalf("%d chains, bound %d", len(c.chains), cacheChains)
	}
}

// TestCacheJoin: reads from an older position join the chain when they
// reach its start position or its first event, and not otherwise.
func TestCacheJoin(t *testing.T) {
	msg := func(seq uint64) *jetstream.RawStreamMsg { return &jetstream.RawStreamMsg{Subject: "s", Sequence: seq} }
	c := newCache()
	_, ch := c.next("s", 10) // a chain after 10
	c.extend("s", ch, 10, msg(12))
	c.extend("s", ch, 12, msg(15))
	if c.join("s", 2, []*jetstream.RawStreamMsg{msg(4), msg(7)}) {
		t.Fatal("joined reads that end before the chain")
	}
	if !c.join("s", 2, []*jetstream.RawStreamMsg{msg(4), msg(7), msg(10)}) {
		t.Fatal("reads ending at the chain's start did not join")
	}
	if ch.after != 2 || len(ch.msgs) != 5 || ch.msgs[2].Sequence != 10 || ch.msgs[3].Sequence != 12 {
		t.Fatalf("chain after %d, %d events", ch.after, len(ch.msgs))
	}
	if !c.join("s", 1, []*jetstream.RawStreamMsg{msg(4)}) || ch.after != 1 || len(ch.msgs) != 5 {
		t.Fatalf("reads reaching the chain's first event: chain after %d, %d events", ch.after, len(ch.msgs))
	}
	if c.join("s", 0, []*jetstream.RawStreamMsg{msg(3)}) {
		t.Fatal("joined reads that do not meet the chain (3 is not its first event, 4)")
	}
}
