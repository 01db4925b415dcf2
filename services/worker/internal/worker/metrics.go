package worker

import "github.com/prometheus/client_golang/prometheus"

// Results of a job delivery (the "result" label).
const (
	resultSucceeded = "succeeded"
	resultFailed    = "failed"
	resultRetried   = "retried"
	resultCancelled = "cancelled"
	resultRefused   = "refused"
	resultSkipped   = "skipped"
	resultRequeued  = "requeued"
)

type metrics struct {
	jobs     *prometheus.CounterVec
	running  prometheus.Gauge
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_worker_jobs_total",
			Help: "Job deliveries handled, by job type and result (succeeded, failed, retried, cancelled, refused, skipped, requeued).",
		}, []string{"job", "result"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_worker_jobs_running",
			Help: "Jobs running now.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventedge_worker_job_duration_seconds",
			Help:    "Run time of job deliveries, by job type.",
			Buckets: prometheus.ExponentialBuckets(0.05, 3, 9),
		}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.jobs, m.running, m.duration)
	}
	return m
}
