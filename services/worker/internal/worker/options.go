package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/worker/internal/jobrun"
	"github.com/eventedge/eventedge/services/worker/internal/report"
)

// Options configures a Worker. Name, Store, JS and NC are required; every
// other zero field selects its default.
type Options struct {
	// Name identifies the worker in stats and logs: 1-64 printable ASCII
	// characters without spaces.
	Name string
	// Concurrency is the number of jobs run at once. Default 2.
	Concurrency int
	// AckWait is how long a delivered job may go without an ack or a
	// heartbeat before it is redelivered. Default 30s.
	AckWait time.Duration
	// Heartbeat is the interval of InProgress acks (and task checks) while
	// a job runs; below AckWait. Default 10s.
	Heartbeat time.Duration
	// MaxDeliver is the number of deliveries of a job; after a failure of
	// the last one the task is failed. Default 5.
	MaxDeliver int
	// Backoff is the delay before a failed job is retried, by attempt
	// (the last value repeats). Default 1s, 2s, 5s, 10s.
	Backoff []time.Duration
	// FetchWait is the expiry of each pull request. Default 5s.
	FetchWait time.Duration
	// ShutdownGrace is how long running jobs may take to finish once Run's
	// context ends; then they are stopped and redelivered. Default 20s.
	ShutdownGrace time.Duration
	// StatsInterval is the interval of the ctl.worker.stats messages.
	// Default 5s.
	StatsInterval time.Duration
	// AllowList holds the commands exec jobs may run. Default: none.
	AllowList jobrun.AllowList
	// Exec, Demo and Report configure the job runs and their events.
	Exec   jobrun.Exec
	Demo   jobrun.Demo
	Report report.Options
	// Store records the tasks' status transitions.
	Store *taskstore.Store
	// JS and NC are the worker's NATS connection.
	JS jetstream.JetStream
	NC *nats.Conn
	// Log receives the worker's logs. Default: none.
	Log zerolog.Logger
	// Registerer receives the worker's metrics. Default: none.
	Registerer prometheus.Registerer
}

// Defaults of Options.
const (
	DefaultConcurrency   = 2
	DefaultAckWait       = 30 * time.Second
	DefaultHeartbeat     = 10 * time.Second
	DefaultMaxDeliver    = 5
	DefaultFetchWait     = 5 * time.Second
	DefaultShutdownGrace = 20 * time.Second
	DefaultStatsInterval = 5 * time.Second
)

// DefaultBackoff is Options.Backoff's default.
var DefaultBackoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}

// StatsSubject is where workers publish their stats (core NATS).
const StatsSubject = "ctl.worker.stats"

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil || o.JS == nil || o.NC == nil {
		return o, errors.New("worker: Store, JS and NC are required")
	}
	if !ValidName(o.Name) {
		return o, fmt.Errorf("worker name %q: want 1-64 printable ASCII characters without spaces", o.Name)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = min(DefaultHeartbeat, o.AckWait/3)
	}
	if o.Heartbeat >= o.AckWait {
		return o, fmt.Errorf("worker heartbeat %s: must be shorter than the ack wait %s", o.Heartbeat, o.AckWait)
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = DefaultMaxDeliver
	}
	if len(o.Backoff) == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.FetchWait <= 0 {
		o.FetchWait = DefaultFetchWait
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = DefaultStatsInterval
	}
	if o.AllowList == nil {
		o.AllowList = jobrun.AllowList{}
	}
	return o, nil
}

// ValidName reports whether s may name a worker: 1-64 printable ASCII
// characters without spaces (sysmon's rule for ctl.worker.stats).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// backoff is the delay before retrying after a failed attempt (1-based).
func (o Options) backoff(attempt uint64) time.Duration {
	i := int(min(attempt, uint64(len(o.Backoff)))) - 1
	return o.Backoff[max(i, 0)]
}
