package monitor

import (
	"fmt"
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Alert ids (those of one node or limit end with ":<name>").
const (
	IDJetStream     = "jetstream-unavailable"
	IDStream        = "stream-unavailable"
	IDStreamFill    = "stream-fill"
	IDJetStreamFill = "jetstream-fill"
	IDEdgeSilent    = "edge-silent"
	IDEdgeP99       = "edge-p99"
	IDEdgeDrops     = "edge-drops"
	IDNoEdges       = "no-edge-nodes"
	IDNATSMonitor   = "nats-monitor"
)

const (
	info     = pb.Severity_SEVERITY_INFO
	warning  = pb.Severity_SEVERITY_WARNING
	critical = pb.Severity_SEVERITY_CRITICAL
)

// conditions lists what is wrong now. Since is set only where the start of
// the condition is known from the inputs; Evaluate fills the others with
// the time the condition was first seen. Called with mu held.
func (m *Monitor) conditions(now time.Time) []Alert {
	var out []Alert
	add := func(id string, sev pb.Severity, since time.Time, format string, args ...any) {
		out = append(out, Alert{ID: id, Severity: sev, Message: fmt.Sprintf(format, args...), Since: since})
	}

	if n := m.nats; n != nil {
		switch {
		case n.JetStreamErr != nil:
			add(IDJetStream, critical, time.Time{}, "JetStream unavailable: %v", n.JetStreamErr)
		case n.StreamErr != nil:
			add(IDStream+":"+n.Stream.Name, critical, time.Time{}, "stream %s unavailable: %v", n.Stream.Name, n.StreamErr)
		}
		if n.JetStreamErr == nil {
			for _, l := range []struct {
				kind  string
				used  uint64
				limit int64
			}{
				{"storage", n.Account.Storage, n.Account.MaxStorage},
				{"memory", n.Account.Memory, n.Account.MaxMemory},
			} {
				if f := fill(l.used, l.limit); f > m.opts.MaxStreamFill {
					add(IDJetStreamFill+":"+l.kind, warning, time.Time{}, "JetStream account %s at %.0f%% of its limit (%d of %d bytes)", l.kind, 100*f, l.used, l.limit)
				}
			}
		}
		if n.JetStreamErr == nil && n.StreamErr == nil {
			s := n.Stream
			if f := fill(s.Bytes, s.MaxBytes); f > m.opts.MaxStreamFill {
				add(IDStreamFill+":"+s.Name+":bytes", warning, time.Time{}, "stream %s at %.0f%% of its byte limit (%d of %d)", s.Name, 100*f, s.Bytes, s.MaxBytes)
			}
			if f := fill(s.Messages, s.MaxMsgs); f > m.opts.MaxStreamFill {
				add(IDStreamFill+":"+s.Name+":messages", warning, time.Time{}, "stream %s at %.0f%% of its message limit (%d of %d)", s.Name, 100*f, s.Messages, s.MaxMsgs)
			}
		}
		if n.MonitorErr != nil {
			add(IDNATSMonitor, info, time.Time{}, "NATS monitoring endpoint: %v", n.MonitorErr)
		}
	}

	live := 0
	var lastSilent time.Time // when the most recent node went silent
	maxP99 := ms(m.opts.MaxP99)
	for name, st := range m.edges {
		if !m.live(st.seen, now) {
			// The condition is "no stats since": it started with the
			// last stats, as in "edge-2: no stats for 30s".
			add(IDEdgeSilent+":"+name, warning, st.seen, "%s: no stats for %s", name, roundDuration(now.Sub(st.seen)))
			lastSilent = later(lastSilent, st.seen.Add(m.opts.NodeSilence))
			continue
		}
		live++
		s := st.last
		if s.P99DeliveryLatencyMs > maxP99 {
			add(IDEdgeP99+":"+name, warning, time.Time{}, "%s: p99 delivery latency %.1f ms, over %.1f ms", name, s.P99DeliveryLatencyMs, maxP99)
		}
		if s.DropsPerSecond > m.opts.MaxDrops {
			add(IDEdgeDrops+":"+name, warning, time.Time{}, "%s: %.1f events dropped per second, over %g", name, s.DropsPerSecond, m.opts.MaxDrops)
		}
	}
	if live == 0 && now.Sub(m.started) >= m.opts.NodeSilence {
		since := later(m.started, lastSilent)
		add(IDNoEdges, warning, since, "no edge node is reporting stats")
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// roundDuration keeps a message short: whole seconds, or milliseconds
// under a second (silence thresholds that short are for tests).
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
