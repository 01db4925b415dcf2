package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/broker"
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
	if c.join("s", 0, 2, []*jetstream.RawStreamMsg{msg(4), msg(7)}) {
		t.Fatal("joined reads that end before the chain")
	}
	if !c.join("s", 0, 2, []*jetstream.RawStreamMsg{msg(4), msg(7), msg(10)}) {
		t.Fatal("reads ending at the chain's start did not join")
	}
	if ch.after != 2 || len(ch.msgs) != 5 || ch.msgs[2].Sequence != 10 || ch.msgs[3].Sequence != 12 {
		t.Fatalf("chain after %d, %d events", ch.after, len(ch.msgs))
	}
	if !c.join("s", 0, 1, []*jetstream.RawStreamMsg{msg(4)}) || ch.after != 1 || len(ch.msgs) != 5 {
		t.Fatalf("reads reaching the chain's first event: chain after %d, %d events", ch.after, len(ch.msgs))
	}
	if c.join("s", 0, 0, []*jetstream.RawStreamMsg{msg(3)}) {
		t.Fatal("joined reads that do not meet the chain (3 is not its first event, 4)")
	}
}

// streamWith starts an embedded NATS with the EVENTS stream and publishes
// n events to room a, each followed by one to room b (so that positions
// between a's events exist); it returns a Store and a's sequences.
func streamWith(t *testing.T, n int) (*Store, string, []uint64) {
	t.Helper()
	ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := events.EnsureStreams(ctx, js, events.StreamConfig{MaxMsgsPerSubject: 10000}); err != nil {
		t.Fatal(err)
	}
	a, b := room.Project("a"), room.Project("b")
	var seqs []uint64
	for i := range n {
		ack, err := events.Publish(ctx, js, events.TaskDeleted(a, "u1", fmt.Sprint("t", i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
		if _, err := events.Publish(ctx, js, events.TaskDeleted(b, "u1", fmt.Sprint("t", i))); err != nil {
			t.Fatal(err)
		}
	}
	return New(js, Options{}), a.Subject(), seqs
}

// want is the truth: a's sequences in (after, upTo].
func want(seqs []uint64, after, upTo uint64) []uint64 {
	var out []uint64
	for _, q := range seqs {
		if q > after && q <= upTo {
			out = append(out, q)
		}
	}
	return out
}

func collect(ctx context.Context, s *Store, subject string, after, upTo uint64, fn func(uint64)) ([]uint64, error) {
	var got []uint64
	err := s.Range(ctx, subject, after, upTo, func(m *jetstream.RawStreamMsg) error {
		got = append(got, m.Sequence)
		if fn != nil {
			fn(m.Sequence)
		}
		return nil
	})
	return got, err
}

// TestRangeReaderAcrossAnEviction: a Range reading from before the chain
// has its chain evicted mid-read, starts a new one, and meets a third
// started by another resume; what it read before the eviction must not be
// joined to the chain with the events it read meanwhile missing (a hole
// every later resume of the room would inherit).
func TestRangeReaderAcrossAnEviction(t *testing.T) {
	s, subj, a := streamWith(t, 6)
	ctx := context.Background()
	if _, err := collect(ctx, s, subj, a[3], a[5], nil); err != nil { // chain after a[3]
		t.Fatal(err)
	}
	got, err := collect(ctx, s, subj, 0, a[5], func(q uint64) {
		switch q {
		case a[0]: // read before the chain: evict it
			s.cache.mu.Lock()
			s.cache.dropLocked(subj)
			s.cache.mu.Unlock()
		case a[2]: // a new chain after a[0] holds a[1], a[2]: another resume from a[3] replaces it
			if got, err := collect(ctx, s, subj, a[3], a[5], nil); err != nil || !slices.Equal(got, a[4:]) {
				t.Errorf("the other resume: %v, %v", got, err)
			}
		}
	})
	if err != nil || !slices.Equal(got, a) {
		t.Fatalf("the reader: %v, %v; want %v", got, err, a)
	}
	for _, after := range []uint64{0, a[0], a[1], a[2], a[3]} {
		if got, err := collect(ctx, s, subj, after, a[5], nil); err != nil || !slices.Equal(got, want(a, after, a[5])) {
			t.Fatalf("later Range(%d, %d] = %v, %v; want %v", after, a[5], got, err, want(a, after, a[5]))
		}
	}
}

// TestRangeConcurrentRandom: many Ranges from random positions (events of
// the room and positions between them) at once, while chains are evicted
// and the cache emptied as for a recreated stream, each return exactly the
// room's events in their range, in order.
func TestRangeConcurrentRandom(t *testing.T) {
	s, subj, a := streamWith(t, 40)
	last := a[len(a)-1]
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // evictions and emptyings
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(rng.IntN(3000)) * time.Microsecond):
			}
			if rng.IntN(4) == 0 {
				s.cache.streamCreated(time.Now())
			} else {
				s.cache.mu.Lock()
				s.cache.dropLocked(subj)
				s.cache.mu.Unlock()
			}
		}
	}()
	errs := make(chan error, 16)
	var readers sync.WaitGroup
	for g := range 16 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 40 {
				after := uint64(rng.IntN(int(last) + 1))
				upTo := after + uint64(rng.IntN(int(last)+2))
				got, err := collect(context.Background(), s, subj, after, upTo, nil)
				if err == nil && !slices.Equal(got, want(a, after, upTo)) {
					err = fmt.Errorf("Range(%d, %d] = %v, want %v", after, upTo, got, want(a, after, upTo))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	readers.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkExtendFullChain: one event appended to a room's chain that is
// at its cacheChainMsgs bound, so its oldest event is dropped (what a
// resume reading past the chain's end does for every event it reads).
func BenchmarkExtendFullChain(b *testing.B) {
	c := newCache()
	fill(c, "s", cacheChainMsgs, 200)
	msgs := make([]*jetstream.RawStreamMsg, b.N)
	p := lastSeq(c, "s")
	for i := range msgs {
		msgs[i] = &jetstream.RawStreamMsg{Subject: "s", Sequence: p + uint64(i) + 1, Data: make([]byte, 200)}
	}
	_, ch := c.next("s", p)
	b.ReportAllocs()
	b.ResetTimer()
	for i, m := range msgs {
		c.extend("s", ch, p+uint64(i), m)
	}
	b.StopTimer()
	if got := lastSeq(c, "s"); got != p+uint64(b.N) {
		b.Fatalf("chain ends at %d; want %d", got, p+uint64(b.N))
	}
}
