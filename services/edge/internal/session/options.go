package session

import "time"

// Options configures sessions. Zero fields take their defaults.
type Options struct {
	// AuthTimeout is how long a connection without an Authorization header
	// has to send its auth message. Default 5s.
	AuthTimeout time.Duration
	// WriteTimeout bounds each frame write; a peer that does not take a
	// frame in time is dropped. Default 10s.
	WriteTimeout time.Duration
	// PingInterval is the time between WebSocket pings. Default 25s.
	PingInterval time.Duration
	// PingTimeout is how long a pong may take before the peer is dropped.
	// Default 10s.
	PingTimeout time.Duration
	// QueueMessages bounds the messages queued for one client. Default 1024.
	QueueMessages int
	// QueueBytes bounds the bytes queued for one client. Default 4 MiB.
	QueueBytes int
	// MaxBatchBytes bounds the frame the writer builds from several queued
	// messages; a single larger message is still sent alone. Default 64 KiB.
	MaxBatchBytes int
	// MaxSubscriptions bounds the rooms one connection may subscribe to.
	// Default 256.
	MaxSubscriptions int
}

// Defaults.
const (
	DefaultAuthTimeout      = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 10 * time.Second
	DefaultQueueMessages    = 1024
	DefaultQueueBytes       = 4 << 20
	DefaultMaxBatchBytes    = 64 << 10
	DefaultMaxSubscriptions = 256
)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.AuthTimeout, DefaultAuthTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.PingInterval, DefaultPingInterval)
	def(&o.PingTimeout, DefaultPingTimeout)
	defInt(&o.QueueMessages, DefaultQueueMessages)
	defInt(&o.QueueBytes, DefaultQueueBytes)
	defInt(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	defInt(&o.MaxSubscriptions, DefaultMaxSubscriptions)
	return o
}
