// Package jsstream holds the two ways the contract packages (events,
// revoke) put their JetStream stream in place: owned (create or update to
// the owner's settings) and used (create with defaults only when missing).
package jsstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Config is a contract package's stream settings.
type Config interface {
	// Validate reports the first wrong setting.
	Validate() error
	// JetStreamConfig is the stream's configuration.
	JetStreamConfig() jetstream.StreamConfig
}

// Ensure validates cfg and creates the stream it describes, or updates it
// to cfg when it exists: for the stream's owner.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	jc := cfg.JetStreamConfig()
	s, err := js.CreateOrUpdateStream(ctx, jc)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", jc.Name, err)
	}
	return s, nil
}

// EnsureExists validates cfg and creates the stream with it when it does
// not exist, leaving an existing one as it is: for a service that uses the
// stream but does not own its settings. It reports whether it created the
// stream.
func EnsureExists(ctx context.Context, js jetstream.JetStream, cfg Config) (bool, error) {
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	name := cfg.JetStreamConfig().Name
	_, err := js.Stream(ctx, name)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return false, fmt.Errorf("stream %s: %w", name, err)
	}
	if _, err := Ensure(ctx, js, cfg); err != nil {
		return false, err
	}
	return true, nil
}
