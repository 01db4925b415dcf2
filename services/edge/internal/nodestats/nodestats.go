// Package nodestats publishes an edge node's vital signs on NATS (subject
// ctl.edge.stats) every Interval, for the system monitor: connections,
// rooms, events in and out per second, drops per second, p99 delivery
// latency of live events over the interval (replays and gap repairs carry
// the age of old events and are left out), and the NATS round-trip time.
//
// One goroutine, owned by Start and stopped by Stop, reads the node's own
// Prometheus collectors: the figures are the ones /metrics shows.
package nodestats

import (
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
)

// Subject is where edge nodes publish their stats.
const Subject = "ctl.edge.stats"

// DefaultInterval is how often stats are published.
const DefaultInterval = 5 * time.Second

// Stats is one report, as JSON on Subject.
type Stats struct {
	Node                 string  `json:"node"`
	Connections          int64   `json:"connections"`
	Rooms                int64   `json:"rooms"`
	EventsInPerSecond    float64 `json:"eventsInPerSecond"`
	EventsOutPerSecond   float64 `json:"eventsOutPerSecond"`
	DropsPerSecond       float64 `json:"dropsPerSecond"`
	P99DeliveryLatencyMs float64 `json:"p99DeliveryLatencyMs"`
	NATSRttMs            float64 `json:"natsRttMs"`
	At                   string  `json:"at"`
}

// Publisher publishes a node's stats.
type Publisher struct {
	// static after New
	node     string
	nc       *nats.Conn
	m        *metrics.Metrics
	log      zerolog.Logger
	interval time.Duration
	quit     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once

	// owned by the loop
	prev    sample
	prevHis []uint64
}

type sample struct {
	at             time.Time
	in, out, drops float64
}

// New returns a publisher for node; interval 0 means DefaultInterval.
func New(node string, nc *nats.Conn, m *metrics.Metrics, log zerolog.Logger, interval time.Duration) *Publisher {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Publisher{node: node, nc: nc, m: m, log: log, interval: interval, quit: make(chan struct{})}
}

// Start starts the publishing goroutine.
func (p *Publisher) Start() {
	p.prev = p.sample()
	p.prevHis = buckets(p.m.LiveLatency)
	p.wg.Add(1)
	go p.loop()
}

// Stop stops it and waits.
func (p *Publisher) Stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	p.wg.Wait()
}

func (p *Publisher) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.publish()
		}
	}
}

// value sums the values of c's metrics (every label combination of a
// vector). Collect sends on its goroutine while this one reads, so a
// collector with any number of metrics cannot block on a full channel.
func value(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var sum float64
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		switch {
		case d.Counter != nil:
			sum += d.Counter.GetValue()
		case d.Gauge != nil:
			sum += d.Gauge.GetValue()
		}
	}
	return sum
}

func (p *Publisher) sample() sample {
	return sample{
		at:    time.Now(),
		in:    value(p.m.EventsIn),
		out:   value(p.m.Deliveries),
		drops: value(p.m.ClientDrops) + value(p.m.EventsDropped),
	}
}

// buckets returns a latency histogram's cumulative bucket counts.
func buckets(h prometheus.Histogram) []uint64 {
	var d dto.Metric
	if h.Write(&d) != nil || d.Histogram == nil {
		return nil
	}
	out := make([]uint64, 0, len(d.Histogram.Bucket)+1)
	for _, b := range d.Histogram.Bucket {
		out = append(out, b.GetCumulativeCount())
	}
	return append(out, d.Histogram.GetSampleCount())
}

var bounds = metrics.LatencyBuckets

// p99 estimates the 99th percentile (ms) of the latencies observed between
// two bucket snapshots: the upper bound of the bucket holding it.
func p99(prev, cur []uint64) float64 {
	if len(cur) == 0 || len(prev) != len(cur) {
		return 0
	}
	total := cur[len(cur)-1] - prev[len(prev)-1]
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(float64(total) * 0.99))
	for i := 0; i < len(cur)-1 && i < len(bounds); i++ {
		if cur[i]-prev[i] >= want {
			return bounds[i] * 1000
		}
	}
	return bounds[len(bounds)-1] * 1000
}

func (p *Publisher) publish() {
	cur := p.sample()
	his := buckets(p.m.LiveLatency)
	secs := cur.at.Sub(p.prev.at).Seconds()
	if secs <= 0 {
		return
	}
	s := Stats{
		Node:                 p.node,
		Connections:          int64(value(p.m.Connections)),
		Rooms:                int64(value(p.m.Rooms)),
		EventsInPerSecond:    (cur.in - p.prev.in) / secs,
		EventsOutPerSecond:   (cur.out - p.prev.out) / secs,
		DropsPerSecond:       (cur.drops - p.prev.drops) / secs,
		P99DeliveryLatencyMs: p99(p.prevHis, his),
		At:                   cur.at.UTC().Format(time.RFC3339),
	}
	p.prev, p.prevHis = cur, his
	if rtt, err := p.nc.RTT(); err == nil {
		s.NATSRttMs = float64(rtt.Microseconds()) / 1000
	}
	data, _ := json.Marshal(s)
	if err := p.nc.Publish(Subject, data); err != nil {
		p.log.Debug().Err(err).Msg("publish node stats")
	}
}
