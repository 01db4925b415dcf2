package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	exitIfFloorRole() // a process of --floor
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
}

// options are the orchestrator's flags.
type options struct {
	bin, out string
	only     []string
	rates    []float64
	quick    bool
	soak     time.Duration // > 0: run the soak (soak.go) instead of the set
	floor    bool          // run the floor (floor.go) instead of the set
	hub      bool          // run the reference hub's pairs (hub.go) instead of the set
	timeout  time.Duration
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var only, sweep string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin", "directory of edge, loadgen and nats-server (make build bin/nats-server)")
	fs.StringVar(&o.out, "out", "", "directory for the JSON records, tables and logs (default: a new temp dir)")
	fs.StringVar(&only, "only", "", "comma-separated workloads to run, e.g. L1,L5 (default: all of "+strings.Join(workloadNames, ",")+")")
	fs.StringVar(&sweep, "sweep", "20,40,60,80,100,150", "L2: event rates swept (events/s, 5,000 clients each)")
	fs.BoolVar(&o.quick, "quick", false, "200 clients and short durations: checks the orchestration, measures nothing")
	fs.DurationVar(&o.soak, "soak", 0, "run the soak instead of the set for this long: loadgen's churn scenario against a fresh edge, "+
		"then check that its goroutines and RSS return to the baseline (e.g. 10m; make soak)")
	fs.BoolVar(&o.floor, "floor", false, "run the floors instead of the set: L1's broadcast (5,000 connections, 10/s, 300 bytes; --quick: 200) "+
		"with nothing but one plain TCP write per connection on CPU 0 and a minimal reader on CPU 1, then L5's connect storm (5,000 connections, "+
		"200 at once; --quick: 200, 20) with nothing but TCP connects and two plain exchanges (needs no binaries)")
	fs.BoolVar(&o.hub, "hub", false, "run the reference hub instead of the set: L5's connect storm against a server of nothing but net/http and "+
		"coder/websocket's Accept (no auth, no broker), then against the edge, three interleaved pairs (--quick: one, 200 clients)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run (with --soak, default: at least the soak + 5m)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.only, err = parseOnly(only); err != nil {
		return o, err
	}
	if o.quick && sweep == "20,40,60,80,100,150" {
		sweep = "20,40"
	}
	if o.rates, err = parseRates(sweep); err != nil {
		return o, err
	}
	if o.timeout <= 0 {
		return o, fmt.Errorf("--timeout %s: must be positive", o.timeout)
	}
	if o.floor && (o.soak != 0 || only != "" || o.hub) {
		return o, errors.New("--floor runs alone: without --soak, --only or --hub")
	}
	if o.hub && (o.soak != 0 || only != "") {
		return o, errors.New("--hub runs alone: without --soak or --only")
	}
	if o.soak < 0 || o.soak > 0 && (only != "" || o.quick) {
		return o, fmt.Errorf("--soak %s: a positive duration, without --only or --quick (the soak runs alone)", o.soak)
	}
	if o.soak > 0 {
		timeoutSet := false
		fs.Visit(func(f *flag.Flag) { timeoutSet = timeoutSet || f.Name == "timeout" })
		switch {
		case !timeoutSet:
			o.timeout = max(o.timeout, o.soak+5*time.Minute)
		case o.timeout < o.soak+3*time.Minute:
			return o, fmt.Errorf("--timeout %s: at least --soak + 3m (the load's connect and drain, the settle)", o.timeout)
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found (Debian: util-linux): the set pins the edge and the load to one CPU each")
	}
	if runtime.NumCPU() < 2 {
		fmt.Fprintln(stderr, "bench: warning: fewer than 2 CPUs; taskset -c 1 will fail")
	}
	if o.floor {
		if before, after, err := raiseNoFile(); err == nil && after > before {
			fmt.Fprintf(stderr, "bench: open-file limit raised from %d to %d (the hard limit)\n", before, after)
		}
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		p := &procs{}
		defer p.stopAll()
		if err := runFloor(ctx, p, defaultFloor(o.quick), stdout, stderr); err != nil {
			return err
		}
		return runFloor(ctx, p, connectFloor(o.quick), stdout, stderr)
	}
	for _, b := range []string{"edge", "loadgen", "nats-server"} {
		if _, err := os.Stat(filepath.Join(o.bin, b)); err != nil {
			return fmt.Errorf("%s: %w (make build bin/nats-server)", filepath.Join(o.bin, b), err)
		}
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	if o.out == "" {
		if o.out, err = os.MkdirTemp("", "eventedge-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if before, after, err := raiseNoFile(); err != nil {
		fmt.Fprintf(stderr, "bench: open-file limit %d, could not raise it: %v\n", before, err)
	} else if after > before {
		fmt.Fprintf(stderr, "bench: open-file limit raised from %d to %d (the hard limit) for the edge and loadgen\n", before, after)
	}

	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.soak > 0 {
		return runSoak(ctx, o, stdout, stderr)
	}
	p := &procs{}
	defer p.stopAll() // on every path: error, timeout, Ctrl-C

	work, err := os.MkdirTemp("", "eventedge-bench-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	secret := "bench-" + rand.Text() + rand.Text() // fresh, ≥ 32 bytes
	ns, err := startNATS(ctx, p, o.bin, filepath.Join(work, "nats"), filepath.Join(o.out, "nats-server.log"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: records and logs in %s; nats %s (CPU 1)\n", o.out, ns.url)

	if o.hub {
		err := runHub(ctx, p, o, ns.url, secret, work, stdout, stderr)
		_ = p.stop(ns.cmd, 5*time.Second)
		return err
	}

	outcomes := map[string][]outcome{}
	for _, w := range o.only {
		failedInRow := 0
		for _, rn := range plan(w, o.rates, o.quick) {
			if ctx.Err() != nil {
				outcomes[w] = append(outcomes[w], outcome{run: rn, err: ctx.Err()})
				continue
			}
			if w == "L2" && failedInRow >= 2 {
				break // two failing steps in a row: higher rates will not pass
			}
			oc := runOne(ctx, p, o, ns.url, secret, work, rn, stderr)
			outcomes[w] = append(outcomes[w], oc)
			if w == "L2" {
				if ok, _ := passStep(oc); ok {
					failedInRow = 0
				} else {
					failedInRow++
				}
			}
		}
	}
	_ = p.stop(ns.cmd, 5*time.Second)

	rows := make([]row, 0, len(o.only))
	for _, w := range o.only {
		rows = append(rows, evaluate(w, outcomes[w]))
	}
	var first *record
	for _, w := range o.only {
		for _, oc := range outcomes[w] {
			if first == nil && oc.rec != nil {
				first = oc.rec
			}
		}
	}
	f, err := os.Create(filepath.Join(o.out, "summary.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	writeTable(io.MultiWriter(stdout, f), rows, machineLine(first), commit(), o.quick)
	if ctx.Err() != nil {
		return fmt.Errorf("stopped: %w", ctx.Err())
	}
	return nil
}

func passStep(oc outcome) (bool, string) {
	if oc.rec == nil {
		return false, "no record"
	}
	return l2Pass(oc.rec)
}

// runOne runs one loadgen run against a fresh edge and reads its record.
func runOne(ctx context.Context, p *procs, o options, natsURL, secret, work string, rn step, stderr io.Writer) outcome {
	name := rn.fileName()
	fmt.Fprintf(stderr, "bench: %s: starting a fresh edge (CPU 0, GOMAXPROCS=1)\n", name)
	e, err := startEdge(ctx, p, o.bin, natsURL, secret, filepath.Join(work, "edge-"+name), filepath.Join(o.out, name+".edge.log"))
	if err != nil {
		return outcome{run: rn, err: err}
	}
	defer p.stop(e.cmd, 10*time.Second)
	return runLoadgen(ctx, p, o, natsURL, secret, rn, e.wsURL, e.pid, e.metricsURL, stderr)
}

// runLoadgen runs loadgen for rn against the server at wsURL (process
// pid; its metrics at metricsURL, or none when empty) and reads its
// record.
func runLoadgen(ctx context.Context, p *procs, o options, natsURL, secret string, rn step, wsURL string, pid int, metricsURL string, stderr io.Writer) outcome {
	oc := outcome{run: rn}
	name := rn.fileName()
	jsonPath := filepath.Join(o.out, name+".json")
	maxDur := 5 * time.Minute
	if o.quick {
		maxDur = time.Minute
	}
	args := append([]string{"--preset", rn.preset}, rn.extra...)
	args = append(args, "--url", wsURL, "--nats-url", natsURL, "--edge-pid", fmt.Sprint(pid))
	if metricsURL != "" {
		args = append(args, "--edge-metrics", metricsURL)
	}
	args = append(args, "--json", jsonPath, "--max-duration", maxDur.String(), "--quiet")
	rctx, cancel := context.WithTimeout(ctx, maxDur+30*time.Second)
	defer cancel()
	cmd := pinned(rctx, "1", filepath.Join(o.bin, "loadgen"), args...)
	cmd.Env = append(os.Environ(), "LOADGEN_JWT_SECRET="+secret)
	table, err := os.Create(filepath.Join(o.out, name+".txt"))
	if err != nil {
		oc.err = err
		return oc
	}
	defer table.Close()
	cmd.Stdout, cmd.Stderr = table, table
	fmt.Fprintf(stderr, "bench: %s: loadgen %s (CPU 1)\n", name, strings.Join(append([]string{"--preset", rn.preset}, rn.extra...), " "))
	if err := p.start(cmd); err != nil {
		oc.err = err
		return oc
	}
	waitErr := cmd.Wait()
	p.mu.Lock()
	delete(p.live, cmd)
	p.mu.Unlock()
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		oc.err = fmt.Errorf("loadgen: %v, no record (see %s)", waitErr, table.Name())
		return oc
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		oc.err = fmt.Errorf("%s: %w", jsonPath, err)
		return oc
	}
	oc.rec = &rec
	verdict := "ok"
	if !rec.Results.OK {
		verdict = "check FAIL (see " + table.Name() + ")"
	}
	fmt.Fprintf(stderr, "bench: %s: done, %s\n", name, verdict)
	return oc
}

// machineLine describes the machine, from a loadgen record (or this process).
func machineLine(r *record) string {
	if r == nil {
		return fmt.Sprintf("%d cores, %s", runtime.NumCPU(), runtime.Version())
	}
	m := r.Machine
	return fmt.Sprintf("%s, %d cores (edge on CPU 0 with GOMAXPROCS=1, loadgen and NATS on CPU 1), kernel %s, %s", m.CPUModel, m.Cores, m.Kernel, m.GoVersion)
}

// commit is the repository's commit, "-dirty" when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// writeHead prints a table's title, machine and commit lines, and with
// quickNote (what --quick shrank) the warning that its figures are not
// measurements.
func writeHead(w io.Writer, title, machine, commit, quickNote string) {
	fmt.Fprintln(w, title)
	fmt.Fprintln(w, "machine:", machine)
	fmt.Fprintln(w, "commit: ", commit)
	if quickNote != "" {
		fmt.Fprintf(w, "QUICK MODE: %s: these figures are not measurements\n", quickNote)
	}
}

// writeTable prints the set's table.
func writeTable(w io.Writer, rows []row, machine, commit string, quick bool) {
	quickNote := ""
	if quick {
		quickNote = "200 clients, short runs"
	}
	writeHead(w, "eventedge standard load set (issue #8)", machine, commit, quickNote)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tresult\ttarget\tmet\tnotes")
	for _, r := range rows {
		met := "-"
		if r.met != nil {
			met = "no"
			if *r.met {
				met = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.workload, r.figure, r.target, met, r.detail)
	}
	tw.Flush()
}
