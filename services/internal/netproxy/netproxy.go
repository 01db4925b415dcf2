// Package netproxy is a TCP proxy on a loopback port for tests that break
// connections on purpose: between clients and an edge, or between an edge
// and NATS. Cut drops every connection through it (the peers see their TCP
// connection end without a protocol close), CutSome a few of them, Block
// drops them all and refuses new ones until Unblock (a network partition
// as the peers see it), Pause holds every byte in flight without closing
// anything until Resume (a stalled peer or link), and Kill stops it for
// good, like a process killed with -9.
//
// Ownership: the accept goroutine is started by Start and ends when the
// listener closes (Kill, or the end of the test); each proxied connection
// has two copier goroutines that end when either side closes. Kill waits
// for none of them; the test's cleanup waits for all.
package netproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Proxy forwards every connection accepted on its loopback port to a
// target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	pairs   map[net.Conn]net.Conn // guarded by mu: accepted side → target side
	blocked bool                  // guarded by mu: new connections are refused
	paused  chan struct{}         // guarded by mu: non-nil while paused, closed by Resume
	killed  bool                  // guarded by mu
	wg      sync.WaitGroup        // accept loop and copiers
}

// Start starts a proxy to target on a random 127.0.0.1 port; it is killed
// and its goroutines waited for when the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, pairs: make(map[net.Conn]net.Conn)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { p.Kill(); p.wg.Wait() })
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.blocked
		p.mu.Unlock()
		if refuse {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.killed || p.blocked {
			p.mu.Unlock()
			in.Close()
			out.Close()
			continue
		}
		p.pairs[in] = out
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out, in)
		go p.pipe(out, in, in)
	}
}

// pipe copies src to dst until either ends, then closes both and forgets
// the pair keyed by key. While the proxy is paused, what it read waits.
func (p *Proxy) pipe(dst, src, key net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			paused := p.paused
			p.mu.Unlock()
			if paused != nil {
				<-paused
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.pairs, key)
	p.mu.Unlock()
}

// Pause holds every byte read from either side of every connection,
// without closing anything, until Resume. A connection Cut while paused
// ends once Resume (or Kill, which resumes) lets its copiers go.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused == nil {
		p.paused = make(chan struct{})
	}
}

// Resume forwards again what Pause held, and everything after.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused != nil {
		close(p.paused)
		p.paused = nil
	}
}

// Conns is the number of connections through the proxy.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Cut closes every connection through the proxy; new ones are accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutLocked()
}

func (p *Proxy) cutLocked() {
	for in, out := range p.pairs {
		in.Close()
		out.Close()
	}
}

// CutSome closes up to n connections through the proxy, chosen at random
// with rng, and returns how many it closed.
func (p *Proxy) CutSome(rng *rand.Rand, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	all := make([]net.Conn, 0, len(p.pairs))
	for in := range p.pairs {
		all = append(all, in)
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	n = min(n, len(all))
	for _, in := range all[:n] {
		in.Close()
		p.pairs[in].Close()
	}
	return n
}

// Block closes every connection through the proxy and refuses new ones
// (accepted, then closed at once) until Unblock.
func (p *Proxy) Block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	p.cutLocked()
}

// Unblock accepts new connections again after Block.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// Kill closes the listener and every connection.
func (p *Proxy) Kill() {
	p.Resume() // a paused copier would hold the cleanup's wait
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
}
