package monitor

import "time"

// NATS is what a probe of NATS and JetStream found.
type NATS struct {
	// RTT is sysmon's own round trip to NATS; 0 when unknown.
	RTT time.Duration
	// JetStreamErr is set when JetStream's account info could not be read.
	JetStreamErr error
	// Account is the JetStream account's use, valid when JetStreamErr is nil.
	Account Account
	// StreamErr is set when the EVENTS stream's info could not be read.
	StreamErr error
	// Stream is the EVENTS stream's state, valid when StreamErr is nil.
	Stream Stream
	// MonitorErr is set when the NATS monitoring endpoint is configured and
	// could not be read.
	MonitorErr error
}

// Account is the use and limits of the JetStream account, in bytes. A limit
// of 0 or less is no limit.
type Account struct {
	Memory, Storage       uint64
	MaxMemory, MaxStorage int64
}

// Stream is the state and limits of a stream. A limit of 0 or less is no
// limit.
type Stream struct {
	Name              string
	Messages, Bytes   uint64
	MaxMsgs, MaxBytes int64
}

// Fills are the fractions of the limits in use that this probe could read,
// by limit: "stream_bytes" and "stream_messages" of the EVENTS stream (when
// StreamErr is nil), "account_storage" and "account_memory" of the
// JetStream account (when JetStreamErr is nil). 0 means no limit. The same
// fractions decide the stream-fill and jetstream-fill alerts.
func (n *NATS) Fills() map[string]float64 {
	out := map[string]float64{}
	if n.StreamErr == nil {
		out["stream_bytes"] = fill(n.Stream.Bytes, n.Stream.MaxBytes)
		out["stream_messages"] = fill(n.Stream.Messages, n.Stream.MaxMsgs)
	}
	if n.JetStreamErr == nil {
		out["account_storage"] = fill(n.Account.Storage, n.Account.MaxStorage)
		out["account_memory"] = fill(n.Account.Memory, n.Account.MaxMemory)
	}
	return out
}

// fill is used/limit, or 0 for no limit.
func fill(used uint64, limit int64) float64 {
	if limit <= 0 {
		return 0
	}
	return float64(used) / float64(limit)
}
