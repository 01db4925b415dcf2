package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// messageBuffer is each client's Messages capacity: small, since a reader
// drains it at once, and a load of many clients should not hold 1024
// pointers each.
const messageBuffer = 256

// httpClients returns one HTTP client per source address 127.0.0.1 … K,
// each dialing from that address (coder/websocket dials through it). With
// a remote URL (K is then 1) the kernel picks the source address. Their
// transport is an upgradeTransport: a connection per handshake and no
// goroutine per connection (a wss:// URL goes to an http.Transport).
func httpClients(k int, loopback bool) []*http.Client {
	out := make([]*http.Client, k)
	for i := range out {
		d := &net.Dialer{Timeout: 10 * time.Second}
		if loopback {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i+1))}
		}
		out[i] = &http.Client{Transport: newUpgradeTransport(d)}
	}
	return out
}

// dialResult is what dialAll returns.
type dialResult struct {
	conns    []conn     // index i: client i (*leanConn or *client.Conn), nil when it failed
	pos      []uint64   // index i: the subscribe reply's seq (of its first room)
	posAll   [][]uint64 // index i: the subscribe replies' seqs, one per room of its spec
	failures *failureCounts
	latency  *hist.Histogram // connect + auth + subscribe, per client
	wall     time.Duration   // first dial to last done
	// CPU time over wall: this process's, and the edge's (when sampled:
	// edgeCPUOK).
	cpu, edgeCPU time.Duration
	edgeCPUOK    bool
}

// dialAll connects clients 0…n-1 with r.cfg.Dialers at once, each
// authenticated as its own user and subscribed to rm. onConn, when set,
// is called from the dialing goroutine right after client i subscribed;
// a lean client's reader is started then (with a handler that discards
// everything when onConn did not start it).
// It returns when every client succeeded or failed, or ctx ended (the
// clients not dialed by then count as failed: "canceled").
func (r *runner) dialAll(ctx context.Context, n int, rm string, lean bool, onConn func(i int, c conn)) *dialResult {
	spec := clientSpec{rooms: []string{rm}, lean: lean}
	return r.dialAllSpec(ctx, n, func(int) clientSpec { return spec }, onConn)
}

// clientSpec is what one client is: the rooms it subscribes to, in order,
// and its token's permissions and projects (nil: tasks:read, and logs:read
// with the dashboard mix; the run's project); lean selects the lean
// receive path (a *leanConn) over the Go client (a *client.Conn).
type clientSpec struct {
	rooms, perms, projects []string
	lean                   bool
	since                  *uint64 // lean only: resume every room after it
}

// dialAllSpec is dialAll with each client's rooms and token given by spec.
func (r *runner) dialAllSpec(ctx context.Context, n int, spec func(i int) clientSpec, onConn func(i int, c conn)) *dialResult {
	res := &dialResult{
		conns:    make([]conn, n),
		pos:      make([]uint64, n),
		posAll:   make([][]uint64, n),
		failures: newFailureCounts(),
		latency:  &hist.Histogram{},
	}
	// Every token is signed before the clock starts: a client comes to a
	// connect with its token in hand (its issuer signed it), and signing
	// in the storm would count the load generator's own work (about 13 µs
	// of its CPU a client, measured) in the wall it measures.
	specs := make([]clientSpec, n)
	toks := make([]string, n)
	tokErrs := make([]error, n)
	for i := range n {
		specs[i] = spec(i)
		toks[i], tokErrs[i] = r.tokenFor(i, specs[i])
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	edge0, edgeOK := r.edgeCPU()
	start := time.Now()
	for range min(r.cfg.Dialers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if ctx.Err() != nil {
					res.failures.add("canceled", ctx.Err())
					r.failed.Add(1)
					continue
				}
				t0 := time.Now()
				err := tokErrs[i]
				var c conn
				var pos []uint64
				if err == nil {
					c, pos, err = r.dialToken(ctx, i, specs[i], toks[i])
				}
				if err != nil {
					res.failures.add(classify(err), err)
					r.failed.Add(1)
					continue
				}
				res.latency.RecordDuration(time.Since(t0))
				res.conns[i], res.pos[i], res.posAll[i] = c, pos[0], pos
				r.connected.Add(1)
				if onConn != nil {
					onConn(i, c)
				}
				if lc, ok := c.(*leanConn); ok {
					lc.start(nil) // keep reading (pings, the close) if onConn did not start it
				}
			}
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	res.cpu = selfCPU() - cpu0
	if edge1, ok := r.edgeCPU(); ok && edgeOK {
		res.edgeCPU, res.edgeCPUOK = edge1-edge0, true
	}
	return res
}

// edgeCPU reads the edge's CPU time now, when its pid is sampled.
func (r *runner) edgeCPU() (time.Duration, bool) {
	if r.sampler == nil {
		return 0, false
	}
	got, err := r.sampler.sample()
	return got.CPU, err == nil
}

// userID is client i's user (and user room id).
func (r *runner) userID(i int) string { return fmt.Sprintf("%s-%d", r.userPrefix, i) }

// dialSpec connects and authenticates client i and subscribes it to the
// rooms of sp, in order; it returns the subscribe replies' seqs.
func (r *runner) dialSpec(ctx context.Context, i int, sp clientSpec) (conn, []uint64, error) {
	tok, err := r.tokenFor(i, sp)
	if err != nil {
		return nil, nil, err
	}
	return r.dialToken(ctx, i, sp, tok)
}

// tokenFor is client i's token for sp: its perms and projects, or the
// defaults (tasks:read, and logs:read with the dashboard and job mixes; the run's
// project).
func (r *runner) tokenFor(i int, sp clientSpec) (string, error) {
	perms, projects := sp.perms, sp.projects
	if perms == nil {
		perms = []string{"tasks:read"}
		if r.cfg.Mix == MixDashboard || r.cfg.Mix == MixJob {
			perms = append(perms, PermLogsRead) // the mix's log lines require it
		}
	}
	if projects == nil {
		projects = []string{r.cfg.Project}
	}
	return r.minter.tokenFor(r.userID(i), perms, projects)
}

// dialToken is dialSpec with client i's token signed.
func (r *runner) dialToken(ctx context.Context, i int, sp clientSpec, tok string) (conn, []uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	if sp.lean {
		c, pos, err := dialLean(ctx, r.cfg.URL, r.http[i%len(r.http)], tok, sp.rooms,
			leanOptions{compress: r.cfg.Compression, binary: r.cfg.Protocol == ProtocolProtobuf, since: sp.since})
		if err != nil {
			return nil, nil, err
		}
		if c.compressed {
			r.compressed.Add(1)
		}
		return c, pos, nil // not a nil *leanConn in a non-nil interface
	}
	c, err := client.Dial(ctx, r.cfg.URL, client.Options{
		Token:         tok,
		ClientVersion: "loadgen",
		HTTPClient:    r.http[i%len(r.http)],
		MessageBuffer: messageBuffer,
		Protocol:      goClientProtocol(r.cfg.Protocol),
	})
	if err != nil {
		return nil, nil, &stageError{stage: "dial", err: err}
	}
	pos := make([]uint64, len(sp.rooms))
	for k, rm := range sp.rooms {
		if pos[k], err = c.SubscribeFrom(ctx, rm, nil); err != nil {
			c.Close()
			return nil, nil, &stageError{stage: "subscribe", err: err}
		}
	}
	return c, pos, nil
}

// goClientProtocol is the Go client's wire format for Config.Protocol.
func goClientProtocol(p string) client.Protocol {
	if p == ProtocolProtobuf {
		return client.Protobuf
	}
	return client.JSON
}

// closeAll closes every open connection, Dialers at a time.
func (r *runner) closeAll(conns []conn) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Dialers, max(len(conns), 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				if conns[i] != nil {
					conns[i].Close()
				}
			}
		})
	}
	wg.Wait()
}

type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

var httpStatus = regexp.MustCompile(`HTTP (\d{3})`)

// classify names why a client failed, in a few words that group alike
// failures ("dial: HTTP 429", "dial: close 4001", "subscribe: forbidden").
func classify(err error) string {
	stage := "connect"
	var se *stageError
	if errors.As(err, &se) {
		stage = se.stage
	}
	var ce *client.CloseError
	var re *client.ReplyError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("%s: close %d", stage, int(ce.Code))
	case errors.As(err, &re):
		return stage + ": " + re.Code
	case errors.Is(err, context.DeadlineExceeded):
		return stage + ": timeout"
	case errors.Is(err, context.Canceled):
		return stage + ": canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return stage + ": connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return stage + ": no free local port"
	case errors.Is(err, syscall.ECONNRESET):
		return stage + ": connection reset"
	}
	if m := httpStatus.FindStringSubmatch(err.Error()); m != nil {
		return stage + ": HTTP " + m[1]
	}
	return stage + ": other"
}

// failureCounts counts failures by reason and keeps the first error of
// each, so "other" can be looked into. Safe for concurrent use.
type failureCounts struct {
	mu      sync.Mutex
	counts  map[string]int    // guarded by mu
	samples map[string]string // guarded by mu
}

func newFailureCounts() *failureCounts {
	return &failureCounts{counts: map[string]int{}, samples: map[string]string{}}
}

func (f *failureCounts) add(reason string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[reason]++
	if _, ok := f.samples[reason]; !ok && err != nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		f.samples[reason] = msg
	}
}

func (f *failureCounts) snapshot() (map[string]int, map[string]string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts, samples, total := map[string]int{}, map[string]string{}, 0
	for k, v := range f.counts {
		counts[k] = v
		total += v
	}
	for k, v := range f.samples {
		samples[k] = v
	}
	return counts, samples, total
}
