package history

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cache limits (see cache).
const (
	// cacheChainMsgs and cacheChainBytes bound one room's chain; its oldest
	// events are dropped beyond them.
	cacheChainMsgs  = 1024
	cacheChainBytes = 4 << 20
	// cacheBytes and cacheChains bound all chains together; whole chains
	// are dropped beyond them.
	cacheBytes  = 64 << 20
	cacheChains = 4096
	// cacheRunMsgs and cacheRunBytes bound what one Range keeps of its
	// reads from before the chain, to join them to it: clients resuming
	// together are mostly a few events apart.
	cacheRunMsgs  = 64
	cacheRunBytes = 64 << 10
)

// cache keeps, per subject, a chain of the stored events a Range read last:
// consecutive events of the subject, so that the resumes of one room's
// clients (a drained node's thousands of clients come back at about the
// same position) read each event from the stream once, not once per
// client.
//
// A chain starts after a position (after) and holds the subject's events
// in order with nothing of the subject between two of them, nor between
// after and the first. Range reads extend it at its end (one read at a
// time per chain: the others wait and take the event read) or, when a read
// from an older position reaches the chain, at its start; a read from a
// position past its end starts it over. The events are shared read-only.
//
// A chain may keep an event the stream has since removed (by age or the
// per-subject limit): resumes serve it, as they would have had they come a
// moment earlier; whether a position's events are all still there is
// Check's question, answered from the stream. A recreated stream (a new
// creation time, seen by Check) empties the cache.
type cache struct {
	mu      sync.Mutex
	chains  map[string]*chain // guarded by mu
	bytes   int               // guarded by mu: the events' bytes over all chains
	created time.Time         // guarded by mu: the stream's creation the chains belong to
	gen     uint64            // guarded by mu: counts the times the cache was emptied
}

type chain struct {
	// fetch holds a token while the event after the chain's end is read
	// from the stream (a lock its waiters can give up on).
	fetch chan struct{}

	// guarded by cache.mu
	after uint64
	msgs  []*jetstream.RawStreamMsg
	bytes int
}

func newCache() *cache { return &cache{chains: make(map[string]*chain)} }

// msgBytes is about what m holds in memory.
func msgBytes(m *jetstream.RawStreamMsg) int {
	n := len(m.Data) + len(m.Subject) + 64
	for k, vs := range m.Header {
		n += len(k)
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	return n
}

// streamCreated empties the cache when the stream's creation time differs
// from the one its chains belong to.
func (c *cache) streamCreated(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.Equal(c.created) {
		c.created = t
		c.chains = make(map[string]*chain)
		c.bytes = 0
		c.gen++
	}
}

// generation returns the number of times the cache was emptied: reads
// begun in an earlier generation belong to another stream.
func (c *cache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// peek returns ch's first event after p, if it holds it, and whether ch
// is still subject's chain; it changes nothing.
func (c *cache) peek(subject string, ch *chain, p uint64) (*jetstream.RawStreamMsg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chains[subject] != ch {
		return nil, false
	}
	if p < ch.after {
		return nil, true
	}
	if i := ch.firstAfterLocked(p); i < len(ch.msgs) {
		return ch.msgs[i], true
	}
	return nil, true
}

// firstAfterLocked returns the index of ch's first event after p
// (len(ch.msgs) when none): the chain is in order.
func (ch *chain) firstAfterLocked(p uint64) int {
	lo, hi := 0, len(ch.msgs)
	for lo < hi {
		mid := (lo + hi) / 2
		if ch.msgs[mid].Sequence <= p {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// next returns the subject's first event after p when its chain knows it,
// else the chain to extend when p is the chain's end (created empty when
// the subject has none), or nil.
func (c *cache) next(subject string, p uint64) (*jetstream.RawStreamMsg, *chain) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.chains[subject]
	if ch == nil {
		return nil, c.addLocked(subject, p)
	}
	if p < ch.after {
		return nil, nil
	}
	if i := ch.firstAfterLocked(p); i < len(ch.msgs) {
		return ch.msgs[i], nil
	}
	if end := ch.endLocked(); end == p {
		return nil, ch
	}
	// p is past the chain's end: a newer position than the reads so far.
	// Clients resuming after a drain are mostly at the newest positions;
	// the chain starts over from p, and older readers join it when their
	// reads reach it.
	c.dropLocked(subject)
	return nil, c.addLocked(subject, p)
}

// addLocked starts an empty chain for subject after p, dropping another
// chain when the cache holds cacheChains.
func (c *cache) addLocked(subject string, p uint64) *chain {
	if len(c.chains) >= cacheChains {
		for s := range c.chains {
			c.dropLocked(s)
			break
		}
	}
	ch := &chain{after: p, fetch: make(chan struct{}, 1)}
	c.chains[subject] = ch
	return ch
}

func (c *cache) dropLocked(subject string) {
	if ch := c.chains[subject]; ch != nil {
		c.bytes -= ch.bytes
		delete(c.chains, subject)
	}
}

func (ch *chain) endLocked() uint64 {
	if len(ch.msgs) == 0 {
		return ch.after
	}
	return ch.msgs[len(ch.msgs)-1].Sequence
}

// extend appends m, the subject's first event after p, to ch when p is
// still its end and ch still the subject's chain.
func (c *cache) extend(subject string, ch *chain, p uint64, m *jetstream.RawStreamMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chains[subject] != ch || ch.endLocked() != p || m.Sequence <= p {
		return
	}
	ch.msgs = append(ch.msgs, m)
	n := msgBytes(m)
	ch.bytes += n
	c.bytes += n
	c.trimLocked(subject, ch)
}

// join puts msgs, the subject's consecutive events read from position
// from on while the cache was at generation gen, in front of the subject's
// chain when they meet it: the last of them is at the chain's start
// position, or is its first event (and is not added twice). It reports
// whether they were joined.
func (c *cache) join(subject string, gen, from uint64, msgs []*jetstream.RawStreamMsg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.chains[subject]
	if ch == nil || gen != c.gen || len(msgs) == 0 || from >= ch.after {
		return false
	}
	prefix := msgs
	switch last := msgs[len(msgs)-1].Sequence; {
	case last == ch.after:
	case len(ch.msgs) > 0 && last == ch.msgs[0].Sequence:
		prefix = msgs[:len(msgs)-1]
	default:
		return false
	}
	n := 0
	for _, m := range prefix {
		n += msgBytes(m)
	}
	ch.msgs = append(append(make([]*jetstream.RawStreamMsg, 0, len(prefix)+len(ch.msgs)), prefix...), ch.msgs...)
	ch.after = from
	ch.bytes += n
	c.bytes += n
	c.trimLocked(subject, ch)
	return true
}

// trimLocked drops ch's oldest events beyond its bounds, then whole other
// chains while the cache is over its own.
func (c *cache) trimLocked(subject string, ch *chain) {
	drop := 0
	for drop < len(ch.msgs)-1 && (len(ch.msgs)-drop > cacheChainMsgs || ch.bytes > cacheChainBytes) {
		n := msgBytes(ch.msgs[drop])
		ch.bytes -= n
		c.bytes -= n
		drop++
	}
	if drop > 0 {
		ch.after = ch.msgs[drop-1].Sequence
		// Resliced, not copied: an append reallocates (and copies) the
		// chain only when it reaches its array's end, every few hundred
		// events of a full chain, not every event. Nothing else holds the
		// slice (readers get one event at a time under mu), so the dropped
		// slots are cleared in place and keep no event alive.
		clear(ch.msgs[:drop])
		ch.msgs = ch.msgs[drop:]
	}
	for s := range c.chains {
		if c.bytes <= cacheBytes {
			break
		}
		if s != subject {
			c.dropLocked(s)
		}
	}
}
