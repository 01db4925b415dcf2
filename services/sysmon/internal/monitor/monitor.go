package monitor

import (
	"cmp"
	"slices"
	"sync"
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// Monitor holds the latest of everything observed and decides the status.
// It is safe for concurrent use: NATS handlers observe while the reporter
// evaluates.
type Monitor struct {
	// static after New
	opts    Options
	started time.Time

	mu sync.Mutex
	// guarded by mu
	edges   map[string]*edgeState
	workers map[string]*workerState
	nats    *NATS // nil until the first probe
	cpu     float64
	memory  float64
	since   map[string]time.Time // alert id → when its condition started; only current alerts
}

type edgeState struct {
	last stats.Edge
	seen time.Time // when last arrived, by the monitor's clock
}

type workerState struct {
	last stats.Worker
	seen time.Time
}

// New returns a Monitor that starts now (by opts.Now): the no-edge-nodes
// condition waits NodeSilence from here, so that sysmon does not call the
// system degraded before the edges had time to report.
func New(opts Options) *Monitor {
	opts = opts.WithDefaults()
	return &Monitor{
		opts:    opts,
		started: opts.Now(),
		edges:   map[string]*edgeState{},
		workers: map[string]*workerState{},
		since:   map[string]time.Time{},
	}
}

// ObserveEdge records an edge node's stats (already validated) as arriving
// now. It reports whether the node is new or was silent.
func (m *Monitor) ObserveEdge(s stats.Edge) (fresh bool) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.edges[s.Node]
	if !ok {
		st = &edgeState{}
		m.edges[s.Node] = st
	}
	fresh = !ok || now.Sub(st.seen) >= m.opts.NodeSilence
	st.last, st.seen = s, now
	return fresh
}

// ObserveWorker records a worker's stats (already validated) as arriving
// now. It reports whether the worker is new or was silent.
func (m *Monitor) ObserveWorker(s stats.Worker) (fresh bool) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.workers[s.Worker]
	if !ok {
		st = &workerState{}
		m.workers[s.Worker] = st
	}
	fresh = !ok || now.Sub(st.seen) >= m.opts.NodeSilence
	st.last, st.seen = s, now
	return fresh
}

// ObserveNATS records the result of a probe of NATS and JetStream.
func (m *Monitor) ObserveNATS(n NATS) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nats = &n
}

// ObserveHost records the host's CPU and memory use, in percent.
func (m *Monitor) ObserveHost(cpuPercent, memoryPercent float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cpu, m.memory = cpuPercent, memoryPercent
}

// Evaluate decides the status now. It also forgets the nodes and workers
// silent for NodeForget.
func (m *Monitor) Evaluate() Report {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(now)
	conds := m.conditions(now)
	r := Report{At: now, Metrics: m.metrics(now)}
	current := make(map[string]bool, len(conds))
	for _, c := range conds {
		current[c.ID] = true
		since, ok := m.since[c.ID]
		if !ok {
			since = c.Since
			if since.IsZero() {
				since = now
			}
			m.since[c.ID] = since
		}
		c.Since = since
		r.Alerts = append(r.Alerts, c)
	}
	for id := range m.since {
		if !current[id] {
			delete(m.since, id)
		}
	}
	slices.SortFunc(r.Alerts, func(a, b Alert) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	r.Status = statusOf(r.Alerts)
	return r
}

func (m *Monitor) forget(now time.Time) {
	for name, st := range m.edges {
		if now.Sub(st.seen) >= m.opts.NodeForget {
			delete(m.edges, name)
		}
	}
	for name, st := range m.workers {
		if now.Sub(st.seen) >= m.opts.NodeForget {
			delete(m.workers, name)
		}
	}
}

func (m *Monitor) live(seen, now time.Time) bool { return now.Sub(seen) < m.opts.NodeSilence }

// metrics sums the live nodes' and workers' stats. Rooms are summed too:
// a room open on two nodes counts twice, the closest a sum of per-node
// counts can get.
func (m *Monitor) metrics(now time.Time) *pb.SystemMetrics {
	out := &pb.SystemMetrics{CpuPercent: m.cpu, MemoryPercent: m.memory}
	if m.nats != nil {
		out.NatsRttMs = ms(m.nats.RTT)
	}
	for _, st := range m.edges {
		if !m.live(st.seen, now) {
			continue
		}
		s := st.last
		out.EdgeNodes++
		out.Connections += uint64(s.Connections)
		out.Rooms += uint64(s.Rooms)
		out.EventsInPerSecond += s.EventsInPerSecond
		out.EventsOutPerSecond += s.EventsOutPerSecond
		out.DropsPerSecond += s.DropsPerSecond
		out.P99DeliveryLatencyMs = max(out.P99DeliveryLatencyMs, s.P99DeliveryLatencyMs)
		out.NatsRttMs = max(out.NatsRttMs, s.NATSRTTMs)
	}
	for _, st := range m.workers {
		if !m.live(st.seen, now) {
			continue
		}
		out.Workers++
		out.JobsRunning += uint64(st.last.Running)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
