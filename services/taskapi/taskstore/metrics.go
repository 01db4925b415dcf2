package taskstore

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's counters. A Store without a Registerer counts
// into unregistered collectors, so the code never checks for nil.
type metrics struct {
	published      prometheus.Counter
	publishErrors  prometheus.Counter
	dropped        prometheus.Counter
	casRetries     prometheus.Counter
	sweeps         prometheus.Counter
	sweepRepaired  prometheus.Counter
	sweepDuration  prometheus.Histogram
	pendingEntries prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_outbox_published_total",
			Help: "Outbox messages (events, jobs) acknowledged by JetStream, retries included.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_outbox_publish_errors_total",
			Help: "Outbox publishes that failed and were left for a later attempt.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_outbox_dropped_total",
			Help: "Outbox messages dropped because they can never be published (invalid).",
		}),
		casRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_cas_retries_total",
			Help: "Writes retried after a concurrent write to the same task.",
		}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_sweeps_total",
			Help: "Outbox sweeps run.",
		}),
		sweepRepaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_taskstore_sweep_repaired_total",
			Help: "Tasks whose pending messages a sweep published.",
		}),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventedge_taskstore_sweep_duration_seconds",
			Help:    "Time one outbox sweep took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		pendingEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_taskstore_pending_tasks",
			Help: "Tasks holding unpublished messages at the last sweep.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.publishErrors, m.dropped, m.casRetries, m.sweeps, m.sweepRepaired, m.sweepDuration, m.pendingEntries)
	}
	return m
}
