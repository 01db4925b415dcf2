package session

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
)

// TestSessionOptions: sessions of an Env whose Options have their defaults
// applied point to those Options (no copy per connection); an Env with
// zero fields still gives its sessions the defaults, in a copy of their
// own, and its Options stay as they were.
func TestSessionOptions(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	env := &Env{Metrics: m, Log: zerolog.Nop(), Options: Options{QueueMessages: 7}.WithDefaults()}
	a, b := New(env, nil, Info{}), New(env, nil, Info{})
	if a.opts != &env.Options || b.opts != &env.Options {
		t.Fatal("sessions of an Env with defaults applied do not share its Options")
	}
	raw := &Env{Metrics: m, Log: zerolog.Nop(), Options: Options{QueueMessages: 7}}
	c := New(raw, nil, Info{})
	if c.opts == &raw.Options {
		t.Fatal("a session points to Options without defaults")
	}
	if *c.opts != raw.Options.WithDefaults() || c.opts.QueueMessages != 7 || c.opts.PingInterval != DefaultPingInterval {
		t.Fatalf("session options %+v; want %+v", *c.opts, raw.Options.WithDefaults())
	}
	if raw.Options != (Options{QueueMessages: 7}) {
		t.Fatalf("the Env's Options changed: %+v", raw.Options)
	}
}
