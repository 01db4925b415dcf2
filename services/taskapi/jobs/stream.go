package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the work-queue stream jobs are stored in until a worker
// acknowledges them.
const StreamName = "JOBS"

// ConsumerName is the durable pull consumer every worker replica shares.
const ConsumerName = "workers"

// StreamConfig configures the JOBS stream. The zero value of each field
// selects its default.
type StreamConfig struct {
	// MaxAge bounds how long an unconsumed job waits. Default 7 days.
	MaxAge time.Duration
	// Duplicates is the window in which a second publish with the same
	// Nats-Msg-Id (execution id) is dropped. Default 2m.
	Duplicates time.Duration
	// Replicas is the number of stream replicas (1, 3 or 5). Default 1.
	Replicas int
	// MemoryStorage keeps jobs in memory. Default false (file storage).
	MemoryStorage bool
}

// Stream defaults.
const (
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultDuplicates = 2 * time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	return c
}

// Validate reports the first setting of c (after defaults) that is wrong.
func (c StreamConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxAge < 0:
		return fmt.Errorf("jobs stream max age %s: must be positive", c.MaxAge)
	case c.Duplicates < 0 || c.Duplicates > c.MaxAge:
		return fmt.Errorf("jobs stream duplicate window %s: must be positive and at most the max age %s", c.Duplicates, c.MaxAge)
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("jobs stream replicas %d: must be 1, 3 or 5", c.Replicas)
	}
	return nil
}

// JetStreamConfig returns the jetstream configuration of the JOBS stream.
func (c StreamConfig) JetStreamConfig() jetstream.StreamConfig {
	c = c.WithDefaults()
	storage := jetstream.FileStorage
	if c.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "eventedge task runs waiting for a worker",
		Subjects:    []string{RunPrefix + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     storage,
		MaxAge:      c.MaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		MaxMsgSize:  MaxJobBytes * 2, // body and headers
		Discard:     jetstream.DiscardOld,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
	}
}

// EnsureStream creates the JOBS stream, or updates it to cfg when it
// exists. It is idempotent.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg.JetStreamConfig())
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", StreamName, err)
	}
	return s, nil
}

// Publish publishes j to the JOBS stream and waits for the ack. A second
// publish of the same execution id inside the duplicate window is dropped
// by the stream (ack.Duplicate is then true), so Publish is safe to retry.
func Publish(ctx context.Context, js jetstream.JetStream, j *Job) (*jetstream.PubAck, error) {
	m, err := Message(j)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(StreamName))
	if err != nil {
		return nil, fmt.Errorf("publish job %s to %s: %w", j.ExecutionID, m.Subject, err)
	}
	return ack, nil
}
