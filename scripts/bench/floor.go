package main

// The floor (--floor): L1's broadcast with nothing in it but the kernel's
// loopback TCP and a minimal Go program on each side. A writer process
// pinned to CPU 0 (GOMAXPROCS=1, as the edge) accepts the connections and,
// at L1's rate, writes one message to each of them in turn, one write
// call per connection, as any server must when every client gets every
// event; a reader process pinned to CPU 1 (as the load generator) reads
// them, one goroutine per connection, and measures each message's latency
// from the time stamped in it when its round began. No WebSocket, no JSON,
// no broker, no queue: what it measures bounds from below what any
// one-core server can reach on this machine with the same fan-out.
//
// Both processes are this binary again (os.Executable), told their role
// by floorRoleEnv; their results come back as one JSON line on stdout.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// floorRoleEnv names the role ("writer" or "reader") of a floor process,
// or hubRole for a reference hub (hub.go); main (and TestMain) run it
// instead of the orchestrator.
const floorRoleEnv = "EVENTEDGE_BENCH_FLOOR"

// floorParams are one floor run's: L1's by default (5,000 connections,
// 10 rounds/s for 20 s, 300-byte messages: about the edge's event frame
// at --payload-bytes 200); --quick: 200 connections for 2 s.
type floorParams struct {
	// Mode is "broadcast" (L1's) or "connect" (L5's: see floorServer).
	Mode     string        `json:"mode"`
	Dialers  int           `json:"dialers"` // connect: connections dialed at once
	Conns    int           `json:"conns"`
	Rate     float64       `json:"rate"`
	Rounds   int           `json:"rounds"`
	Size     int           `json:"size"`
	Deadline time.Duration `json:"deadline"` // bound on the whole run, each side
}

func defaultFloor(quick bool) floorParams {
	if quick {
		return floorParams{Mode: "broadcast", Conns: 200, Rate: 10, Rounds: 20, Size: 300, Deadline: time.Minute}
	}
	return floorParams{Mode: "broadcast", Conns: 5000, Rate: 10, Rounds: 200, Size: 300, Deadline: 3 * time.Minute}
}

// connectFloor is L5's floor: 5,000 connections, 200 dialing at once
// (--quick: 200, 20 at once).
func connectFloor(quick bool) floorParams {
	if quick {
		return floorParams{Mode: "connect", Conns: 200, Dialers: 20, Deadline: time.Minute}
	}
	return floorParams{Mode: "connect", Conns: 5000, Dialers: 200, Deadline: 3 * time.Minute}
}

// The connect floor's exchange, L5's in size: the client's upgrade
// request, the server's 101, the client's auth and subscribe, the
// server's welcome and reply (bytes; what the load generator and the edge
// send, to within tens of bytes).
const (
	floorRequest  = 250
	floorResponse = 150
	floorAuth     = 300
	floorReply    = 150
)

// writerResult is the writer's: each round's time to write every
// connection, and its CPU time over the rounds.
type writerResult struct {
	Rounds []time.Duration `json:"rounds"`
	User   time.Duration   `json:"user"`
	Sys    time.Duration   `json:"sys"`
	// Late counts the rounds that began after their slot because the one
	// before overran; MaxLate is the worst. A message's latency starts
	// at its round's actual start (as the load generator stamps an event
	// when it is sent), so this lateness is not in it.
	Late    int           `json:"late"`
	MaxLate time.Duration `json:"maxLate"`
	Served  int           `json:"served"` // connect: connections the server wrote its reply to
}

// readerResult is the reader's: its messages' latency quantiles.
type readerResult struct {
	P50, P90, P99, Max time.Duration
	Received           int
	Missing            int           // messages not received by the deadline
	User, Sys          time.Duration // its CPU time while reading (connect: dialing)
	Wall               time.Duration // connect: first dial to the last reply
}

// runFloor starts the two processes pinned, waits for both and prints the
// figures.
func runFloor(ctx context.Context, p *procs, fp floorParams, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	params, _ := json.Marshal(fp)
	stderr = &lockedWriter{w: stderr} // the children's output is copied in by exec's goroutines
	role := func(r string) *exec.Cmd {
		cmd := pinned(ctx, map[string]string{"writer": "0", "reader": "1"}[r], self)
		cmd.Env = append(os.Environ(), floorRoleEnv+"="+r, "GOMAXPROCS=1", "FLOOR_PARAMS="+string(params))
		cmd.Stderr = stderr
		return cmd
	}
	w := role("writer")
	wout, err := w.StdoutPipe()
	if err != nil {
		return err
	}
	if err := p.start(w); err != nil {
		return fmt.Errorf("start the floor's writer: %w", err)
	}
	defer p.stop(w, 5*time.Second)
	wr := bufio.NewReader(wout)
	addr, err := wr.ReadString('\n') // its listen address first
	if err != nil {
		return fmt.Errorf("floor writer: no address: %w", err)
	}
	r := role("reader")
	r.Env = append(r.Env, "FLOOR_ADDR="+strings.TrimSpace(addr))
	var rout strings.Builder
	r.Stdout = &rout
	if err := p.start(r); err != nil {
		return fmt.Errorf("start the floor's reader: %w", err)
	}
	fmt.Fprintf(stderr, "bench: floor %s: %d connections; writer (server) CPU 0, reader (client) CPU 1 (%s)\n", fp.Mode, fp.Conns, params)
	// The reader is waited for on its own goroutine: when it fails (a
	// dial refused, too few file descriptors) the writer, waiting in
	// Accept or Write, is stopped at once rather than at its deadline,
	// and the reader's error is the one reported.
	rdone := make(chan error, 1)
	go func() {
		err := r.Wait()
		p.mu.Lock()
		delete(p.live, r)
		p.mu.Unlock()
		if err != nil {
			_ = p.stop(w, time.Second)
		}
		rdone <- err
	}()
	var wres writerResult
	werr := json.NewDecoder(wr).Decode(&wres)
	if rerr := <-rdone; rerr != nil {
		return fmt.Errorf("floor reader: %w", rerr)
	}
	if werr != nil {
		return fmt.Errorf("floor writer: no result: %w", werr)
	}
	var rres readerResult
	if err := json.Unmarshal([]byte(rout.String()), &rres); err != nil {
		return fmt.Errorf("floor reader: result %.100q: %w", rout.String(), err)
	}
	if fp.Mode == "connect" {
		writeConnectFloor(stdout, fp, wres, rres)
		if rres.Missing > 0 {
			return fmt.Errorf("floor: %d of %d connections failed", rres.Missing, fp.Conns)
		}
		return nil
	}
	writeFloor(stdout, fp, wres, rres)
	if rres.Missing > 0 {
		return fmt.Errorf("floor: %d of %d messages not received", rres.Missing, fp.Conns*fp.Rounds)
	}
	return nil
}

// writeConnectFloor prints the connect floor's figures.
func writeConnectFloor(w io.Writer, fp floorParams, wres writerResult, rres readerResult) {
	us := func(d time.Duration, n int) string {
		return strconv.FormatFloat(float64(d)/float64(max(n, 1))/1e3, 'f', 1, 64)
	}
	fmt.Fprintf(w, "floor: connect %d connections, %d at once: TCP connect, then %d bytes to the server and %d back in two exchanges (server CPU 0, client CPU 1)\n",
		fp.Conns, fp.Dialers, floorRequest+floorAuth, floorResponse+floorReply)
	fmt.Fprintf(w, "  client: %.3f s wall, %d connected, %d failed; per connection p50 %s ms, p99 %s ms; CPU per connection %s µs system + %s µs user\n",
		rres.Wall.Seconds(), rres.Received, rres.Missing, ms(rres.P50), ms(rres.P99), us(rres.Sys, rres.Received), us(rres.User, rres.Received))
	fmt.Fprintf(w, "  server: %d served; CPU per connection %s µs system + %s µs user\n",
		wres.Served, us(wres.Sys, wres.Served), us(wres.User, wres.Served))
}

// writeFloor prints the floor's figures.
func writeFloor(w io.Writer, fp floorParams, wres writerResult, rres readerResult) {
	rounds := slices.Clone(wres.Rounds)
	slices.Sort(rounds)
	writes := time.Duration(fp.Conns * len(rounds))
	var sum time.Duration
	for _, d := range rounds {
		sum += d
	}
	fmt.Fprintf(w, "floor: %d connections × %d rounds at %g/s, %d-byte messages, one write each (writer CPU 0, reader CPU 1)\n",
		fp.Conns, fp.Rounds, fp.Rate, fp.Size)
	if len(rounds) > 0 {
		fmt.Fprintf(w, "  writer: one round (a write to every connection) p50 %s ms, p99 %s ms, max %s ms; per write %.2f µs wall, %.2f µs system + %.2f µs user CPU\n",
			ms(quantile(rounds, 0.5)), ms(quantile(rounds, 0.99)), ms(rounds[len(rounds)-1]),
			float64(sum)/float64(writes)/1e3, float64(wres.Sys)/float64(writes)/1e3, float64(wres.User)/float64(writes)/1e3)
	}
	if wres.Late > 0 {
		fmt.Fprintf(w, "  writer: %d rounds began late (the one before overran), at worst %s ms: not in the latency below\n", wres.Late, ms(wres.MaxLate))
	}
	fmt.Fprintf(w, "  reader: latency (round start → read) p50 %s ms, p90 %s ms, p99 %s ms, max %s ms; %d received, %d missing\n",
		ms(rres.P50), ms(rres.P90), ms(rres.P99), ms(rres.Max), rres.Received, rres.Missing)
	if rres.Received > 0 {
		fmt.Fprintf(w, "  reader: CPU per message %.2f µs system + %.2f µs user\n",
			float64(rres.Sys)/float64(rres.Received)/1e3, float64(rres.User)/float64(rres.Received)/1e3)
	}
}

// ms formats d in milliseconds, one decimal.
func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) }

// quantile of sorted, non-empty ds.
func quantile(ds []time.Duration, q float64) time.Duration {
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

// exitIfFloorRole runs this process's floor role, when floorRoleEnv
// names one, and exits with its result (main and TestMain call it first).
func exitIfFloorRole() {
	role := os.Getenv(floorRoleEnv)
	if role == "" {
		return
	}
	serve, what := floorRole, "bench floor "+role+":"
	if role == hubRole {
		serve, what = func(string) error { return hubServe(os.Stdout) }, "bench hub:"
	}
	if err := serve(role); err != nil {
		fmt.Fprintln(os.Stderr, what, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// floorRole runs a floor process's role.
func floorRole(role string) error {
	var fp floorParams
	if err := json.Unmarshal([]byte(os.Getenv("FLOOR_PARAMS")), &fp); err != nil {
		return fmt.Errorf("FLOOR_PARAMS: %w", err)
	}
	switch {
	case fp.Mode == "connect" && (fp.Conns < 1 || fp.Dialers < 1 || fp.Deadline <= 0):
		return fmt.Errorf("FLOOR_PARAMS %+v: connections, dialers and deadline positive", fp)
	case fp.Mode == "broadcast" && (fp.Conns < 1 || fp.Rounds < 1 || fp.Rate <= 0 || fp.Size < 8 || fp.Deadline <= 0):
		return fmt.Errorf("FLOOR_PARAMS %+v: connections, rounds, rate and deadline positive, size at least 8", fp)
	case fp.Mode != "connect" && fp.Mode != "broadcast":
		return fmt.Errorf("FLOOR_PARAMS mode %q: broadcast or connect", fp.Mode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), fp.Deadline)
	defer cancel()
	connect, addr := fp.Mode == "connect", os.Getenv("FLOOR_ADDR")
	switch {
	case role == "writer" && connect:
		return floorServer(ctx, fp, os.Stdout)
	case role == "reader" && connect:
		return floorDialer(ctx, fp, addr, os.Stdout)
	case role == "writer":
		return floorWriter(ctx, fp, os.Stdout)
	case role == "reader":
		return floorReader(ctx, fp, addr, os.Stdout)
	}
	return fmt.Errorf("%s=%q: writer or reader", floorRoleEnv, role)
}

// floorListen listens on a loopback port, prints its address on out (the
// orchestrator hands it to the other process) and closes the listener
// when ctx ends, which fails a waiting Accept.
func floorListen(ctx context.Context, out io.Writer) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, ln.Addr().String())
	context.AfterFunc(ctx, func() { ln.Close() })
	return ln, nil
}

// floorWriter accepts fp.Conns connections on a loopback port it prints
// first, then writes fp.Rounds rounds on schedule, one message to each
// connection per round, each stamped with the round's start.
func floorWriter(ctx context.Context, fp floorParams, out io.Writer) error {
	ln, err := floorListen(ctx, out)
	if err != nil {
		return err
	}
	defer ln.Close()
	var set connSet
	defer set.closeAll()
	for i := range fp.Conns {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("accepted %d of %d: %w", i, fp.Conns, err)
		}
		set.add(c)
	}
	conns := set.conns // all accepted: no more adds
	msg := make([]byte, fp.Size)
	interval := time.Duration(float64(time.Second) / fp.Rate)
	res := writerResult{Rounds: make([]time.Duration, 0, fp.Rounds)}
	u0, s0 := cpuTimes()
	start := time.Now()
	var prevEnd time.Time
	for r := range fp.Rounds {
		slot := start.Add(time.Duration(r) * interval)
		if wait := time.Until(slot); wait > 0 {
			time.Sleep(wait)
		}
		t0 := time.Now()
		if prevEnd.After(slot) { // the round before overran this one's slot
			res.Late++
			res.MaxLate = max(res.MaxLate, t0.Sub(slot))
		}
		binary.LittleEndian.PutUint64(msg, uint64(t0.UnixNano()))
		for _, c := range conns {
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("round %d: %w", r, err)
			}
		}
		prevEnd = time.Now()
		res.Rounds = append(res.Rounds, prevEnd.Sub(t0))
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	u1, s1 := cpuTimes()
	res.User, res.Sys = u1-u0, s1-s0
	return json.NewEncoder(out).Encode(res)
}

// cpuTimes is this process's user and system CPU time so far.
func cpuTimes() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// floorReader dials fp.Conns connections to addr and reads fp.Rounds
// messages from each, one goroutine per connection, recording each one's
// latency.
func floorReader(ctx context.Context, fp floorParams, addr string, out io.Writer) error {
	if addr == "" {
		return errors.New("FLOOR_ADDR: empty")
	}
	var set connSet
	defer set.closeAll()
	var d net.Dialer
	for i := range fp.Conns {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dialed %d of %d: %w", i, fp.Conns, err)
		}
		set.add(c)
	}
	conns := set.conns // all dialed: no more adds
	context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetReadDeadline(time.Unix(1, 0)) // unblock the readers at the deadline
		}
	})
	u0, s0 := cpuTimes()
	lat := make([][]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		lat[i] = make([]time.Duration, 0, fp.Rounds)
		wg.Go(func() {
			buf := make([]byte, fp.Size)
			for range fp.Rounds {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				sent := int64(binary.LittleEndian.Uint64(buf))
				lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-sent))
			}
		})
	}
	wg.Wait()
	u1, s1 := cpuTimes()
	var all []time.Duration
	res := readerResult{User: u1 - u0, Sys: s1 - s0}
	for _, l := range lat {
		all = append(all, l...)
		res.Missing += fp.Rounds - len(l)
	}
	if res.Received = len(all); len(all) > 0 {
		slices.Sort(all)
		res.P50, res.P90, res.P99, res.Max = quantile(all, 0.5), quantile(all, 0.9), quantile(all, 0.99), all[len(all)-1]
	}
	return json.NewEncoder(out).Encode(res)
}

// floorStall is how long the connect floor's server waits for the next
// connection before it takes the client to have stopped dialing.
const floorStall = 10 * time.Second

// floorExchange is the client's side of the connect floor's two
// exchanges on c (buf holds the largest message).
func floorExchange(c net.Conn, buf []byte) error {
	if _, err := c.Write(buf[:floorRequest]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:floorResponse]); err != nil {
		return err
	}
	if _, err := c.Write(buf[:floorAuth]); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf[:floorReply])
	return err
}

// connSet holds a floor process's connections until closeAll.
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn // guarded by mu, but for reads once no more are added
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer // guarded by mu
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// floorServer is the connect floor's server: it accepts fp.Conns
// connections on a loopback port it prints first and, on a goroutine per
// connection (as net/http), reads the request, writes the response, reads
// the auth and writes the reply, then holds the connection until all are
// served. It reports its CPU time from the first accept on.
func floorServer(ctx context.Context, fp floorParams, out io.Writer) error {
	ln, err := floorListen(ctx, out)
	if err != nil {
		return err
	}
	defer ln.Close()
	var (
		conns  connSet
		mu     sync.Mutex
		served int // guarded by mu
		wg     sync.WaitGroup
	)
	defer conns.closeAll()
	var u0, s0 time.Duration
	dl, _ := ctx.Deadline()
	for i := range fp.Conns {
		if i > 0 {
			// The client dials without pause; one whose dials failed
			// sends no more, and the server reports what it served.
			ln.(*net.TCPListener).SetDeadline(time.Now().Add(floorStall))
		}
		c, err := ln.Accept()
		if err != nil {
			if i > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return fmt.Errorf("accepted %d of %d: %w", i, fp.Conns, err)
		}
		if i == 0 {
			u0, s0 = cpuTimes()
		}
		c.SetDeadline(dl)
		conns.add(c)
		wg.Go(func() {
			buf := make([]byte, max(floorRequest, floorAuth))
			if _, err := io.ReadFull(c, buf[:floorRequest]); err != nil {
				return
			}
			if _, err := c.Write(buf[:floorResponse]); err != nil {
				return
			}
			if _, err := io.ReadFull(c, buf[:floorAuth]); err != nil {
				return
			}
			if _, err := c.Write(buf[:floorReply]); err != nil {
				return
			}
			mu.Lock()
			served++
			mu.Unlock()
		})
	}
	wg.Wait()
	u1, s1 := cpuTimes()
	mu.Lock()
	res := writerResult{Served: served, User: u1 - u0, Sys: s1 - s0}
	mu.Unlock()
	return json.NewEncoder(out).Encode(res)
}

// floorDialer is the connect floor's client: fp.Dialers goroutines dial
// fp.Conns connections to addr in all, each then writing the request,
// reading the response, writing the auth and reading the reply, and
// holding it; it reports the wall time from the first dial to the last
// reply, each connection's time and its CPU time.
func floorDialer(ctx context.Context, fp floorParams, addr string, out io.Writer) error {
	if addr == "" {
		return errors.New("FLOOR_ADDR: empty")
	}
	var (
		conns connSet
		mu    sync.Mutex
		took  []time.Duration // guarded by mu
		next  atomic.Int64
		wg    sync.WaitGroup
	)
	defer conns.closeAll()
	u0, s0 := cpuTimes()
	var firstErr error // guarded by mu
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	dl, _ := ctx.Deadline()
	start := time.Now()
	for range fp.Dialers {
		wg.Go(func() {
			var d net.Dialer
			buf := make([]byte, max(floorResponse, floorReply, floorRequest, floorAuth))
			for next.Add(1) <= int64(fp.Conns) && ctx.Err() == nil {
				t0 := time.Now()
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					fail(err)
					continue
				}
				conns.add(c)
				c.SetDeadline(dl)
				if err := floorExchange(c, buf); err != nil {
					fail(err)
					continue
				}
				el := time.Since(t0)
				mu.Lock()
				took = append(took, el)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "bench floor reader: %d of %d connections failed, the first: %v\n", fp.Conns-len(took), fp.Conns, firstErr)
	}
	wall := time.Since(start)
	u1, s1 := cpuTimes()
	mu.Lock()
	defer mu.Unlock()
	res := readerResult{Wall: wall, User: u1 - u0, Sys: s1 - s0, Received: len(took), Missing: fp.Conns - len(took)}
	if len(took) > 0 {
		slices.Sort(took)
		res.P50, res.P90, res.P99, res.Max = quantile(took, 0.5), quantile(took, 0.9), quantile(took, 0.99), took[len(took)-1]
	}
	return json.NewEncoder(out).Encode(res)
}
