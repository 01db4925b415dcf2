// Package revoke is the contract of access revocations: the message a
// service publishes on ctl.revoke when a user loses access, the
// REVOCATIONS stream that keeps those messages for edge nodes started or
// reconnected later, and a Go publisher.
//
// A revocation applies to the tokens issued before it was stored (the
// stream's timestamp of the message): the issuer mints new tokens with the
// updated claims, and those are unaffected.
//
// Typical use by a service:
//
//	js, _ := jetstream.New(nc)
//	if _, err := revoke.EnsureStreamExists(ctx, js, revoke.StreamConfig{}); err != nil { … }
//	ack, err := revoke.Publish(ctx, js, revoke.Message{UserID: "u7", Rooms: []string{"project:p1"}})
//
// A plain core-NATS publish on Subject (`nats pub ctl.revoke …`) is stored
// too once the stream exists; `nats req` shows the stream's ack.
package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/internal/jsstream"
	"github.com/eventedge/eventedge/proto/room"
)

// Subject is the NATS subject revocations are published on, and the only
// subject of the REVOCATIONS stream.
const Subject = "ctl.revoke"

// StreamName is the JetStream stream that stores revocations.
const StreamName = "REVOCATIONS"

// Limits of one message.
const (
	MaxRooms = 256      // rooms of one revocation
	MaxBytes = 64 << 10 // encoded size of one revocation
)

// Message is a revocation: {"userId":"u1","rooms":["project:p1"]}. With
// rooms, the user leaves those rooms and older tokens cannot subscribe to
// them again; without rooms, every connection of the user is closed
// (4003) and older tokens are refused.
type Message struct {
	UserID string   `json:"userId"`
	Rooms  []string `json:"rooms,omitempty"`
}

// Validate checks m and returns its rooms, parsed.
func (m Message) Validate() ([]room.Room, error) {
	if !room.ValidID(m.UserID) {
		return nil, fmt.Errorf("revocation: userId %q: want 1-64 characters of A-Z a-z 0-9 _ -", m.UserID)
	}
	if len(m.Rooms) > MaxRooms {
		return nil, fmt.Errorf("revocation: %d rooms, at most %d", len(m.Rooms), MaxRooms)
	}
	rooms := make([]room.Room, 0, len(m.Rooms))
	for _, name := range m.Rooms {
		r, err := room.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("revocation: %w", err)
		}
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// Parse decodes and validates a revocation message. Unknown fields are
// ignored.
func Parse(data []byte) (Message, []room.Room, error) {
	var m Message
	if len(data) > MaxBytes {
		return m, nil, fmt.Errorf("revocation: message of %d bytes, at most %d", len(data), MaxBytes)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, nil, fmt.Errorf("revocation: %w", err)
	}
	rooms, err := m.Validate()
	return m, rooms, err
}

// Marshal validates m and encodes it.
func Marshal(m Message) ([]byte, error) {
	if _, err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("revocation: %w", err)
	}
	if len(b) > MaxBytes {
		return nil, fmt.Errorf("revocation: message of %d bytes, at most %d", len(b), MaxBytes)
	}
	return b, nil
}

// StreamConfig configures the REVOCATIONS stream. The zero value of each
// field selects its default.
type StreamConfig struct {
	// MaxAge is how long revocations are kept: at least the longest
	// token lifetime, or an old token works again afterwards. Default 24h
	// (the edge's --revocation-ttl).
	MaxAge time.Duration
	// Replicas is the number of stream replicas (1, 3 or 5 in a cluster).
	// Default 1.
	Replicas int
	// MemoryStorage keeps the stream in memory instead of files. Default
	// false (file storage); for tests only.
	MemoryStorage bool
}

// Stream defaults.
const (
	DefaultMaxAge   = 24 * time.Hour
	DefaultReplicas = 1
	// maxDuplicates is the duplicate window, shortened to MaxAge when that
	// is shorter. Revocations carry no message id; the window only has to
	// be valid.
	maxDuplicates = 2 * time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
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
	case c.MaxAge < time.Second:
		return fmt.Errorf("revocation stream max age %s: must be at least 1s", c.MaxAge)
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("revocation stream replicas %d: must be 1, 3 or 5", c.Replicas)
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
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "eventedge access revocations (ctl.revoke), kept as long as tokens live",
		Subjects:    []string{Subject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     storage,
		MaxAge:      c.MaxAge,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		MaxMsgSize:  MaxBytes,
		// Old revocations leave only by age: dropping one early would give
		// its rooms back to old tokens.
		Discard:     jetstream.DiscardOld,
		Duplicates:  min(maxDuplicates, c.MaxAge),
		Replicas:    c.Replicas,
		AllowDirect: false,
	}
}

// EnsureStream creates the REVOCATIONS stream, or updates it to cfg when
// it exists: for edge nodes, which own its settings.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	return jsstream.Ensure(ctx, js, cfg)
}

// EnsureStreamExists creates the REVOCATIONS stream with cfg when it does
// not exist and leaves an existing one as it is: for services that publish
// revocations but do not own the stream's settings. It reports whether it
// created the stream. An invalid cfg is an error even when the stream
// exists.
func EnsureStreamExists(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (bool, error) {
	return jsstream.EnsureExists(ctx, js, cfg)
}

// Publish validates m, publishes it on Subject and waits for the
// REVOCATIONS stream's ack: once it returns nil, every edge node applies
// the revocation, including nodes started or reconnected later. opts are
// added to jetstream.WithExpectStream(StreamName).
func Publish(ctx context.Context, js jetstream.JetStream, m Message, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	b, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	ack, err := js.Publish(ctx, Subject, b, append(opts, jetstream.WithExpectStream(StreamName))...)
	if err != nil {
		return nil, fmt.Errorf("publish revocation of %s: %w", m.UserID, err)
	}
	return ack, nil
}
