package service

import (
	"time"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
)

// Options configures a Service. The zero value of each field selects its
// default.
type Options struct {
	// NATSURL is the NATS server URL(s), comma separated. Default
	// nats://127.0.0.1:4222.
	NATSURL string
	// NATSMonitorURL is the NATS monitoring endpoint read at every probe,
	// such as http://127.0.0.1:8222/varz. Default empty: not read.
	NATSMonitorURL string
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz).
	// Default ":9093".
	AdminAddr string
	// Interval is how often system_status is published when nothing
	// changes. Default 10s.
	Interval time.Duration
	// CheckInterval is how often the status is decided again without new
	// input, which bounds how late a silent node is noticed. Default 1s.
	CheckInterval time.Duration
	// ProbeInterval is how often NATS, JetStream, the monitoring endpoint
	// and the host are probed; each probe may take as long. Default 2s.
	ProbeInterval time.Duration
	// PublishTimeout bounds one publish, ack included. Default 5s.
	PublishTimeout time.Duration
	// ProcDir is where /proc is read from. Default "/proc".
	ProcDir string
	// Monitor configures the decision.
	Monitor monitor.Options
}

// Defaults of Options.
const (
	DefaultNATSURL        = "nats://127.0.0.1:4222"
	DefaultAdminAddr      = ":9093"
	DefaultInterval       = 10 * time.Second
	DefaultCheckInterval  = time.Second
	DefaultProbeInterval  = 2 * time.Second
	DefaultPublishTimeout = 5 * time.Second
)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.NATSURL == "" {
		o.NATSURL = DefaultNATSURL
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	o.Monitor = o.Monitor.WithDefaults()
	return o
}
