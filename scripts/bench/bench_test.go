package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--only", "l5, L1", "--sweep", "60,20,60"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.only, []string{"L1", "L5"}) || !slices.Equal(o.rates, []float64{20, 60}) {
		t.Fatalf("only %v, rates %v", o.only, o.rates)
	}
	if o, _ := parseFlags(nil, io.Discard); !slices.Equal(o.only, workloadNames) || len(o.rates) != 6 {
		t.Fatalf("defaults: only %v, rates %v", o.only, o.rates)
	}
	if o, _ := parseFlags([]string{"--quick"}, io.Discard); !slices.Equal(o.rates, []float64{20, 40}) {
		t.Fatalf("quick sweep %v", o.rates)
	}
	for _, bad := range [][]string{{"--only", "L1,L9"}, {"--sweep", "20,x"}, {"--sweep", "0"}, {"--timeout", "0s"}, {"extra"}, {"--floor", "--only", "L1"}, {"--floor", "--soak", "1m"},
		{"--hub", "--floor"}, {"--hub", "--only", "L5"}, {"--hub", "--soak", "1m"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestPlan(t *testing.T) {
	got := plan("L2", []float64{20, 37.5}, true)
	if len(got) != 2 || got[0].preset != "L2-20" || got[1].preset != "L2-37.5" || !slices.Contains(got[0].extra, "--clients") {
		t.Fatalf("L2 plan %+v", got)
	}
	if got := plan("L4", nil, false); len(got) != 1 || got[0].preset != "L4" || got[0].extra != nil {
		t.Fatalf("L4 plan %+v", got)
	}
}

// rec builds a record from JSON, as loadgen writes it.
func rec(t *testing.T, js string) *record {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestEvaluate(t *testing.T) {
	sweepStep := func(rate float64, lost, late int, p99, perSec float64) outcome {
		return outcome{run: step{preset: "L2"}, rec: rec(t, `{"parameters":{"rate":`+jsonNum(rate)+`},"results":{"ok":true,
			"clients":{"connected":5000},"latency":{"p99Ms":`+jsonNum(p99)+`},
			"delivery":{"expected":1000,"delivered":`+jsonNum(float64(1000-lost))+`,"lost":`+jsonNum(float64(lost))+`,"perSecond":`+jsonNum(perSec)+`},
			"publisher":{"target":1000,"published":1000,"late":`+jsonNum(float64(late))+`}}}`)}
	}
	tests := []struct {
		name, w string
		outs    []outcome
		figure  string
		met     string // "yes", "no", "-"
	}{
		{"L2 highest passing", "L2", []outcome{sweepStep(20, 0, 0, 30, 99e3), sweepStep(40, 0, 10, 60, 199e3), sweepStep(60, 0, 11, 60, 290e3), sweepStep(80, 5, 0, 60, 390e3)},
			"199.0k deliveries/s (rate 40/s × 5000 clients)", "no"},
		{"L2 p99 too high", "L2", []outcome{sweepStep(20, 0, 0, 30, 260e3), sweepStep(40, 0, 0, 500, 300e3)}, "260.0k deliveries/s", "yes"},
		{"L2 none", "L2", []outcome{sweepStep(20, 1, 0, 30, 99e3)}, "no passing step", "no"},
		{"L1", "L1", []outcome{{rec: rec(t, `{"results":{"latency":{"p50Ms":3.21,"p99Ms":49.9},"delivery":{"expected":10,"lost":0}}}`)}},
			"p50 3.2 ms, p99 49.9 ms, loss 0", "yes"},
		{"L3 loss", "L3", []outcome{{rec: rec(t, `{"results":{"latency":{"p99Ms":120},"delivery":{"expected":1000,"lost":10,"perSecond":510000}}}`)}},
			"510.0k delivered/s, loss 10 (1.00 %), p99 120 ms", "no"},
		{"L4", "L4", []outcome{{rec: rec(t, `{"results":{"clients":{"connected":10000},"edge":{"rssPerConnBytes":16000}}}`)}}, "15.6 KiB/conn", "yes"},
		{"L5", "L5", []outcome{{rec: rec(t, `{"results":{"clients":{"connected":5000},"connect":{"wall":0.8}}}`)}}, "0.80 s", "no"},
		{"no record", "L5", []outcome{{run: step{preset: "L5"}, err: os.ErrNotExist}}, "no record", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evaluate(tt.w, tt.outs)
			met := "-"
			if r.met != nil {
				met = map[bool]string{true: "yes", false: "no"}[*r.met]
			}
			if !strings.HasPrefix(r.figure, tt.figure) || met != tt.met || r.target != targets[tt.w] {
				t.Fatalf("got %q met %s (target %q, %s), want %q met %s", r.figure, met, r.target, r.detail, tt.figure, tt.met)
			}
		})
	}
	var b bytes.Buffer
	writeTable(&b, []row{evaluate("L5", tests[6].outs)}, "a machine", "abc", false)
	for _, want := range []string{"workload", "L5", "0.80 s", "≤ 0.75 s", "a machine", "abc"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

// binaries builds bin/edge, bin/loadgen and bin/nats-server once for the
// tests that start real processes, and skips where they cannot run.
func binaries(t *testing.T) string {
	t.Helper()
	needPinning(t)
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "eventedge-bench-bin-"); built.err != nil {
			return
		}
		root, _ := filepath.Abs("../..")
		for name, pkg := range map[string]string{
			"edge": "./services/edge/cmd/edge", "loadgen": "./services/loadgen/cmd/loadgen", "nats-server": "github.com/nats-io/nats-server/v2",
		} {
			dir := root
			if name == "nats-server" {
				dir = filepath.Join(root, "services/edge") // its version is in the edge's go.sum
			}
			cmd := exec.Command("go", "build", "-o", filepath.Join(built.dir, name), pkg)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				built.err = fmt.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.dir
}

// needPinning skips where the bench's processes cannot be pinned to two
// CPUs, and under -short.
func needPinning(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not found (util-linux): the bench pins processes to CPUs")
	}
	if runtime.NumCPU() < 2 {
		t.Skip("the bench needs 2 CPUs (taskset -c 0 and -c 1)")
	}
	if testing.Short() {
		t.Skip("-short: starts real processes")
	}
}

var built struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	exitIfFloorRole() // a process of TestFloorQuick
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestQuickSet runs the whole orchestration once with --quick: real
// binaries, a NATS server, a fresh edge per run. It asserts no timing:
// only that every workload produced a record and the table was printed.
func TestQuickSet(t *testing.T) {
	bin := binaries(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--quick", "--bin", bin, "--out", out, "--timeout", "3m"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	for _, name := range []string{"L1", "L2-20", "L2-40", "L3", "L4", "L5"} {
		if _, err := os.Stat(filepath.Join(out, name+".json")); err != nil {
			t.Errorf("no record of %s: %v", name, err)
		}
	}
	for _, w := range workloadNames {
		if !strings.Contains(stdout.String(), "\n"+w+" ") {
			t.Errorf("table lacks %s", w)
		}
	}
	if !strings.Contains(stdout.String(), "QUICK MODE") || t.Failed() {
		t.Errorf("table:\n%s\nlog:\n%s", stdout.String(), stderr.String())
	}
}

// TestFloorQuick runs the floors with --quick: for each, a writer
// (server) process and a reader (client) process, pinned, over real
// loopback connections. It asserts no timing: only that every message of
// every round arrived, every connection finished its exchanges, and both
// sides' figures were printed.
func TestFloorQuick(t *testing.T) {
	needPinning(t)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"--floor", "--quick", "--timeout", "2m"}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	fp, cp := defaultFloor(true), connectFloor(true)
	for _, want := range []string{"  writer: one round", fmt.Sprintf("; %d received, 0 missing", fp.Conns*fp.Rounds), "  reader: CPU per message",
		fmt.Sprintf(", %d connected, 0 failed;", cp.Conns), fmt.Sprintf("  server: %d served;", cp.Conns)} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestHubReply checks the reference hub's answer: a welcome and a reply
// per subscribe, in order, for the load generator's frame, and an error
// for a frame of any other shape.
func TestHubReply(t *testing.T) {
	got, err := hubReply([]byte(`{"op":"auth","token":"t"}` + "\n" + `{"op":"subscribe","id":1,"room":"project:a"}` + "\n" +
		`{"op":"subscribe","id":7,"room":"user:b","since":3}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"op":"welcome","session":"hub","node":"hub","user":"hub"}` + "\n" + `{"op":"reply","id":1,"ok":true,"seq":0}` + "\n" +
		`{"op":"reply","id":7,"ok":true,"seq":0}`
	if string(got) != want {
		t.Fatalf("reply\n%s\nwant\n%s", got, want)
	}
	for _, bad := range []string{
		`{"op":"subscribe","id":1}`,                              // no auth first
		`{"op":"auth"}` + "\n" + `{"op":"subscribe","room":"x"}`, // a subscribe without id
		`{"op":"auth"}` + "\n" + `{"op":"auth"}`,                 // auth twice
		`{"op":"auth"}` + "\n" + `not json`,
		``,
	} {
		if _, err := hubReply([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestHubTable checks the hub table: rows in the order the runs ran,
// each server's median wall (the mean of the middle two of an even
// count), and a failed run shown but left out of the median.
func TestHubTable(t *testing.T) {
	run := func(server string, wall, serverCPU float64, failed int) hubRun {
		return hubRun{server, outcome{rec: rec(t, fmt.Sprintf(`{"results":{"ok":true,"clients":{"connected":%d,"failed":%d},
			"connect":{"wall":%g,"loadgenCpuSeconds":1,"edgeCpuSeconds":%g}}}`, 1000-failed, failed, wall, serverCPU))}}
	}
	runs := [][]hubRun{
		{run("hub", 1.0, 0.2, 0), run("edge", 1.5, 0.3, 0)},
		{run("edge", 1.7, 0.3, 0), run("hub", 1.2, 0.2, 0)},
		{run("hub", 9.0, 0.2, 5), run("edge", 1.6, 0.3, 0)},
	}
	var b bytes.Buffer
	writeHubTable(&b, runs, "m", "c", false)
	var order []string
	for line := range strings.Lines(b.String()) {
		if f := strings.Fields(line); len(f) > 2 && (f[1] == "hub" || f[1] == "edge") {
			order = append(order, f[0]+f[1])
		}
	}
	if want := []string{"1hub", "1edge", "2edge", "2hub", "3hub", "3edge"}; !slices.Equal(order, want) {
		t.Errorf("rows %v, want %v:\n%s", order, want, b.String())
	}
	for _, want := range []string{"median wall, hub: 1.100 s (2 runs)", "median wall, edge: 1.600 s (3 runs)",
		"995 of 1000", "200 µs / 1000 µs"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestHubQuick runs --hub with --quick: a reference hub process and a
// fresh edge, each taking L5's storm of 200 clients from the real load
// generator. It asserts no timing: that both runs connected every client,
// passed the load generator's check, and were printed side by side.
func TestHubQuick(t *testing.T) {
	bin := binaries(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--hub", "--quick", "--bin", bin, "--out", out, "--timeout", "3m"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s\nlog:\n%s", err, stdout.String(), stderr.String())
	}
	for _, name := range []string{"L5-hub-1", "L5-edge-1"} {
		data, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatalf("no record of %s: %v", name, err)
		}
		r := rec(t, string(data))
		if !r.Results.OK || r.Results.Clients.Connected != 200 || r.Results.Connect == nil || r.Results.Connect.EdgeCPUSeconds == nil {
			t.Errorf("%s: record %s", name, data)
		}
	}
	rows := map[string]bool{}
	for line := range strings.Lines(stdout.String()) {
		if f := strings.Fields(line); len(f) >= 6 && f[0] == "1" && strings.Join(f[2:5], " ") == "200 of 200" {
			rows[f[1]] = true
		}
	}
	if !rows["hub"] || !rows["edge"] {
		t.Errorf("table lacks a row of 200 of 200 clients for the hub or the edge:\n%s", stdout.String())
	}
	for _, want := range []string{"QUICK MODE", "median wall, hub:", "median wall, edge:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
}

// TestSoakShort is the soak's short form (make soak runs 10 minutes): 20 s
// of churn against a fresh edge, after which its goroutines and RSS must
// be back within the margins of their baseline, with no delivery lost.
func TestSoakShort(t *testing.T) {
	bin := binaries(t)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--soak", "20s", "--bin", bin, "--out", out, "--timeout", "4m"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s\nlog:\n%s", err, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(filepath.Join(out, "soak.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec soakRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if !rec.OK || rec.Churn == nil || rec.Churn.Connects == 0 || rec.Delivery == nil || rec.Delivery.Delivered == 0 ||
		rec.ConnectionsOpened < soakClients+rec.Churn.Connects || rec.ConnectionsClosed != rec.ConnectionsOpened {
		t.Errorf("record %s", data)
	}
	if !strings.Contains(stdout.String(), "result: PASS") {
		t.Errorf("table:\n%s", stdout.String())
	}
	t.Logf("\n%s", stdout.String())
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 27
eventedge_connections_closed_total{reason="normal"} 10
eventedge_connections_closed_total{reason="slow {x}"} 2.5
process_resident_memory_bytes 2.5e+07
bad_line{ 1
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 27 || m["eventedge_connections_closed_total"] != 12.5 || m["process_resident_memory_bytes"] != 25e6 || len(m) != 3 {
		t.Fatalf("parsed %v", m)
	}
}

func TestSoakFlagsAndTable(t *testing.T) {
	o, err := parseFlags([]string{"--soak", "10m"}, io.Discard)
	if err != nil || o.soak != 10*time.Minute {
		t.Fatalf("--soak 10m: %v, %v", o.soak, err)
	}
	if o, err := parseFlags([]string{"--soak", "1h"}, io.Discard); err != nil || o.timeout != 65*time.Minute {
		t.Fatalf("--soak 1h: timeout %v, %v; want 1h5m", o.timeout, err)
	}
	for _, bad := range [][]string{{"--soak", "-1s"}, {"--soak", "1m", "--quick"}, {"--soak", "1m", "--only", "L1"}, {"--soak", "1h", "--timeout", "1h"}} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	rec := soakRecord{Baseline: soakFigures{Goroutines: 20, RSSBytes: 20 << 20}, End: soakFigures{Goroutines: 31, RSSBytes: 30 << 20},
		Failures: []string{"goroutines 31 > baseline 20 + 10"}}
	rec.Limits.Goroutines, rec.Limits.RSSBytes = 30, 52<<20
	var b bytes.Buffer
	writeSoakTable(&b, &rec)
	for _, want := range []string{"goroutines", "≤ 30", "20.0 MiB", "result: FAIL", "baseline 20 + 10"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
