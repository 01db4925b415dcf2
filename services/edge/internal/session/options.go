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
	// HighWater is the fill (of QueueMessages or QueueBytes) above which
	// low-priority events are held or dropped. The room between it and the
	// bounds is also what held progress events may take (flow.go,
	// maxHeld). Default 0.75.
	HighWater float64
	// ClientRate and ClientBurst are the client's event budget (events/s):
	// every event spends it, and low-priority events beyond it are held
	// (progress) or dropped. Defaults 200/s and 400.
	ClientRate  float64
	ClientBurst int
	// ProgressRate bounds task_progress per task (events/s); the newest over
	// the rate is held and sent when allowed (trailing edge). Default 10.
	ProgressRate float64
	// MaxCoalescedLogs bounds the log lines a coalesced task_progress
	// carries (the newest are kept). Default 200.
	MaxCoalescedLogs int
	// CommandRate and CommandBurst bound the commands (all but ack) a
	// client may send; beyond them it is closed with 4029. Defaults 50/s
	// and 300 (room for subscribing to many rooms at once).
	CommandRate  float64
	CommandBurst int
	// AckRate and AckBurst bound the acks a client may send, apart from
	// its other commands; beyond them it is closed with 4029. A client that
	// acks each of its rooms at most four times a second (the Go and
	// browser clients: every 250 ms) sends at most 1,024 a second in 256
	// rooms. Defaults 2000/s and 1000.
	AckRate  float64
	AckBurst int
	// ExpiringNotice is how long before the token's expiry the client is
	// sent {"op":"expiring","in":<seconds>}. Default 60s.
	ExpiringNotice time.Duration
}

// Defaults.
const (
	DefaultAuthTimeout      = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultPingTimeout      = 10 * time.Second
	DefaultExpiringNotice   = time.Minute
	DefaultQueueMessages    = 1024
	DefaultQueueBytes       = 4 << 20
	DefaultMaxBatchBytes    = 64 << 10
	DefaultMaxSubscriptions = 256
	DefaultHighWater        = 0.75
	DefaultClientRate       = 200
	DefaultClientBurst      = 400
	DefaultProgressRate     = 10
	DefaultMaxCoalescedLogs = 200
	DefaultCommandRate      = 50
	DefaultCommandBurst     = 300
	DefaultAckRate          = 2000
	DefaultAckBurst         = 1000
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
	def(&o.ExpiringNotice, DefaultExpiringNotice)
	defInt(&o.QueueMessages, DefaultQueueMessages)
	defInt(&o.QueueBytes, DefaultQueueBytes)
	defInt(&o.MaxBatchBytes, DefaultMaxBatchBytes)
	defInt(&o.MaxSubscriptions, DefaultMaxSubscriptions)
	defFloat := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defFloat(&o.HighWater, DefaultHighWater)
	defFloat(&o.ClientRate, DefaultClientRate)
	defInt(&o.ClientBurst, DefaultClientBurst)
	defFloat(&o.ProgressRate, DefaultProgressRate)
	defInt(&o.MaxCoalescedLogs, DefaultMaxCoalescedLogs)
	defFloat(&o.CommandRate, DefaultCommandRate)
	defInt(&o.CommandBurst, DefaultCommandBurst)
	defFloat(&o.AckRate, DefaultAckRate)
	defInt(&o.AckBurst, DefaultAckBurst)
	return o
}
