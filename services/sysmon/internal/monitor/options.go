package monitor

import "time"

// Options configures the decision. The zero value of each field selects its
// default.
type Options struct {
	// NodeSilence is how long after its last stats an edge node (or a
	// worker) counts as silent: it is left out of the metrics, and a silent
	// edge node raises edge-silent:<node>. Default 15s (three stats
	// intervals).
	NodeSilence time.Duration
	// NodeForget is how long after its last stats a silent node or worker is
	// forgotten, clearing its alert: a node that was scaled away does not
	// keep the system degraded forever. Default 1h; raised to NodeSilence
	// when lower.
	NodeForget time.Duration
	// MaxP99 is the p99 delivery latency of an edge node above which the
	// system is degraded. Default 100ms.
	MaxP99 time.Duration
	// MaxDrops is the rate of dropped events per second of one edge node
	// above which the system is degraded. Default (0): 10. Negative: any
	// drop at all degrades.
	MaxDrops float64
	// MaxStreamFill is the fill (0-1] of a limit of the EVENTS stream or of
	// the JetStream account above which the system is degraded. Default 0.9.
	MaxStreamFill float64
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultNodeSilence   = 15 * time.Second
	DefaultNodeForget    = time.Hour
	DefaultMaxP99        = 100 * time.Millisecond
	DefaultMaxDrops      = 10
	DefaultMaxStreamFill = 0.9
)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.NodeSilence <= 0 {
		o.NodeSilence = DefaultNodeSilence
	}
	if o.NodeForget <= 0 {
		o.NodeForget = DefaultNodeForget
	}
	o.NodeForget = max(o.NodeForget, o.NodeSilence)
	if o.MaxP99 <= 0 {
		o.MaxP99 = DefaultMaxP99
	}
	switch {
	case o.MaxDrops == 0:
		o.MaxDrops = DefaultMaxDrops
	case o.MaxDrops < 0:
		o.MaxDrops = 0 // "above 0": any drop
	}
	if o.MaxStreamFill <= 0 || o.MaxStreamFill > 1 {
		o.MaxStreamFill = DefaultMaxStreamFill
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
