package main

// The reference hub (--hub): L5's connect storm against a WebSocket
// server built of nothing but the libraries the edge is built on —
// net/http's server and coder/websocket's Accept — interleaved with the
// same storm against the edge, with the same load generator and the same
// pinning. The floor (floor.go) says what the kernel costs a connection;
// the hub says what the libraries add to it; the edge's figures beside
// the hub's say what the edge adds to them (the token, the session, the
// subscribe). Issue #8's table has such a hub ("plain coder/websocket
// hub, no auth, no broker"); this one is measured here, by this bench.
//
// The hub process is this binary again (os.Executable, floorRoleEnv=hub),
// pinned to CPU 0 with GOMAXPROCS=1 as the edge. For each connection, on
// net/http's goroutine: websocket.Accept with no options, one read (the
// load generator sends its auth and subscribes in one frame), one write
// (the welcome and one reply per subscribe, in one frame: what the edge
// answers), then a read until the client closes. It checks nothing the
// messages say beyond their shape: no token, no room, no broker.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/coder/websocket"
)

// hubRole is the floorRoleEnv value of a reference hub process.
const hubRole = "hub"

// hubDeadline bounds a hub process's life (the orchestrator stops it
// after its run, or kills it with itself).
const hubDeadline = 10 * time.Minute

// maxCloseReason is the longest close reason a close frame carries (its
// payload is at most 125 bytes, 2 of them the code).
const maxCloseReason = 123

// hubPairs is how many interleaved hub/edge pairs --hub runs (--quick: 1).
const hubPairs = 3

// hubServe is a hub process: it listens on a loopback port, prints its
// address on out and serves until SIGTERM or hubDeadline.
func hubServe(out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, hubDeadline)
	defer cancel()
	ln, err := floorListen(ctx, out)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(hubHandle), ReadHeaderTimeout: 10 * time.Second}
	context.AfterFunc(ctx, func() { srv.Close() })
	if err := srv.Serve(ln); err != nil && ctx.Err() == nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// hubHandle is one hub connection (see the file's comment).
func hubHandle(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered the request
	}
	defer ws.CloseNow()
	ctx := r.Context()
	_, data, err := ws.Read(ctx)
	if err != nil {
		return
	}
	reply, err := hubReply(data)
	if err != nil {
		reason := err.Error()
		if len(reason) > maxCloseReason {
			reason = reason[:maxCloseReason] // a longer reason fails the close
		}
		_ = ws.Close(websocket.StatusPolicyViolation, reason)
		return
	}
	if err := ws.Write(ctx, websocket.MessageText, reply); err != nil {
		return
	}
	_, _, _ = ws.Read(ctx) // holds the connection until the client closes it
}

// hubReply answers a frame of an auth and subscribes (JSON lines, as the
// load generator sends them) with a welcome and a reply per subscribe, in
// order, one frame. A frame of any other shape is an error.
func hubReply(frame []byte) ([]byte, error) {
	var out []byte
	n := 0
	for line := range bytes.SplitSeq(frame, []byte("\n")) {
		var m struct {
			Op string  `json:"op"`
			ID *uint64 `json:"id"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("message %d: %w", n+1, err)
		}
		switch {
		case n == 0 && m.Op == "auth":
			out = append(out, `{"op":"welcome","session":"hub","node":"hub","user":"hub"}`...)
		case n > 0 && m.Op == "subscribe" && m.ID != nil:
			out = append(out, "\n"+`{"op":"reply","id":`...)
			out = strconv.AppendUint(out, *m.ID, 10)
			out = append(out, `,"ok":true,"seq":0}`...)
		default:
			return nil, fmt.Errorf("message %d: op %q: want an auth, then subscribes with ids", n+1, m.Op)
		}
		n++
	}
	return out, nil
}

// stormHub is one connect storm against a hub process, as runOne's
// against an edge: the same loadgen flags, its record in
// o.out/<name>.json.
func stormHub(ctx context.Context, p *procs, o options, natsURL, secret string, rn step, stderr io.Writer) outcome {
	self, err := os.Executable()
	if err != nil {
		return outcome{run: rn, err: fmt.Errorf("the hub's executable: %w", err)}
	}
	name := rn.fileName()
	cmd := pinned(ctx, "0", self)
	cmd.Env = append(os.Environ(), floorRoleEnv+"="+hubRole, "GOMAXPROCS=1")
	cmd.Stderr = stderr
	hout, err := cmd.StdoutPipe()
	if err != nil {
		return outcome{run: rn, err: fmt.Errorf("the hub's stdout: %w", err)}
	}
	fmt.Fprintf(stderr, "bench: %s: starting the reference hub (CPU 0, GOMAXPROCS=1)\n", name)
	if err := p.start(cmd); err != nil {
		return outcome{run: rn, err: fmt.Errorf("start the hub: %w", err)}
	}
	defer p.stop(cmd, 5*time.Second)
	addr, err := bufio.NewReader(hout).ReadString('\n')
	if err != nil {
		return outcome{run: rn, err: fmt.Errorf("the hub's address: %w", err)}
	}
	return runLoadgen(ctx, p, o, natsURL, secret, rn, "ws://"+strings.TrimSpace(addr)+"/v1/ws", cmd.Process.Pid, "", stderr)
}

// hubRun is one run of a pair: the server ("hub" or "edge") and its
// outcome.
type hubRun struct {
	server string
	oc     outcome
}

// runHub runs hubPairs pairs (--quick: 1) of L5, the hub's and the
// edge's, and prints their figures side by side. The order alternates
// (hub first in odd pairs, edge first in even ones), so that a drift of
// the machine's speed within pairs does not fall on one side only.
func runHub(ctx context.Context, p *procs, o options, natsURL, secret, work string, stdout, stderr io.Writer) error {
	pairs := hubPairs
	if o.quick {
		pairs = 1
	}
	stderr = &lockedWriter{w: stderr} // the hub's stderr is copied in by exec's goroutine
	var runs [][]hubRun
	for i := range pairs {
		if ctx.Err() != nil {
			break
		}
		base := plan("L5", nil, o.quick)[0]
		h, e := base, base
		h.name, e.name = fmt.Sprintf("L5-hub-%d", i+1), fmt.Sprintf("L5-edge-%d", i+1)
		hub := func() hubRun { return hubRun{"hub", stormHub(ctx, p, o, natsURL, secret, h, stderr)} }
		edge := func() hubRun { return hubRun{"edge", runOne(ctx, p, o, natsURL, secret, work, e, stderr)} }
		if i%2 == 0 {
			runs = append(runs, []hubRun{hub(), edge()})
		} else {
			runs = append(runs, []hubRun{edge(), hub()})
		}
	}
	var first *record
	for _, pair := range runs {
		for _, r := range pair {
			if first == nil && r.oc.rec != nil {
				first = r.oc.rec
			}
		}
	}
	f, err := os.Create(filepath.Join(o.out, "hub.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	writeHubTable(io.MultiWriter(stdout, f), runs, machineLine(first), commit(), o.quick)
	for _, pair := range runs {
		for _, r := range pair {
			if r.oc.err != nil {
				return fmt.Errorf("%s: %w", r.oc.run.fileName(), r.oc.err)
			}
			if !r.oc.rec.Results.OK {
				return fmt.Errorf("%s: the load generator's check failed (see %s)", r.oc.run.fileName(),
					filepath.Join(o.out, r.oc.run.fileName()+".txt"))
			}
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped after %d of %d pairs: %w", len(runs), pairs, ctx.Err())
	}
	return nil
}

// writeHubTable prints each run's wall and both sides' CPU per client
// while connecting, in the order they ran, and the medians of the walls.
func writeHubTable(w io.Writer, runs [][]hubRun, machine, commit string, quick bool) {
	quickNote := ""
	if quick {
		quickNote = "200 clients"
	}
	writeHead(w, "L5's connect storm: a reference hub (net/http + coder/websocket, no auth, no broker) and the edge, interleaved",
		machine, commit, quickNote)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "pair\tserver\tclients\twall\tCPU per client while connecting: server / loadgen")
	walls := map[string][]float64{}
	for i, pair := range runs {
		for _, r := range pair {
			if c := r.oc.rec; c != nil && c.Results.Connect != nil && c.Results.Clients.Failed == 0 {
				walls[r.server] = append(walls[r.server], c.Results.Connect.Wall)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\n", i+1, r.server, hubFigures(r.oc))
		}
	}
	tw.Flush()
	for _, s := range []string{"hub", "edge"} {
		if ws := walls[s]; len(ws) > 0 {
			fmt.Fprintf(w, "median wall, %s: %.3f s (%d runs)\n", s, median(ws), len(ws))
		}
	}
}

// median of non-empty vs (sorted in place): the mean of the two middle
// values of an even count.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[n/2]
}

// hubFigures is one run's columns after the server's name.
func hubFigures(oc outcome) string {
	if oc.err != nil {
		return "-\t-\t" + oc.err.Error()
	}
	res := oc.rec.Results
	c := res.Connect
	if c == nil {
		return "-\t-\tno connect figures"
	}
	n := float64(max(res.Clients.Connected, 1))
	server := "-"
	if c.EdgeCPUSeconds != nil {
		server = fmt.Sprintf("%.0f µs", *c.EdgeCPUSeconds/n*1e6)
	}
	out := fmt.Sprintf("%d of %d\t%.3f s\t%s / %.0f µs", res.Clients.Connected, res.Clients.Connected+res.Clients.Failed,
		c.Wall, server, c.LoadgenCPUSeconds/n*1e6)
	if !res.OK {
		out += " (loadgen check FAIL)"
	}
	return out
}
