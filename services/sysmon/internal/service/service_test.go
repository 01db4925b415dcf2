package service_test

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
	"github.com/eventedge/eventedge/services/sysmon/internal/service"
	"github.com/eventedge/eventedge/services/sysmon/internal/sysmontest"
	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// TestMain fails the package if a test leaves a goroutine behind: Shutdown
// must stop the prober, the reporter, the NATS connection and the admin
// listener.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const (
	healthy  = pb.HealthStatus_HEALTH_STATUS_HEALTHY
	degraded = pb.HealthStatus_HEALTH_STATUS_DEGRADED
	errored  = pb.HealthStatus_HEALTH_STATUS_ERROR
)

// startService starts sysmon against natsURL with intervals short enough
// for tests (mutate adjusts them); it is shut down when the test ends.
func startService(t *testing.T, natsURL string, mutate func(*service.Options)) (*service.Service, string) {
	t.Helper()
	opts := service.Options{
		NATSURL:       natsURL,
		AdminAddr:     "127.0.0.1:0",
		Interval:      time.Hour, // only changes are published, unless a test says otherwise
		CheckInterval: 20 * time.Millisecond,
		ProbeInterval: 100 * time.Millisecond,
		Monitor:       monitor.Options{NodeSilence: 400 * time.Millisecond},
	}
	if mutate != nil {
		mutate(&opts)
	}
	svc, err := service.New(opts, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	if err := svc.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return svc, "http://" + svc.AdminAddr().String()
}

// statuses subscribes to live.global, where the EVENTS stream re-publishes
// what sysmon publishes, and returns the decoded events.
func statuses(t *testing.T, nc *nats.Conn) <-chan *pb.Event {
	t.Helper()
	ch := make(chan *pb.Event, 100)
	sub, err := nc.Subscribe(room.Global.LiveSubject(), func(m *nats.Msg) {
		ev, err := events.Decode(m.Data, m.Header.Get(events.HeaderContentType))
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject, err)
			return
		}
		if m.Header.Get(events.HeaderSequence) == "" {
			t.Errorf("event %s without %s: not re-published by the stream", ev.Id, events.HeaderSequence)
		}
		ch <- ev
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func next(t *testing.T, ch <-chan *pb.Event, timeout time.Duration) *pb.Event {
	t.Helper()
	select {
	case ev := <-ch:
		if ev.GetSystemStatus() == nil {
			t.Fatalf("event %s on global is %s, want system_status", ev.Id, ev.Type)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no system_status within %s", timeout)
	}
	return nil
}

// waitFor skips events until one satisfies ok.
func waitFor(t *testing.T, ch <-chan *pb.Event, timeout time.Duration, what string, ok func(*pb.SystemStatus) bool) *pb.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no system_status with %s within %s", what, timeout)
		}
		select {
		case ev := <-ch:
			if ok(ev.GetSystemStatus()) {
				return ev
			}
		case <-time.After(left):
			t.Fatalf("no system_status with %s within %s", what, timeout)
		}
	}
}

func alertIDs(s *pb.SystemStatus) []string {
	var ids []string
	for _, a := range s.GetAlerts() {
		ids = append(ids, a.GetId())
	}
	return ids
}

// edgeReporter publishes an edge node's stats every 50ms, like an edge
// node does every 5s, until stopped.
type edgeReporter struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func reportEdge(t *testing.T, nc *nats.Conn, e stats.Edge) *edgeReporter {
	t.Helper()
	r := &edgeReporter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			e.At = time.Now()
			b, err := e.Encode()
			if err != nil {
				t.Errorf("encode: %v", err)
				return
			}
			if err := nc.Publish(stats.EdgeSubject, b); err != nil {
				t.Errorf("publish stats: %v", err)
				return
			}
			select {
			case <-r.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(r.Stop)
	return r
}

// Stop stops publishing and returns once the last message was published.
func (r *edgeReporter) Stop() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

func edge(name string) stats.Edge {
	return stats.Edge{Node: name, Connections: 3, Rooms: 2, EventsInPerSecond: 1, EventsOutPerSecond: 4, P99DeliveryLatencyMs: 2, NATSRTTMs: 0.3}
}

// TestEdgeSilenceDegradesAndRecovers: sysmon turns degraded with an alert
// when an edge node stops reporting, and healthy again when it returns —
// each change published at once (the periodic interval is an hour, so every
// event here is a change).
func TestEdgeSilenceDegradesAndRecovers(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	sysmontest.EnsureStream(t, js, events.StreamConfig{})
	ch := statuses(t, nc)

	reportEdge(t, nc, edge("edge-1"))
	edge2 := reportEdge(t, nc, edge("edge-2"))
	_, admin := startService(t, ns.ClientURL(), nil)

	first := next(t, ch, 10*time.Second)
	if st := first.GetSystemStatus(); st.Status != healthy || len(st.Alerts) != 0 {
		t.Fatalf("first status %s %q, want healthy without alerts", st.Status, alertIDs(st))
	}
	if p := events.Priority(first); p != pb.Priority_PRIORITY_NORMAL {
		t.Errorf("priority without alerts = %s, want normal", p)
	}
	if first.Metadata["source"] != "sysmon" || first.Metadata["trigger"] != "change" {
		t.Errorf("metadata = %v, want source sysmon, trigger change", first.Metadata)
	}
	sysmontest.Eventually(t, 5*time.Second, func() bool {
		return sysmontest.Metric(t, admin, "sysmon_edge_nodes") == 2
	}, "two edge nodes counted")
	// The EVENTS stream has a per-subject limit only, the embedded server
	// no account limits: every fill is exported, at 0.
	for _, limit := range []string{"stream_bytes", "stream_messages", "account_storage", "account_memory"} {
		if v := sysmontest.Metric(t, admin, `sysmon_jetstream_fill_ratio{limit="`+limit+`"}`); v != 0 {
			t.Errorf("sysmon_jetstream_fill_ratio{limit=%q} = %v, want 0", limit, v)
		}
	}

	lastBefore := time.Now()
	edge2.Stop()
	ev := next(t, ch, 10*time.Second)
	reported := time.Now()
	st := ev.GetSystemStatus()
	if st.Status != degraded || !slices.Equal(alertIDs(st), []string{"edge-silent:edge-2"}) {
		t.Fatalf("after edge-2 stopped: %s %q, want degraded [edge-silent:edge-2]", st.Status, alertIDs(st))
	}
	a := st.Alerts[0]
	if a.Severity != pb.Severity_SEVERITY_WARNING || !strings.HasPrefix(a.Message, "edge-2: no stats for ") {
		t.Errorf("alert = %v, want a warning \"edge-2: no stats for …\"", a)
	}
	// since is when sysmon received edge-2's last stats: at most one
	// reporting period (50ms) before the stop began, with slack for -race,
	// and before the status that reports the silence (the last message,
	// published before Stop returned, may arrive after it).
	if since := a.Since.AsTime(); since.After(reported) || since.Before(lastBefore.Add(-time.Second)) {
		t.Errorf("since = %s, want edge-2's last stats (the stop began at %s, the status came at %s)", since, lastBefore, reported)
	}
	if p := events.Priority(ev); p != pb.Priority_PRIORITY_HIGH {
		t.Errorf("priority with alerts = %s, want high", p)
	}
	if st.Metrics.GetEdgeNodes() != 1 || st.Metrics.GetConnections() != 3 {
		t.Errorf("metrics = %v, want 1 edge node with 3 connections", st.Metrics)
	}
	if v := sysmontest.Metric(t, admin, `sysmon_status{status="degraded"}`); v != 1 {
		t.Errorf(`sysmon_status{status="degraded"} = %v, want 1`, v)
	}

	reportEdge(t, nc, edge("edge-2"))
	ev = next(t, ch, 10*time.Second)
	if st := ev.GetSystemStatus(); st.Status != healthy || len(st.Alerts) != 0 {
		t.Fatalf("after edge-2 returned: %s %q, want healthy without alerts", st.Status, alertIDs(st))
	}
	if ev.Metadata["trigger"] != "change" {
		t.Errorf("trigger = %q, want change", ev.Metadata["trigger"])
	}
	// The event can reach this test before sysmon has its ack and counts it.
	sysmontest.Eventually(t, 5*time.Second, func() bool {
		return sysmontest.Metric(t, admin, `sysmon_status_published_total{trigger="change"}`) == 3
	}, "three publishes on change counted")
	if code, body := sysmontest.Get(admin + "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code, body := sysmontest.Get(admin + "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s", code, body)
	}
}

// TestPeriodicPublish: with nothing changing, the status is published
// again every Interval; the monitoring endpoint is read.
func TestPeriodicPublish(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{Monitor: true})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	sysmontest.EnsureStream(t, js, events.StreamConfig{})
	ch := statuses(t, nc)
	reportEdge(t, nc, edge("edge-1"))
	_, admin := startService(t, ns.ClientURL(), func(o *service.Options) {
		o.Interval = 150 * time.Millisecond
		o.NATSMonitorURL = sysmontest.VarzURL(ns)
	})

	first := next(t, ch, 10*time.Second)
	ids := map[string]bool{first.Id: true}
	for i := range 3 {
		ev := next(t, ch, 10*time.Second)
		st := ev.GetSystemStatus()
		if st.Status != healthy || ev.Metadata["trigger"] != "interval" {
			t.Fatalf("periodic event %d: %s, trigger %q; want healthy, interval", i, st.Status, ev.Metadata["trigger"])
		}
		if ids[ev.Id] {
			t.Fatalf("event id %s published twice", ev.Id)
		}
		ids[ev.Id] = true
	}
	sysmontest.Eventually(t, 5*time.Second, func() bool {
		return sysmontest.Metric(t, admin, `sysmon_status_published_total{trigger="interval"}`) >= 3
	}, "three publishes on interval counted")
	if v := sysmontest.Metric(t, admin, "sysmon_nats_server_connections"); v < 2 {
		t.Errorf("sysmon_nats_server_connections = %v, want the varz count (at least the test's and sysmon's)", v)
	}
	if v := sysmontest.Metric(t, admin, `sysmon_probe_errors_total{target="monitor"}`); v != 0 {
		t.Errorf("monitor probe errors = %v, want 0", v)
	}
}

// TestInvalidStatsIgnoredAndCounted: invalid messages are counted by
// reason and change nothing; the valid ones that follow are counted.
func TestInvalidStatsIgnoredAndCounted(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	sysmontest.EnsureStream(t, js, events.StreamConfig{})
	ch := statuses(t, nc)
	_, admin := startService(t, ns.ClientURL(), func(o *service.Options) {
		o.Interval = 100 * time.Millisecond
		o.Monitor.NodeSilence = time.Minute
	})
	next(t, ch, 10*time.Second) // running

	at := time.Now().UTC().Format(time.RFC3339Nano)
	for _, m := range []struct{ subject, body string }{
		{stats.EdgeSubject, `{"node":"bad-json",`},
		{stats.EdgeSubject, `{"node":"bad name","at":"` + at + `"}`},
		{stats.EdgeSubject, `{"node":"negative","connections":-4,"at":"` + at + `"}`},
		{stats.EdgeSubject, `{"node":"no-time"}`},
		{stats.EdgeSubject, `{"node":"big","x":"` + strings.Repeat("x", stats.MaxMessageBytes) + `"}`},
		{stats.WorkerSubject, `{"worker":"w-neg","running":-1,"at":"` + at + `"}`},
		{stats.WorkerSubject, `[]`},
		{stats.EdgeSubject, `{"node":"good","connections":7,"rooms":1,"at":"` + at + `"}`},
		{stats.WorkerSubject, `{"worker":"w1","running":2,"succeeded":5,"failed":1,"at":"` + at + `"}`},
	} {
		if err := nc.Publish(m.subject, []byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{
		`sysmon_stats_received_total{source="edge"}`:                    1,
		`sysmon_stats_received_total{source="worker"}`:                  1,
		`sysmon_stats_invalid_total{reason="json",source="edge"}`:       1,
		`sysmon_stats_invalid_total{reason="name",source="edge"}`:       1,
		`sysmon_stats_invalid_total{reason="negative",source="edge"}`:   1,
		`sysmon_stats_invalid_total{reason="time",source="edge"}`:       1,
		`sysmon_stats_invalid_total{reason="too_large",source="edge"}`:  1,
		`sysmon_stats_invalid_total{reason="negative",source="worker"}`: 1,
		`sysmon_stats_invalid_total{reason="json",source="worker"}`:     1,
		"sysmon_edge_nodes": 1,
		"sysmon_workers":    1,
	}
	// The two subjects are handled on separate goroutines, and the gauges
	// by the reporter: poll until everything is counted.
	matches := func() bool {
		for series, v := range want {
			if sysmontest.Metric(t, admin, series) != v {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(5 * time.Second)
	for !matches() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for series, v := range want {
		if got := sysmontest.Metric(t, admin, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	ev := waitFor(t, ch, 10*time.Second, "the valid stats only", func(st *pb.SystemStatus) bool {
		return st.Metrics.GetEdgeNodes() == 1 && st.Metrics.GetWorkers() == 1
	})
	if m := ev.GetSystemStatus().Metrics; m.Connections != 7 || m.JobsRunning != 2 {
		t.Errorf("metrics = %v, want 7 connections (good only), 2 jobs running", m)
	}
}

// TestStreamMissingUntilCreated: without the EVENTS stream the status is
// error and cannot be published (not ready); once the stream exists the
// status is published and turns healthy.
func TestStreamMissingUntilCreated(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	ch := statuses(t, nc)
	reportEdge(t, nc, edge("edge-1"))
	_, admin := startService(t, ns.ClientURL(), nil)

	sysmontest.Eventually(t, 5*time.Second, func() bool {
		return sysmontest.Metric(t, admin, `sysmon_status{status="error"}`) == 1 &&
			sysmontest.Metric(t, admin, "sysmon_status_publish_errors_total") > 0
	}, "status error and a failed publish")
	if v := sysmontest.Metric(t, admin, `sysmon_alerts{severity="critical"}`); v != 1 {
		t.Errorf("critical alerts = %v, want 1 (stream-unavailable:EVENTS)", v)
	}
	if code, body := sysmontest.Get(admin + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %s, want 503 while nothing can be published", code, body)
	}

	sysmontest.EnsureStream(t, js, events.StreamConfig{})
	// The first publish may still carry the error decided before the
	// probe saw the stream; healthy follows.
	waitFor(t, ch, 10*time.Second, "healthy", func(st *pb.SystemStatus) bool { return st.Status == healthy })
	sysmontest.Eventually(t, 5*time.Second, func() bool {
		code, _ := sysmontest.Get(admin + "/readyz")
		return code == http.StatusOK
	}, "ready")
}

// TestNoJetStream: a NATS server without JetStream is an error.
func TestNoJetStream(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{NoJetStream: true})
	_, admin := startService(t, ns.ClientURL(), nil)
	sysmontest.Eventually(t, 10*time.Second, func() bool {
		return sysmontest.Metric(t, admin, `sysmon_status{status="error"}`) == 1
	}, "status error")
	if v := sysmontest.Metric(t, admin, `sysmon_probe_errors_total{target="jetstream"}`); v < 1 {
		t.Errorf("jetstream probe errors = %v, want some", v)
	}
	if code, _ := sysmontest.Get(admin + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d, want 503", code)
	}
}

// TestNATSUnreachable: sysmon starts without NATS (it keeps trying), is
// not ready, and stops cleanly.
func TestNATSUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	svc, admin := startService(t, url, nil)
	code, body := sysmontest.Get(admin + "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not connected") {
		t.Errorf("/readyz = %d %q, want 503 not connected", code, body)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Shutdown() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown hangs without NATS")
	}
}

func TestNewRejectsIntervalShorterThanCheck(t *testing.T) {
	_, err := service.New(service.Options{Interval: time.Millisecond, CheckInterval: time.Second}, zerolog.Nop())
	if err == nil {
		t.Fatal("New accepted an interval shorter than the check interval")
	}
}
