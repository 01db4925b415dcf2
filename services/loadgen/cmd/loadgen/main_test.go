package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/loadgen/internal/load"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

const secret = "loadgen-test-secret-0123456789abcdef"

// edgeBin is the edge binary, built once by TestMain.
var edgeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loadgen-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, _ := filepath.Abs("../../../..")
	bins, err := proctest.Build(dir, root, "edge")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	edgeBin = bins["edge"]
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every goroutine Run started has ended (the clients' readers,
		// the publisher's NATS connection, the sampler, keep-alives).
		if err := goleak.Find(goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type testEdge struct {
	url, metrics, nats string
	pid                int
}

// startEdge runs a real edge binary against an embedded NATS server.
func startEdge(t *testing.T) testEdge {
	t.Helper()
	ns := natstest.Start(t)
	addr, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	proctest.Start(t, proctest.Spec{
		Name: "edge", Path: edgeBin, Ready: "http://" + admin + "/readyz",
		Args: []string{"--addr", addr, "--admin-addr", admin, "--nats-url", ns.URL(), "--node-name", "lg-test",
			"--drain-duration", "0s", "--log-level", "warn"},
		Env: []string{"EDGE_JWT_SECRET=" + secret},
	})
	return testEdge{url: "ws://" + addr + "/v1/ws", metrics: "http://" + admin + "/metrics", nats: ns.URL(), pid: pidOf(t, edgeBin)}
}

// pidOf finds the process running binary path (unique to this test run).
func pidOf(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			return pid
		}
	}
	t.Fatalf("no process runs %s", path)
	return 0
}

// record is the part of the JSON record the tests look at.
type record struct {
	Machine struct {
		CPUModel string `json:"cpuModel"`
		Cores    int    `json:"cores"`
		Kernel   string `json:"kernel"`
	} `json:"machine"`
	Commit     *string        `json:"commit"`
	Scenario   string         `json:"scenario"`
	Parameters map[string]any `json:"parameters"`
	Results    struct {
		OK      bool `json:"ok"`
		Clients struct {
			Requested, Connected, Failed int
		} `json:"clients"`
		Connect *struct {
			Wall              float64  `json:"wall"`
			PerSecond         float64  `json:"perSecond"`
			LoadgenCPUSeconds float64  `json:"loadgenCpuSeconds"`
			EdgeCPUSeconds    *float64 `json:"edgeCpuSeconds"`
		} `json:"connect"`
		Latency *struct {
			Count uint64  `json:"count"`
			P50Ms float64 `json:"p50Ms"`
			P99Ms float64 `json:"p99Ms"`
			MaxMs float64 `json:"maxMs"`
		} `json:"latency"`
		Delivery *delivery `json:"delivery"`
		Logs     *struct {
			Clients, Events, Lines, Mismatched int
			First                              string
		} `json:"logs"`
		Edge *struct {
			Samples         int      `json:"samples"`
			RSSEndBytes     int64    `json:"rssEndBytes"`
			RSSPerConnBytes *float64 `json:"rssPerConnBytes"`
		} `json:"edge"`
		Metrics *struct {
			End               map[string]float64 `json:"end"`
			EdgeLatencyMeanMs *float64           `json:"edgeLatencyMeanMs"`
		} `json:"metrics"`
		Rooms *struct {
			ProjectRooms, ClientsWithoutLogs, UserRoomEvents, LogsEvents, Forbidden int
			ProgressEligible, ProgressDelivered                                     int
			PublishedByType                                                         map[string]int
		} `json:"rooms"`
		Groups map[string]*struct {
			Clients, Connected int
			CutOff, Behind     int
			Delivery           *delivery
			Latency            *struct{ Count uint64 }
			Closed             map[string]int
		} `json:"groups"`
		Resume *struct {
			Since    uint64   `json:"since"`
			Gap      int      `json:"gap"`
			Complete int      `json:"complete"`
			Wall     *float64 `json:"wall"`
			Replay   *struct {
				Count uint64 `json:"count"`
			} `json:"replay"`
		} `json:"resume"`
		Churn *struct {
			Target, Connects, Disconnects, Failed int
			Failures                              map[string]int
			ClosedByServer                        map[string]int
			Delivery                              *delivery
		} `json:"churn"`
	} `json:"results"`
}

type delivery struct {
	Published, Expected, Delivered, Lost, Duplicated, OutOfOrder, Unexpected, MessageBytes int
}

// clean reports whether d shows no loss, duplicate, reordering or
// unexpected event.
func (d *delivery) clean() bool {
	return d != nil && d.Lost == 0 && d.Duplicated == 0 && d.OutOfOrder == 0 && d.Unexpected == 0
}

// runLoadgen runs the command as main would and returns its table and
// decoded JSON record.
func runLoadgen(t *testing.T, e testEdge, args ...string) (string, *record) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.json")
	args = append([]string{"--url", e.url, "--nats-url", e.nats, "--edge-pid", strconv.Itoa(e.pid),
		"--edge-metrics", e.metrics, "--json", out, "--max-duration", "60s"}, args...)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	getenv := func(k string) string {
		if k == "LOADGEN_JWT_SECRET" {
			return secret
		}
		return ""
	}
	gcBefore := debug.SetGCPercent(100)
	debug.SetGCPercent(gcBefore)
	if err := run(ctx, args, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	if gc := debug.SetGCPercent(gcBefore); gc != gcBefore {
		t.Errorf("run left the GC percent at %d, not %d as it found it", gc, gcBefore)
	}
	t.Logf("table:\n%s", stdout.String())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("JSON record: %v\n%s", err, b)
	}
	// The shape every scenario shares.
	if rec.Machine.Cores < 1 || rec.Machine.Kernel == "" || !strings.Contains(string(b), `"cpuModel"`) || rec.Commit == nil {
		t.Errorf("machine/commit: %+v %v", rec.Machine, rec.Commit)
	}
	if rec.Parameters["clients"] != float64(20) || rec.Parameters["url"] != e.url || rec.Parameters["gcPercent"] != float64(load.DefaultGCPercent) {
		t.Errorf("parameters: %v", rec.Parameters)
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf(", own GC %d%%", load.DefaultGCPercent)) {
		t.Errorf("the table's parameters lack the load generator's GC:\n%s", stdout.String())
	}
	if _, ok := rec.Parameters["JWTSecret"]; ok || strings.Contains(string(b), secret) {
		t.Error("the JSON record carries the secret")
	}
	r := rec.Results
	if !r.OK || r.Clients.Requested != 20 || r.Clients.Connected != 20 || r.Clients.Failed != 0 {
		t.Errorf("ok %v, clients %+v", r.OK, r.Clients)
	}
	if r.Connect == nil || r.Connect.Wall <= 0 || r.Connect.PerSecond <= 0 || r.Connect.LoadgenCPUSeconds <= 0 ||
		r.Connect.EdgeCPUSeconds == nil || *r.Connect.EdgeCPUSeconds < 0 {
		t.Errorf("connect: %+v (the CPU while connecting: the load generator's used some, the edge's sampled)", r.Connect)
	}
	if !strings.Contains(stdout.String(), "cpu while connecting") {
		t.Errorf("no connect CPU row:\n%s", stdout.String())
	}
	if r.Edge == nil || r.Edge.Samples < 1 || r.Edge.RSSEndBytes <= 0 {
		t.Errorf("edge: %+v", r.Edge)
	}
	if r.Metrics == nil || r.Metrics.End == nil {
		t.Errorf("metrics: %+v", r.Metrics)
	} else if got := r.Metrics.End["eventedge_connections"]; got != 20 {
		// The end snapshot is taken before the clients are closed.
		t.Errorf("metrics end: eventedge_connections = %v, want 20 (%v)", got, r.Metrics.End)
	}
	if !strings.Contains(stdout.String(), "scenario") {
		t.Errorf("no table on stdout:\n%s", stdout.String())
	}
	return stdout.String(), &rec
}

func TestBroadcast(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "broadcast", "--clients", "20", "--rate", "20", "--duration", "2s",
		"--source-addrs", "3", "--dialers", "5")
	if rec.Scenario != "broadcast" {
		t.Errorf("scenario %q", rec.Scenario)
	}
	d := rec.Results.Delivery
	if d == nil {
		t.Fatal("no delivery section")
	}
	if d.Published != 40 || d.Expected != 20*40 || d.Delivered != d.Expected {
		t.Errorf("published %d, expected %d, delivered %d; want 40, 800, 800", d.Published, d.Expected, d.Delivered)
	}
	if d.Lost != 0 || d.Duplicated != 0 || d.OutOfOrder != 0 || d.Unexpected != 0 || d.MessageBytes <= 0 {
		t.Errorf("delivery check: %+v", d)
	}
	l := rec.Results.Latency
	if l == nil || l.Count != uint64(d.Delivered) || l.MaxMs <= 0 || l.P50Ms > l.P99Ms || l.P99Ms > l.MaxMs {
		t.Errorf("latency: %+v", l)
	}
	// The edge's own mean: its frames are written before the clients read
	// them, so it cannot exceed the clients' slowest delivery.
	if m := rec.Results.Metrics; m == nil || m.EdgeLatencyMeanMs == nil || *m.EdgeLatencyMeanMs <= 0 || l != nil && *m.EdgeLatencyMeanMs > l.MaxMs {
		t.Errorf("edge latency mean: %+v (clients' max %v ms)", m, l)
	}
}

// TestBroadcastDashboardMix: the dashboard's mix of event types, sizes
// and permissions reaches every client exactly once, in order.
func TestBroadcastDashboardMix(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "broadcast", "--mix", "dashboard", "--clients", "20", "--rate", "40", "--duration", "2s",
		"--dialers", "5")
	if rec.Parameters["mix"] != "dashboard" || rec.Parameters["protocol"] != "json" {
		t.Errorf("parameters: %v", rec.Parameters)
	}
	d := rec.Results.Delivery
	if !d.clean() || d.Published != 80 || d.Expected != 20*80 || d.Delivered != d.Expected {
		t.Errorf("delivery: %+v", d)
	}
	if m := rec.Results.Metrics; m == nil || m.End["eventedge_deliveries_total"] != float64(d.Expected) {
		t.Errorf("edge deliveries %v, want %d", m, d.Expected)
	}
}

// TestBroadcastJobMix: one job's progress with log lines at 50 events/s,
// five times the edge's --progress-rate: every client gets the last event,
// and the others it gets in order, none twice; every other delivery was
// coalesced by the edge, and its clients shared the merged events'
// encodings.
func TestBroadcastJobMix(t *testing.T) {
	for _, proto := range []string{"json", "protobuf"} {
		t.Run(proto, func(t *testing.T) {
			e := startEdge(t)
			_, rec := runLoadgen(t, e, "--scenario", "broadcast", "--mix", "job", "--protocol", proto, "--clients", "20", "--rate", "50", "--duration", "2s",
				"--dialers", "5")
			if rec.Parameters["mix"] != "job" || !rec.Results.OK {
				t.Errorf("parameters %v, ok %v", rec.Parameters, rec.Results.OK)
			}
			d, l, m := rec.Results.Delivery, rec.Results.Latency, rec.Results.Metrics
			if !d.clean() || d.Published != 100 || d.Expected != 20 || d.Delivered != 20 {
				t.Errorf("delivery: %+v; want clean, 100 published, the last one expected and delivered at each of the 20 clients", d)
			}
			if l == nil || m == nil {
				t.Fatalf("latency %+v, metrics %+v", l, m)
			}
			// Each of the 2,000 deliveries was sent (and received: its
			// latency recorded) or superseded by a newer event of the task.
			coalesced := m.End["eventedge_coalesced_total"]
			if coalesced <= 0 || float64(l.Count)+coalesced != 20*100 {
				t.Errorf("%d events received, %v coalesced by the edge; want some coalesced, 2000 together", l.Count, coalesced)
			}
			encoded, shared := m.End[`eventedge_coalesced_encodings_total{result="encoded"}`], m.End[`eventedge_coalesced_encodings_total{result="shared"}`]
			if encoded <= 0 || shared <= 0 {
				t.Errorf("merged events encoded %v, shared %v; want both (20 clients of one room)", encoded, shared)
			}
			// The log lines at 16 clients: each event they got carried the
			// lines of the events it superseded, in order.
			if lg := rec.Results.Logs; lg == nil || lg.Clients != 16 || lg.Events < 16 || lg.Lines < 100 || lg.Mismatched != 0 {
				t.Errorf("log check: %+v; want 16 clients, every published line (at least 100) in the events they got, none mismatched", lg)
			}
		})
	}
}

// TestBroadcastProtobuf: in the protobuf mode (with the dashboard mix, so
// that every event type and the edge's appended type and priority pass
// through ScanBinary) every client gets every event once, in order, and
// nothing it cannot read.
func TestBroadcastProtobuf(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "broadcast", "--protocol", "protobuf", "--mix", "dashboard", "--clients", "20",
		"--rate", "40", "--duration", "2s", "--dialers", "5")
	if rec.Parameters["protocol"] != "protobuf" || rec.Parameters["mix"] != "dashboard" {
		t.Errorf("parameters: %v", rec.Parameters)
	}
	d := rec.Results.Delivery
	if !d.clean() || d.Published != 80 || d.Expected != 20*80 || d.Delivered != d.Expected || d.MessageBytes <= 0 {
		t.Errorf("delivery: %+v", d)
	}
	if l := rec.Results.Latency; l == nil || l.Count != uint64(d.Delivered) || l.MaxMs <= 0 {
		t.Errorf("latency: %+v", l)
	}
	if m := rec.Results.Metrics; m == nil || m.End["eventedge_deliveries_total"] != float64(d.Expected) {
		t.Errorf("edge deliveries %v, want %d", m, d.Expected)
	}
}

func TestRooms(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "rooms", "--clients", "20", "--rooms", "4", "--rate", "40", "--duration", "2s",
		"--logs-fraction", "0.3", "--no-logs-fraction", "0.5", "--user-fraction", "0.25", "--dialers", "5")
	if rec.Scenario != "rooms" || rec.Parameters["rooms"] != float64(4) || rec.Parameters["noLogsFraction"] != 0.5 {
		t.Errorf("scenario %q, parameters %v", rec.Scenario, rec.Parameters)
	}
	rs, d := rec.Results.Rooms, rec.Results.Delivery
	if rs == nil || d == nil {
		t.Fatalf("rooms %+v, delivery %+v", rs, d)
	}
	// 80 events, the four types in turn.
	for _, typ := range []string{"task_created", "task_updated", "task_deleted", "task_progress"} {
		if rs.PublishedByType[typ] != 20 {
			t.Errorf("published %s: %d, want 20 (%v)", typ, rs.PublishedByType[typ], rs.PublishedByType)
		}
	}
	if d.Published != 80 || rs.ProjectRooms != 4 || rs.ClientsWithoutLogs != 10 {
		t.Errorf("published %d, rooms %+v", d.Published, rs)
	}
	// Both kinds of room and both kinds of event were used, and nobody got
	// what it may not see.
	if rs.UserRoomEvents == 0 || rs.UserRoomEvents == 80 || rs.LogsEvents == 0 || rs.LogsEvents == 80 || rs.Forbidden != 0 {
		t.Errorf("rooms: %+v", rs)
	}
	// Expected: at most the 60 strict events × the 5 clients of a project
	// room; at least what the user-room events alone would give.
	if !d.clean() || d.Delivered != d.Expected || d.Expected == 0 || d.Expected > 60*5 {
		t.Errorf("delivery: %+v", d)
	}
	if rs.ProgressEligible == 0 || rs.ProgressDelivered != rs.ProgressEligible {
		t.Errorf("task_progress: %d/%d", rs.ProgressDelivered, rs.ProgressEligible)
	}
	// The edge's own count agrees with what the load generator expected.
	if m := rec.Results.Metrics; m == nil || m.End["eventedge_deliveries_total"] != float64(d.Expected+rs.ProgressEligible) {
		t.Errorf("edge deliveries %v, want %d expected + %d task_progress", m, d.Expected, rs.ProgressEligible)
	}
	if l := rec.Results.Latency; l == nil || l.Count != uint64(d.Delivered+rs.ProgressDelivered) {
		t.Errorf("latency: %+v, want count %d", l, d.Delivered+rs.ProgressDelivered)
	}
}

func TestSlow(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "slow", "--clients", "20", "--slow-fraction", "0.25", "--slow-read-delay", "5ms",
		"--rate", "20", "--duration", "2s", "--dialers", "5")
	if rec.Parameters["slowFraction"] != 0.25 || rec.Parameters["slowReadDelay"] != "5ms" {
		t.Errorf("parameters: %v", rec.Parameters)
	}
	g := rec.Results.Groups
	fast, slow := g["fast"], g["slow"]
	if fast == nil || slow == nil {
		t.Fatalf("groups: %v", g)
	}
	if fast.Clients != 15 || fast.Connected != 15 || slow.Clients != 5 || slow.Connected != 5 {
		t.Errorf("fast %d/%d, slow %d/%d connected", fast.Connected, fast.Clients, slow.Connected, slow.Clients)
	}
	// The fast clients: everything, once, in order, and never closed.
	if d := fast.Delivery; !d.clean() || d.Published != 40 || d.Expected != 15*40 || d.Delivered != d.Expected || fast.Closed != nil {
		t.Errorf("fast: %+v, closed %v", d, fast.Closed)
	}
	if fast.Latency == nil || fast.Latency.Count != 15*40 {
		t.Errorf("fast latency: %+v", fast.Latency)
	}
	// The slow ones: every event up to the last each received, once, in
	// order; what follows only cut off by a close or still queued. At 5 ms
	// per event against 20 events/s they keep up: nothing is left.
	d := slow.Delivery
	if !d.clean() || d.Delivered != d.Expected {
		t.Errorf("slow: %+v", d)
	}
	if slow.Closed == nil && (d.Expected != 5*40 || slow.CutOff != 0 || slow.Behind != 0) {
		t.Errorf("slow clients not closed: expected %d, cut off %d, behind %d; want 200, 0, 0", d.Expected, slow.CutOff, slow.Behind)
	}
	if fast.CutOff != 0 || fast.Behind != 0 {
		t.Errorf("fast: cut off %d, behind %d", fast.CutOff, fast.Behind)
	}
	if all := rec.Results.Delivery; all == nil || all.Expected != 20*40 {
		t.Errorf("delivery: %+v", all)
	}
}

func TestChurn(t *testing.T) {
	for _, protocol := range []string{"json", "protobuf"} {
		t.Run(protocol, func(t *testing.T) { testChurn(t, protocol) })
	}
}

func testChurn(t *testing.T, protocol string) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "churn", "--clients", "20", "--rate", "20", "--duration", "2s",
		"--churn-rate", "10", "--churn-life", "500ms", "--dialers", "5", "--protocol", protocol)
	if rec.Parameters["churnRate"] != float64(10) || rec.Parameters["churnLife"] != "500ms" {
		t.Errorf("parameters: %v", rec.Parameters)
	}
	c := rec.Results.Churn
	if c == nil {
		t.Fatal("no churn section")
	}
	if c.Target != 20 || c.Connects != 20 || c.Disconnects != 20 || c.Failed != 0 || c.Failures != nil || c.ClosedByServer != nil {
		t.Errorf("churn: %+v", c)
	}
	if cd := c.Delivery; cd == nil || cd.Duplicated != 0 || cd.OutOfOrder != 0 || cd.Unexpected != 0 || cd.Delivered == 0 {
		t.Errorf("churn delivery: %+v", cd)
	}
	// The steady clients: every event, once, in order.
	d := rec.Results.Delivery
	if !d.clean() || d.Published != 40 || d.Expected != 20*40 || d.Delivered != d.Expected {
		t.Errorf("steady delivery: %+v", d)
	}
}

// TestResume: every client resumes after the marker and receives the
// 10-event gap replayed, once each, in order; the edge counts the resumes
// and the replays.
func TestResume(t *testing.T) {
	for _, protocol := range []string{"json", "protobuf"} {
		t.Run(protocol, func(t *testing.T) { testResume(t, protocol) })
	}
}

func testResume(t *testing.T, protocol string) {
	e := startEdge(t)
	table, rec := runLoadgen(t, e, "--scenario", "resume", "--clients", "20", "--rate", "100", "--duration", "100ms",
		"--dialers", "5", "--protocol", protocol)
	if !rec.Results.OK {
		t.Errorf("run not ok")
	}
	rs := rec.Results.Resume
	if rs == nil {
		t.Fatal("no resume section")
	}
	if rs.Since == 0 || rs.Gap != 10 || rs.Complete != 20 || rs.Wall == nil || *rs.Wall <= 0 || rs.Replay == nil || rs.Replay.Count != 20 {
		t.Errorf("resume: %+v", rs)
	}
	d := rec.Results.Delivery
	if !d.clean() || d.Published != 10 || d.Expected != 20*10 || d.Delivered != d.Expected {
		t.Errorf("delivery: %+v", d)
	}
	if m := rec.Results.Metrics; m == nil || m.End["eventedge_resumes_total"] != 20 || m.End["eventedge_replayed_events_total"] != 200 {
		t.Errorf("edge metrics: %+v", m)
	}
	if !strings.Contains(table, "replayed to 20 of 20 clients") {
		t.Errorf("table without the resume row:\n%s", table)
	}
}

func TestIdle(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "idle", "--clients", "20", "--duration", "1s")
	if rec.Results.Edge == nil || rec.Results.Edge.RSSPerConnBytes == nil {
		t.Fatalf("no RSS per connection: %+v", rec.Results.Edge)
	}
	if rec.Results.Delivery != nil || rec.Results.Latency != nil {
		t.Error("idle reports deliveries")
	}
}

func TestConnect(t *testing.T) {
	e := startEdge(t)
	_, rec := runLoadgen(t, e, "--scenario", "connect", "--clients", "20", "--dialers", "10")
	if rec.Scenario != "connect" {
		t.Errorf("scenario %q", rec.Scenario)
	}
}

func TestConnectFailuresByReason(t *testing.T) {
	// A wrong secret: every client is refused with 4001, counted by reason.
	e := startEdge(t)
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	err := run(context.Background(), []string{"--url", e.url, "--scenario", "connect", "--clients", "5",
		"--jwt-secret", "another-secret-of-at-least-32-bytes!!", "--quiet"}, getenv, &stdout, &stderr)
	if err != errCheckFailed {
		t.Fatalf("run = %v, want errCheckFailed\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "failed: dial: close 4001") {
		t.Errorf("table lacks the 4001 failures:\n%s", stdout.String())
	}
}

func TestRefusals(t *testing.T) {
	getenv := func(string) string { return secret }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "rooms", "--rooms", "2000"}, "1-1000"},
		{[]string{"--scenario", "rooms", "--no-logs-fraction", "1.5"}, "--no-logs-fraction"},
		{[]string{"--scenario", "slow", "--slow-fraction", "0"}, "--slow-fraction"},
		{[]string{"--scenario", "churn", "--churn-rate", "-1"}, "--churn-rate"},
		{[]string{"--scenario", "churn", "--nats-url", "nats://10.0.0.1:4222"}, "not a loopback address"},
		{[]string{"--scenario", "nope"}, "want one of"},
		{[]string{"--scenario", "connect", "--url", "ws://example.com/v1/ws"}, "not a loopback address"},
		{[]string{"--scenario", "broadcast", "--nats-url", "nats://10.0.0.1:4222"}, "not a loopback address"},
		{[]string{"--scenario", "connect", "--edge-metrics", "http://192.168.1.1:9090/metrics"}, "not a loopback address"},
		{[]string{"--scenario", "connect", "--allow-remote", "--url", "ws://example.com/v1/ws", "--source-addrs", "4"}, "only for a loopback"},
		{[]string{"--scenario", "broadcast", "--duration", "10m"}, "--max-duration"},
		{[]string{"--scenario", "connect", "--source-addrs", "300"}, "1-254"},
		{[]string{"--scenario", "broadcast", "--protocol", "xml"}, "--protocol \"xml\": want json or protobuf"},
		{[]string{"--scenario", "broadcast", "--mix", "real"}, "--mix \"real\": want one of padded, dashboard"},
		{[]string{"--scenario", "resume", "--mix", "dashboard"}, "--mix dashboard: for broadcast, slow and churn"},
		{[]string{"--scenario", "rooms", "--mix", "dashboard"}, "rooms publishes its own mix"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, getenv, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--scenario", "connect"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Errorf("no secret: %v", err)
	}
}

func TestPresets(t *testing.T) {
	getenv := func(string) string { return secret }
	for _, tc := range []struct {
		args []string
		want load.Config // the fields checked
	}{
		{[]string{"--preset", "L1"}, load.Config{Scenario: "broadcast", Clients: 5000, Rate: 10, Duration: 20 * time.Second, SourceAddrs: 8, Dialers: 200}},
		{[]string{"--preset", "L2-60"}, load.Config{Scenario: "broadcast", Clients: 5000, Rate: 60, Duration: 10 * time.Second, SourceAddrs: 8, Dialers: 200}},
		{[]string{"--preset", "L3", "--clients", "100", "--duration", "2s"}, load.Config{Scenario: "broadcast", Clients: 100, Rate: 100, Duration: 2 * time.Second, SourceAddrs: 8, Dialers: 200}},
		{[]string{"--source-addrs", "2", "--preset", "L4"}, load.Config{Scenario: "idle", Clients: 10000, Rate: 10, Duration: 20 * time.Second, SourceAddrs: 2, Dialers: 200}},
		{[]string{"--preset", "L5", "--dialers", "10"}, load.Config{Scenario: "connect", Clients: 5000, Rate: 10, Duration: 10 * time.Second, SourceAddrs: 8, Dialers: 10}},
		{[]string{"--preset", "resume"}, load.Config{Scenario: "resume", Clients: 5000, Rate: 200, Duration: 100 * time.Millisecond, SourceAddrs: 8, Dialers: 200, Drain: 30 * time.Second}},
		{[]string{"--preset", "job"}, load.Config{Scenario: "broadcast", Mix: load.MixJob, Clients: 5000, Rate: 50, Duration: 10 * time.Second, SourceAddrs: 8, Dialers: 200, Drain: 20 * time.Second}},
	} {
		cfg, _, _, err := parseFlags(tc.args, getenv, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		got := load.Config{Scenario: cfg.Scenario, Mix: cfg.Mix, Clients: cfg.Clients, Rate: cfg.Rate, Duration: cfg.Duration, SourceAddrs: cfg.SourceAddrs, Dialers: cfg.Dialers}
		if tc.want.Drain != 0 {
			got.Drain = cfg.Drain
		}
		if tc.want.Mix == "" {
			tc.want.Mix = load.MixPadded
		}
		if got != tc.want {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
		if cfg.Preset != tc.args[slices.Index(tc.args, "--preset")+1] || cfg.PayloadBytes != 200 {
			t.Errorf("%v: preset %q, payload %d", tc.args, cfg.Preset, cfg.PayloadBytes)
		}
	}
	for _, bad := range []string{"L9", "L2-", "L2-x", "L2-0"} {
		if _, _, _, err := parseFlags([]string{"--preset", bad}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "--preset") {
			t.Errorf("--preset %s: err %v", bad, err)
		}
	}
}

// TestGCPercentFlag checks --gc-percent: its default, GC off, and the
// values refused with an error that names the flag.
func TestGCPercentFlag(t *testing.T) {
	getenv := func(string) string { return secret }
	for args, want := range map[string]int{"": load.DefaultGCPercent, "--gc-percent -1": -1, "--gc-percent 10": 10, "--gc-percent 10000": 10000} {
		cfg, _, _, err := parseFlags(strings.Fields(args), getenv, io.Discard)
		if err != nil || cfg.GCPercent != want {
			t.Errorf("%q: GCPercent %d, %v; want %d", args, cfg.GCPercent, err, want)
		}
	}
	for _, bad := range []string{"0", "9", "-2", "10001", "x"} {
		if _, _, _, err := parseFlags([]string{"--gc-percent", bad}, getenv, io.Discard); err == nil || !strings.Contains(err.Error(), "gc-percent") {
			t.Errorf("--gc-percent %s: err %v", bad, err)
		}
	}
}

// TestScanLineOnRealFrames checks the lean path's scanner against what a
// real edge sends (the field order of its encoder is not a promise of the
// protocol, and the scanner does not rely on it): an event with "seq" and
// "room" inside its payload and metadata, and the subscribe reply.
func TestScanLineOnRealFrames(t *testing.T) {
	e := startEdge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "scan-u1", "exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"tasks:read"}, "projects": []string{"scan"},
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, e.url, client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pos, err := c.SubscribeFrom(ctx, "project:scan", nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.nats)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.EnsureStreamExists(ctx, js, events.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	rm := room.Project("scan")
	ev := events.TaskUpdated(rm, "lg", "t1", &pb.Task{Title: `"seq":999,"room":"project:x" \ } ]`}, "title")
	ev.Metadata = map[string]string{"seq": "12345", "op": "reset"}
	ev.RequiredPermission = "tasks:read"
	ack, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatal(err)
	}
	var m *client.Message
	select {
	case m = <-c.Messages():
	case <-ctx.Done():
		t.Fatal("no event")
	}
	var l load.Line
	if err := load.ScanLine(m.Raw, &l); err != nil {
		t.Fatalf("%v: %s", err, m.Raw)
	}
	if l.Op != load.OpEvent || string(l.Room) != "project:scan" || l.Seq != ack.Sequence || l.Seq <= pos ||
		string(l.Type) != events.TypeTaskUpdated || string(l.Permission) != "tasks:read" {
		t.Fatalf("scanned %+v from %s (stream seq %d)", l, m.Raw, ack.Sequence)
	}
	if ts := time.Unix(0, l.TS); !ts.Equal(m.Event.Timestamp) || !ts.Equal(ev.Timestamp.AsTime()) {
		t.Fatalf("timestamp %v (%d), client %v, sent %v", ts, l.TS, m.Event.Timestamp, ev.Timestamp.AsTime())
	}
	if !strings.Contains(string(m.Raw), `\"seq\":999`) {
		t.Fatalf("the payload's seq is not in the frame: %s", m.Raw)
	}
}
