package taskstore

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DefaultBucket is the name of the bucket tasks are kept in.
const DefaultBucket = "TASKS"

// Options configures a Store. The zero value of each field selects its
// default.
type Options struct {
	// Bucket is the key-value bucket. Default "TASKS".
	Bucket string
	// Replicas is the bucket's replica count when Open creates it (1, 3 or
	// 5). Default 1. An existing bucket is used as it is.
	Replicas int
	// MemoryStorage creates the bucket in memory. Default false: file
	// storage. For tests only.
	MemoryStorage bool
	// MaxPending bounds the unpublished messages one task may hold; a write
	// that would exceed it fails with ErrBacklog. Default 64.
	MaxPending int
	// MaxRetries bounds the compare-and-set attempts of one write before it
	// gives up with ErrConflict. Default 16.
	MaxRetries int
	// PublishTimeout bounds each publish of the outbox (and the write that
	// clears it) after a write. It does not depend on the caller's context,
	// so a client that goes away does not leave events behind. Default 5s.
	PublishTimeout time.Duration
	// SweepMinAge: Sweep leaves pending messages younger than this to the
	// writer that is publishing them. Default 2s; negative: sweep all.
	SweepMinAge time.Duration
	// Source is the "source" metadata of every event. Default "taskapi".
	Source string
	// Log receives publish failures and dropped messages. Default: none.
	Log zerolog.Logger
	// Registerer, when set, receives the store's metrics
	// (eventedge_taskstore_*).
	Registerer prometheus.Registerer
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultMaxPending     = 64
	DefaultMaxRetries     = 16
	DefaultPublishTimeout = 5 * time.Second
	DefaultSweepMinAge    = 2 * time.Second
	DefaultSource         = "taskapi"
)

func (o Options) withDefaults() (Options, error) {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Replicas != 1 && o.Replicas != 3 && o.Replicas != 5 {
		return o, fmt.Errorf("taskstore: replicas %d: must be 1, 3 or 5", o.Replicas)
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	switch {
	case o.SweepMinAge == 0:
		o.SweepMinAge = DefaultSweepMinAge
	case o.SweepMinAge < 0:
		o.SweepMinAge = 0
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Write says who makes a change and on which condition.
type Write struct {
	// Actor is the user id making the change: the events' userId and
	// createdBy/updatedBy/deletedBy, and Create's createdBy. Empty for a
	// system change (a worker's status transition).
	Actor string
	// IfRevision, when non-zero, makes the write conditional: it fails with
	// a *ConflictError unless the task's revision is IfRevision.
	IfRevision uint64
	// Also lists JetStream messages published through the outbox after the
	// write's events, exactly like them: written with the change (only if
	// there is one), published in order, retried until acknowledged. Each
	// must carry a Nats-Msg-Id header, which de-duplicates the retries. The
	// task API enqueues jobs this way, so that a task is never queued
	// without its job, nor a job sent for a change that was not stored.
	Also []*nats.Msg
}

func (w Write) validate() error {
	for _, m := range w.Also {
		if m == nil || m.Subject == "" {
			return fmt.Errorf("%w: outbox message without a subject", ErrInvalid)
		}
		if m.Header.Get(nats.MsgIdHdr) == "" {
			return fmt.Errorf("%w: outbox message to %s without a %s header", ErrInvalid, m.Subject, nats.MsgIdHdr)
		}
	}
	return nil
}
