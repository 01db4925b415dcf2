package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/internal/jsstream"
	"github.com/eventedge/eventedge/proto/room"
)

// StreamName is the JetStream stream that stores every event.
const StreamName = "EVENTS"

// Headers the EVENTS stream's RePublish adds to every live.> message. The
// edge takes an event's seq from Nats-Sequence; Nats-Last-Sequence lets a
// reader of one room tell whether it missed a message of that room.
const (
	HeaderSequence     = jetstream.SequenceHeader // "Nats-Sequence": stream sequence of this event
	HeaderLastSequence = "Nats-Last-Sequence"     // previous stream sequence on the same subject (0: none)
)

// StreamConfig configures the EVENTS stream. The zero value of each field
// selects its default.
type StreamConfig struct {
	// MaxAge is how long events are retained. Default 24h.
	MaxAge time.Duration
	// MaxMsgsPerSubject bounds retained events per room. Default 10000.
	MaxMsgsPerSubject int64
	// MaxBytes bounds the whole stream. Default 0: unlimited.
	MaxBytes int64
	// Duplicates is the window in which a second publish with the same
	// Nats-Msg-Id is dropped. Default 2m; must not exceed MaxAge.
	Duplicates time.Duration
	// Replicas is the number of stream replicas (1, 3 or 5 in a cluster).
	// Default 1.
	Replicas int
	// MemoryStorage keeps the stream in memory instead of files. Default
	// false (file storage); for tests only.
	MemoryStorage bool
}

// Stream defaults.
const (
	DefaultMaxAge            = 24 * time.Hour
	DefaultMaxMsgsPerSubject = 10000
	DefaultDuplicates        = 2 * time.Minute
	DefaultReplicas          = 1
)

// WithDefaults returns c with every zero field set to its default.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxMsgsPerSubject == 0 {
		c.MaxMsgsPerSubject = DefaultMaxMsgsPerSubject
	}
	if c.Duplicates == 0 {
		c.Duplicates = DefaultDuplicates
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	return c
}

// Validate reports the first setting of c (after defaults) that is wrong.
func (c StreamConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.MaxAge < 0:
		return fmt.Errorf("stream max age %s: must be positive", c.MaxAge)
	case c.MaxMsgsPerSubject < 0:
		return fmt.Errorf("stream max messages per subject %d: must be positive", c.MaxMsgsPerSubject)
	case c.MaxBytes < 0:
		return fmt.Errorf("stream max bytes %d: must be positive or 0 (unlimited)", c.MaxBytes)
	case c.Duplicates < 0 || c.Duplicates > c.MaxAge:
		return fmt.Errorf("stream duplicate window %s: must be positive and at most the max age %s", c.Duplicates, c.MaxAge)
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("stream replicas %d: must be 1, 3 or 5", c.Replicas)
	}
	return nil
}

// JetStreamConfig returns the jetstream stream configuration for c.
func (c StreamConfig) JetStreamConfig() jetstream.StreamConfig {
	c = c.WithDefaults()
	storage := jetstream.FileStorage
	if c.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	maxBytes := c.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "eventedge events, one subject per room",
		Subjects:          []string{room.StoredPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           storage,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: c.MaxMsgsPerSubject,
		MaxBytes:          maxBytes,
		MaxMsgs:           -1,
		MaxMsgSize:        1 << 20, // NATS' max_payload: body and headers
		Discard:           jetstream.DiscardOld,
		Duplicates:        c.Duplicates,
		Replicas:          c.Replicas,
		// No direct gets: with replicas, any replica answers a direct get,
		// and one that lags the leader answers "not found" for an event
		// just stored. A replay or gap repair that reads such an answer
		// skips the event for good. Message gets go to the leader.
		AllowDirect: false,
		RePublish: &jetstream.RePublish{
			Source:      room.StoredPrefix + ".>",
			Destination: room.LivePrefix + ".>",
		},
	}
}

// EnsureStreams creates the EVENTS stream, or updates it to cfg when it
// exists. It is idempotent: every service may call it at start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	return jsstream.Ensure(ctx, js, cfg)
}

// EnsureStreamExists creates the EVENTS stream with cfg when it does not
// exist, and leaves an existing one as it is: for services that publish but
// do not own the stream's settings (EnsureStreams would overwrite them). It
// reports whether it created the stream. An invalid cfg is an error even
// when the stream exists.
func EnsureStreamExists(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (bool, error) {
	return jsstream.EnsureExists(ctx, js, cfg)
}

// Publish normalizes ev (id, timestamp and type when missing; ev is
// modified), validates it, publishes its protobuf encoding to the subject
// of its room with Nats-Msg-Id = ev.Id, and waits for JetStream's ack.
//
// After an error, calling Publish again with the same ev is safe: the id is
// kept, so a publish that did reach the stream is de-duplicated (ack.Duplicate
// is then true).
func Publish(ctx context.Context, js jetstream.JetStream, ev *pb.Event) (*jetstream.PubAck, error) {
	msg, err := Message(ev)
	if err != nil {
		return nil, err
	}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.Id), jetstream.WithExpectStream(StreamName))
	if err != nil {
		return nil, fmt.Errorf("publish event %s to %s: %w", ev.Id, msg.Subject, err)
	}
	return ack, nil
}

// Message is the NATS message Publish sends for ev: ev normalized (ev is
// modified) and validated, its protobuf encoding on the subject of its
// room with the Content-Type header. Publish it with Nats-Msg-Id = ev.Id
// and the expected stream StreamName, as Publish does (a publisher that
// publishes asynchronously builds its messages with it).
func Message(ev *pb.Event) (*nats.Msg, error) {
	Normalize(ev)
	if err := Validate(ev); err != nil {
		return nil, err
	}
	body, err := Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", ev.Id, err)
	}
	if len(body) > MaxEventBytes {
		return nil, fmt.Errorf("%w: event %s is %d bytes, at most %d", ErrTooLarge, ev.Id, len(body), MaxEventBytes)
	}
	r, _ := room.Parse(ev.Room) // validated above
	msg := &nats.Msg{Subject: r.Subject(), Data: body, Header: nats.Header{}}
	msg.Header.Set(HeaderContentType, ContentTypeProtobuf)
	return msg, nil
}

// IsInvalid reports whether err is a validation error (as opposed to a
// broker error worth retrying).
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) }
