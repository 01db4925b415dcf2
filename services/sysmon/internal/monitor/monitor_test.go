package monitor_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// clock is the monitor's injected clock; tests move it by hand.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

var start = time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)

func newMonitor(opts monitor.Options) (*monitor.Monitor, *clock) {
	c := &clock{t: start}
	opts.Now = c.Now
	return monitor.New(opts), c
}

func edge(name string) stats.Edge {
	return stats.Edge{Node: name, Connections: 10, Rooms: 2, EventsInPerSecond: 1, EventsOutPerSecond: 5, P99DeliveryLatencyMs: 3, NATSRTTMs: 0.5, At: start}
}

func healthyNATS() monitor.NATS {
	return monitor.NATS{
		RTT:     time.Millisecond,
		Account: monitor.Account{Storage: 1000, MaxStorage: -1, MaxMemory: -1},
		Stream:  monitor.Stream{Name: "EVENTS", Messages: 10, Bytes: 1000, MaxMsgs: -1, MaxBytes: -1},
	}
}

// TestDecisionTable drives the monitor through each condition with an
// injected clock and checks the status and the alert ids.
func TestDecisionTable(t *testing.T) {
	errDown := errors.New("nats: no responders available for request")
	for _, tc := range []struct {
		name   string
		opts   monitor.Options
		setup  func(m *monitor.Monitor, c *clock)
		status pb.HealthStatus
		alerts []string
	}{
		{
			name:   "just started, nothing reported yet",
			setup:  func(m *monitor.Monitor, c *clock) { c.Advance(5 * time.Second) },
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name:   "no edge node within the silence threshold",
			setup:  func(m *monitor.Monitor, c *clock) { c.Advance(15 * time.Second) },
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"no-edge-nodes"},
		},
		{
			name: "one healthy edge, healthy NATS",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveNATS(healthyNATS())
				m.ObserveEdge(edge("edge-1"))
				c.Advance(20 * time.Second)
				m.ObserveEdge(edge("edge-1"))
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "edge silent just under the threshold",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				c.Advance(15*time.Second - time.Millisecond)
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "one of two edges silent for 15s",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				m.ObserveEdge(edge("edge-2"))
				c.Advance(10 * time.Second)
				m.ObserveEdge(edge("edge-1"))
				c.Advance(5 * time.Second)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-silent:edge-2"},
		},
		{
			name: "the only edge silent",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				c.Advance(16 * time.Second)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-silent:edge-1", "no-edge-nodes"},
		},
		{
			name: "silent edge reports again",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				c.Advance(30 * time.Second)
				m.ObserveEdge(edge("edge-1"))
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "silent edge forgotten after NodeForget",
			opts: monitor.Options{NodeForget: time.Minute},
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				m.ObserveEdge(edge("edge-2"))
				c.Advance(50 * time.Second)
				m.ObserveEdge(edge("edge-2"))
				c.Advance(10 * time.Second)
				m.ObserveEdge(edge("edge-2"))
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "p99 at the threshold",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.P99DeliveryLatencyMs = 100
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "p99 over the threshold",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.P99DeliveryLatencyMs = 100.5
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-p99:edge-1"},
		},
		{
			name: "p99 over a configured threshold",
			opts: monitor.Options{MaxP99: 20 * time.Millisecond},
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.P99DeliveryLatencyMs = 25
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-p99:edge-1"},
		},
		{
			name: "a silent edge's old p99 does not count",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.P99DeliveryLatencyMs = 500
				m.ObserveEdge(e)
				m.ObserveEdge(edge("edge-2"))
				c.Advance(10 * time.Second)
				m.ObserveEdge(edge("edge-2"))
				c.Advance(6 * time.Second)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-silent:edge-1"},
		},
		{
			name: "drops at the threshold",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.DropsPerSecond = 10
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "drops over the threshold on one node",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-2")
				e.DropsPerSecond = 10.5
				m.ObserveEdge(edge("edge-1"))
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-drops:edge-2"},
		},
		{
			name: "negative MaxDrops: any drop degrades",
			opts: monitor.Options{MaxDrops: -1},
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.DropsPerSecond = 0.2
				m.ObserveEdge(e)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"edge-drops:edge-1"},
		},
		{
			name: "JetStream unavailable",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				m.ObserveNATS(monitor.NATS{JetStreamErr: errDown, StreamErr: errDown, Stream: monitor.Stream{Name: "EVENTS"}})
			},
			status: pb.HealthStatus_HEALTH_STATUS_ERROR,
			alerts: []string{"jetstream-unavailable"},
		},
		{
			name: "EVENTS stream missing",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.StreamErr = errors.New("stream not found")
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_ERROR,
			alerts: []string{"stream-unavailable:EVENTS"},
		},
		{
			name: "stream at 90% of its byte limit",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.Stream.Bytes, n.Stream.MaxBytes = 900, 1000
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
		},
		{
			name: "stream over 90% of its byte limit",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.Stream.Bytes, n.Stream.MaxBytes = 901, 1000
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"stream-fill:EVENTS:bytes"},
		},
		{
			name: "stream over a configured fill of its message limit",
			opts: monitor.Options{MaxStreamFill: 0.5},
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.Stream.Messages, n.Stream.MaxMsgs = 60, 100
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"stream-fill:EVENTS:messages"},
		},
		{
			name: "JetStream account storage nearly full",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.Account.Storage, n.Account.MaxStorage = 95, 100
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			alerts: []string{"jetstream-fill:storage"},
		},
		{
			name: "monitoring endpoint down: informational only",
			setup: func(m *monitor.Monitor, c *clock) {
				m.ObserveEdge(edge("edge-1"))
				n := healthyNATS()
				n.MonitorErr = errors.New("connection refused")
				m.ObserveNATS(n)
			},
			status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
			alerts: []string{"nats-monitor"},
		},
		{
			name: "error outranks degraded; alerts worst first",
			setup: func(m *monitor.Monitor, c *clock) {
				e := edge("edge-1")
				e.P99DeliveryLatencyMs, e.DropsPerSecond = 300, 50
				m.ObserveEdge(e)
				m.ObserveNATS(monitor.NATS{JetStreamErr: errDown, MonitorErr: errDown})
			},
			status: pb.HealthStatus_HEALTH_STATUS_ERROR,
			alerts: []string{"jetstream-unavailable", "edge-drops:edge-1", "edge-p99:edge-1", "nats-monitor"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, c := newMonitor(tc.opts)
			tc.setup(m, c)
			r := m.Evaluate()
			if r.Status != tc.status || !slices.Equal(r.AlertIDs(), tc.alerts) {
				t.Errorf("Evaluate() = %s %q, want %s %q", r.Status, r.AlertIDs(), tc.status, tc.alerts)
				for _, a := range r.Alerts {
					t.Logf("  %s %s %q since %s", a.ID, a.Severity, a.Message, a.Since)
				}
			}
			// Whatever the monitor decides must be publishable.
			if err := events.Validate(events.SystemStatus(r.SystemStatus())); err != nil {
				t.Errorf("the report is not a valid event: %v", err)
			}
		})
	}
}

func alertOf(t *testing.T, r monitor.Report, id string) monitor.Alert {
	t.Helper()
	for _, a := range r.Alerts {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("no alert %s in %q", id, r.AlertIDs())
	return monitor.Alert{}
}

// TestSilentSince: the edge-silent alert dates from the node's last stats,
// keeps that date while the node stays silent, clears when it reports, and
// starts afresh if it falls silent again.
func TestSilentSince(t *testing.T) {
	m, c := newMonitor(monitor.Options{})
	m.ObserveEdge(edge("edge-1"))
	c.Advance(5 * time.Second)
	if fresh := m.ObserveEdge(edge("edge-2")); !fresh {
		t.Error("a new node is not reported fresh")
	}
	c.Advance(5 * time.Second)
	if fresh := m.ObserveEdge(edge("edge-2")); fresh {
		t.Error("a node reporting on time is reported fresh")
	}
	lastSeen := c.Now()
	c.Advance(30 * time.Second)
	r := m.Evaluate()
	a := alertOf(t, r, "edge-silent:edge-2")
	if !a.Since.Equal(lastSeen) || a.Severity != pb.Severity_SEVERITY_WARNING || a.Message != "edge-2: no stats for 30s" {
		t.Errorf("alert = %+v, want since %s (its last stats), warning, \"edge-2: no stats for 30s\"", a, lastSeen)
	}
	nodesSilent := alertOf(t, r, "no-edge-nodes")
	if want := lastSeen.Add(15 * time.Second); !nodesSilent.Since.Equal(want) {
		t.Errorf("no-edge-nodes since %s, want %s (when the last node fell silent)", nodesSilent.Since, want)
	}
	c.Advance(10 * time.Second)
	if a := alertOf(t, m.Evaluate(), "edge-silent:edge-2"); !a.Since.Equal(lastSeen) {
		t.Errorf("since moved to %s while the node stayed silent", a.Since)
	}

	if fresh := m.ObserveEdge(edge("edge-2")); !fresh {
		t.Error("a node back from silence is not reported fresh")
	}
	r = m.Evaluate()
	if slices.Contains(r.AlertIDs(), "edge-silent:edge-2") || slices.Contains(r.AlertIDs(), "no-edge-nodes") {
		t.Errorf("alerts %q after edge-2 reported again, want its alert cleared", r.AlertIDs())
	}

	back := c.Now()
	c.Advance(20 * time.Second)
	if a := alertOf(t, m.Evaluate(), "edge-silent:edge-2"); !a.Since.Equal(back) {
		t.Errorf("second silence since %s, want %s", a.Since, back)
	}
}

// TestConditionSince: a condition without a known start dates from the
// evaluation that first saw it.
func TestConditionSince(t *testing.T) {
	m, c := newMonitor(monitor.Options{})
	slow := edge("edge-1")
	slow.P99DeliveryLatencyMs = 250
	m.ObserveEdge(slow)
	c.Advance(time.Second)
	first := c.Now()
	if a := alertOf(t, m.Evaluate(), "edge-p99:edge-1"); !a.Since.Equal(first) || a.Message != "edge-1: p99 delivery latency 250.0 ms, over 100.0 ms" {
		t.Errorf("alert = %+v, want since %s", a, first)
	}
	c.Advance(5 * time.Second)
	m.ObserveEdge(slow)
	if a := alertOf(t, m.Evaluate(), "edge-p99:edge-1"); !a.Since.Equal(first) {
		t.Errorf("since = %s after the condition held on, want %s", a.Since, first)
	}
	m.ObserveEdge(edge("edge-1"))
	if r := m.Evaluate(); len(r.Alerts) != 0 {
		t.Errorf("alerts %q after p99 recovered", r.AlertIDs())
	}
}

func TestMetrics(t *testing.T) {
	m, c := newMonitor(monitor.Options{})
	m.ObserveNATS(healthyNATS()) // RTT 1ms
	m.ObserveHost(41, 63)
	a := stats.Edge{Node: "a", Connections: 10, Rooms: 3, EventsInPerSecond: 1.5, EventsOutPerSecond: 40, DropsPerSecond: 0.5, P99DeliveryLatencyMs: 3.2, NATSRTTMs: 0.4, At: start}
	b := stats.Edge{Node: "b", Connections: 5, Rooms: 1, EventsInPerSecond: 2, EventsOutPerSecond: 10, DropsPerSecond: 1, P99DeliveryLatencyMs: 7, NATSRTTMs: 2.5, At: start}
	gone := stats.Edge{Node: "gone", Connections: 1000, At: start}
	m.ObserveEdge(gone)
	c.Advance(20 * time.Second)
	m.ObserveEdge(a)
	m.ObserveEdge(b)
	m.ObserveWorker(stats.Worker{Worker: "w1", Running: 2, At: start})
	m.ObserveWorker(stats.Worker{Worker: "w2", Running: 1, Succeeded: 5, At: start})
	got := m.Evaluate().Metrics
	want := &pb.SystemMetrics{
		EdgeNodes: 2, Connections: 15, Rooms: 4, EventsInPerSecond: 3.5, EventsOutPerSecond: 50, DropsPerSecond: 1.5,
		P99DeliveryLatencyMs: 7, NatsRttMs: 2.5, CpuPercent: 41, MemoryPercent: 63, Workers: 2, JobsRunning: 3,
	}
	if got.String() != want.String() {
		t.Errorf("metrics:\n got %v\nwant %v", got, want)
	}
	c.Advance(15 * time.Second) // everyone silent
	if got := m.Evaluate().Metrics; got.EdgeNodes != 0 || got.Workers != 0 || got.Connections != 0 || got.NatsRttMs != 1 {
		t.Errorf("metrics with everyone silent = %v, want no nodes, no workers, sysmon's own RTT", got)
	}
}

func TestSameState(t *testing.T) {
	m, c := newMonitor(monitor.Options{})
	m.ObserveEdge(edge("edge-1"))
	r1 := m.Evaluate()
	c.Advance(time.Second)
	e := edge("edge-1")
	e.Connections = 99 // metrics change, state does not
	m.ObserveEdge(e)
	r2 := m.Evaluate()
	if !r1.SameState(r2) {
		t.Error("a change of metrics alone changed the state")
	}
	e.DropsPerSecond = 100
	m.ObserveEdge(e)
	r3 := m.Evaluate()
	if r2.SameState(r3) {
		t.Error("a new alert did not change the state")
	}
	m.ObserveEdge(edge("edge-2"))
	e.DropsPerSecond = 0
	m.ObserveEdge(e)
	e2 := edge("edge-2")
	e2.DropsPerSecond = 100
	m.ObserveEdge(e2)
	r4 := m.Evaluate()
	if r3.Status != r4.Status || r3.SameState(r4) {
		t.Error("a different alert with the same status did not change the state")
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := monitor.Options{NodeSilence: time.Minute, NodeForget: time.Second}.WithDefaults()
	if o.NodeForget != time.Minute || o.MaxP99 != 100*time.Millisecond || o.MaxDrops != 10 || o.MaxStreamFill != 0.9 || o.Now == nil {
		t.Errorf("WithDefaults = %+v", o)
	}
	if o := (monitor.Options{MaxDrops: -1}).WithDefaults(); o.MaxDrops != 0 {
		t.Errorf("MaxDrops -1 → %v, want 0 (any drop)", o.MaxDrops)
	}
}

// TestFills: the fractions of the limits in use, the same the stream-fill
// and jetstream-fill alerts use; only the parts the probe could read.
func TestFills(t *testing.T) {
	n := monitor.NATS{
		Stream:  monitor.Stream{Messages: 60, MaxMsgs: 100, Bytes: 900, MaxBytes: -1},
		Account: monitor.Account{Storage: 250, MaxStorage: 1000, Memory: 5, MaxMemory: 0},
	}
	got := n.Fills()
	want := map[string]float64{"stream_messages": 0.6, "stream_bytes": 0, "account_storage": 0.25, "account_memory": 0}
	if !maps.Equal(got, want) {
		t.Errorf("Fills() = %v, want %v", got, want)
	}
	n.StreamErr, n.JetStreamErr = errors.New("no stream"), errors.New("no JetStream")
	if got := n.Fills(); len(got) != 0 {
		t.Errorf("Fills() without stream and account = %v, want none", got)
	}
}
