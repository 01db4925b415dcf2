// Package metrics defines the edge node's Prometheus metrics. One *Metrics
// is created per node with the registerer it should register on, and passed
// to the components that update it; nothing here is global.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds every collector of an edge node. Safe for concurrent use.
type Metrics struct {
	Connections     prometheus.Gauge
	ConnectionsOpen prometheus.Counter
	// ConnectionsByProtocol is Connections by wire format: json or
	// protobuf (the subprotocol negotiated at the handshake).
	ConnectionsByProtocol *prometheus.GaugeVec
	Closes                *prometheus.CounterVec // by reason label
	AuthFailures          *prometheus.CounterVec // by reason
	Rooms                 prometheus.Gauge
	NATSSubs              prometheus.Gauge
	NATSConnected         prometheus.Gauge
	NATSReconnects        prometheus.Counter
	EventsIn              prometheus.Counter
	EventsInvalid         prometheus.Counter
	EventsDropped         *prometheus.CounterVec // by reason, before reaching a client queue
	Deliveries            prometheus.Counter     // events queued to clients
	FramesOut             prometheus.Counter
	// FramesHandedOff counts frames the node's Flusher could not write
	// without waiting for the socket, so a session's writer goroutine wrote
	// them (session.Flusher).
	FramesHandedOff prometheus.Counter
	BytesOut        prometheus.Counter
	MessagesIn      prometheus.Counter
	// DeliveryLatency is by path: live (fanned out from the live
	// subscription as it arrived, including progress briefly held by flow
	// control) or replay (resume replays and gap repairs, read back from
	// the stream: their latency is the event's age). Observe through
	// LiveLatency and ReplayLatency, resolved once.
	DeliveryLatency *prometheus.HistogramVec
	LiveLatency     prometheus.Histogram // DeliveryLatency{path="live"}
	ReplayLatency   prometheus.Histogram // DeliveryLatency{path="replay"}

	GapRepairs        prometheus.Counter     // events read back from the stream to fill a gap
	GapRepairFailures prometheus.Counter     // repairs that could not read the stream (retried)
	Replayed          prometheus.Counter     // events replayed to resuming subscriptions
	Resumes           prometheus.Counter     // subscriptions that resumed after a position
	Resets            *prometheus.CounterVec // resets sent, by reason
	Acks              prometheus.Counter     // ack messages received
	PositionWrites    *prometheus.CounterVec // device positions written to the KV bucket, by result

	Coalesced         prometheus.Counter     // progress events superseded by a newer one before they were sent
	MergesEncoded     prometheus.Counter     // coalesced_encodings_total{result="encoded"}
	MergesShared      prometheus.Counter     // coalesced_encodings_total{result="shared"}
	Throttled         prometheus.Counter     // progress events held back by a rate limit or the high-water mark
	ClientDrops       *prometheus.CounterVec // events not sent to a client, by priority and reason
	QueueDepth        prometheus.Histogram   // messages queued when the writer takes a frame
	QueueBytes        prometheus.Histogram   // bytes queued when the writer takes a frame
	FanoutRun         prometheus.Histogram   // live events of one room fanned out together
	Revocations       prometheus.Counter     // revocations applied from the REVOCATIONS stream
	RevocationsLoaded prometheus.Gauge       // 1 once the stored revocations are read
	HistoryWaiting    prometheus.Gauge       // resume reads of the stream waiting for a turn (history.Options.MaxInFlight)

	HandshakesRejected *prometheus.CounterVec // by reason: node_full, ip_limit, user_limit, draining, origin, subprotocol
	ConnectionFill     prometheus.Gauge       // connections / max connections
	DrainRemaining     prometheus.Gauge       // clients not yet told to close during a drain
}

// Values of the path label of DeliveryLatency.
const (
	PathLive   = "live"
	PathReplay = "replay"
)

// LatencyBuckets are the upper bounds (seconds) of DeliveryLatency.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Dropped counts an event not sent to a client.
func (m *Metrics) Dropped(priority, reason string) {
	m.ClientDrops.WithLabelValues(priority, reason).Inc()
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_connections", Help: "WebSocket connections open now (authenticated or not).",
		}),
		ConnectionsOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_connections_opened_total", Help: "WebSocket connections accepted.",
		}),
		ConnectionsByProtocol: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventedge_connections_by_protocol", Help: "WebSocket connections open now, by wire format: json or protobuf.",
		}, []string{"protocol"}),
		Closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_connections_closed_total", Help: "WebSocket connections closed, by reason.",
		}, []string{"reason"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_auth_failures_total", Help: "Refused tokens, by reason.",
		}, []string{"reason"}),
		Rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_rooms", Help: "Rooms with at least one local subscriber.",
		}),
		NATSSubs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_nats_subscriptions", Help: "NATS subscriptions held for rooms.",
		}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventedge_nats_connected", Help: "1 while the node is connected to NATS.",
		}),
		NATSReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_nats_reconnects_total", Help: "Reconnections to NATS.",
		}),
		EventsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_events_in_total", Help: "Events received from NATS.",
		}),
		EventsInvalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_events_invalid_total", Help: "Events from NATS that failed to decode or validate (logged, not delivered).",
		}),
		EventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_events_dropped_total", Help: "Events not delivered to a client, by reason.",
		}, []string{"reason"}),
		Deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_deliveries_total", Help: "Event messages queued to clients.",
		}),
		FramesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_frames_out_total", Help: "WebSocket frames written to clients.",
		}),
		FramesHandedOff: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_frames_handed_off_total", Help: "Frames that did not fit in the client socket's send buffer at once (or met a write already waiting on it), so a writer goroutine of the session's own finished them. A share of eventedge_frames_out_total that grows means clients or the network do not keep up with what is written.",
		}),
		BytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_bytes_out_total", Help: "Payload bytes written to clients.",
		}),
		MessagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventedge_client_messages_total", Help: "Messages received from clients.",
		}),
		DeliveryLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventedge_delivery_latency_seconds",
			Help:    "From the event's timestamp to the completed write of the frame carrying it, by path: live (fanned out as it arrived) or replay (resume replays and gap repairs, read back from the stream).",
			Buckets: LatencyBuckets,
		}, []string{"path"}),
	}
	// Both children exist from the start (present at 0 for rate() and
	// alerts), and the writer observes them without a label lookup.
	m.LiveLatency = m.DeliveryLatency.WithLabelValues(PathLive).(prometheus.Histogram)
	m.ReplayLatency = m.DeliveryLatency.WithLabelValues(PathReplay).(prometheus.Histogram)
	m.GapRepairs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_gap_repairs_total", Help: "Events that did not arrive live and were read back from the stream to fill the gap.",
	})
	m.GapRepairFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_gap_repair_failures_total", Help: "Gap repairs that could not read the stream (retried).",
	})
	m.Replayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_replayed_events_total", Help: "Stored events replayed to resuming subscriptions.",
	})
	m.Resumes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_resumes_total", Help: "Subscriptions that resumed after a position (since or a stored device position).",
	})
	m.Resets = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventedge_resets_total", Help: "Resets sent because a client's history was gone, by reason.",
	}, []string{"reason"})
	m.Acks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_acks_total", Help: "Ack messages received from clients.",
	})
	m.PositionWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventedge_position_writes_total", Help: "Device positions written to the key-value bucket, by result (ok, error).",
	}, []string{"result"})
	m.Coalesced = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_coalesced_total", Help: "task_progress events replaced, before they were sent, by a newer one of the same task (not lost: superseded).",
	})
	merges := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventedge_coalesced_encodings_total", Help: "Encodings of coalesced task_progress (when sent, or when the events coalesced into one since its last encoding outweigh it), by result: encoded (by this client, kept for the others) or shared (another client of the node had encoded the same merged event).",
	}, []string{"result"})
	m.MergesEncoded, m.MergesShared = merges.WithLabelValues("encoded"), merges.WithLabelValues("shared")
	m.Throttled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_throttled_total", Help: "task_progress events held back by a rate limit or the high-water mark (the newest per task is sent when allowed).",
	})
	m.ClientDrops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventedge_client_drops_total", Help: "Events not sent to a client, by priority and reason (throttled, high_water, queue_full, slow_consumer, room_rate).",
	}, []string{"priority", "reason"})
	m.QueueDepth = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eventedge_queue_depth_messages", Help: "Messages in a client's queue when its writer takes a frame.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
	})
	m.QueueBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eventedge_queue_bytes", Help: "Bytes in a client's queue when its writer takes a frame.",
		Buckets: prometheus.ExponentialBuckets(256, 4, 8),
	})
	m.FanoutRun = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "eventedge_fanout_run_events", Help: "Valid live events of one room fanned out together: consecutive ones that waited in a shard's channel while the node wrote to clients. Above 1: the node is behind its input and batches (about 1 does not prove it keeps up: events of other rooms on the shard break runs).",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	})
	m.Revocations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eventedge_revocations_total", Help: "Valid revocations applied from the REVOCATIONS stream (ctl.revoke), those read at start or after a reconnection included.",
	})
	m.RevocationsLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventedge_revocations_loaded", Help: "1 once the node has read the revocations the REVOCATIONS stream held when it started; until then it refuses WebSocket upgrades (503, reason starting) and admin requests, and /readyz says why.",
	})
	m.HistoryWaiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventedge_history_reads_waiting",
		Help: "Requests of resuming subscriptions waiting for a turn to read the EVENTS stream (--history-reads in flight at once).",
	})
	reg.MustRegister(m.Coalesced, merges, m.Throttled, m.ClientDrops, m.QueueDepth, m.QueueBytes, m.FanoutRun, m.Revocations, m.RevocationsLoaded, m.HistoryWaiting)
	reg.MustRegister(m.GapRepairs, m.GapRepairFailures, m.Replayed, m.Resumes, m.Resets, m.Acks, m.PositionWrites)
	for _, p := range []string{"json", "protobuf"} {
		m.ConnectionsByProtocol.WithLabelValues(p) // present at 0
	}
	reg.MustRegister(m.Connections, m.ConnectionsOpen, m.ConnectionsByProtocol, m.Closes, m.AuthFailures, m.Rooms, m.NATSSubs,
		m.NATSConnected, m.NATSReconnects, m.EventsIn, m.EventsInvalid, m.EventsDropped, m.Deliveries,
		m.FramesOut, m.FramesHandedOff, m.BytesOut, m.MessagesIn, m.DeliveryLatency)
	m.HandshakesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventedge_handshakes_rejected_total", Help: "WebSocket handshakes refused, by reason: node_full (503), ip_limit and user_limit (429; user_limit also counts 4029 closes right after the auth message), draining (503), origin (403), subprotocol (400: only unknown WebSocket subprotocols offered), starting (503: the stored revocations not read yet).",
	}, []string{"reason"})
	for _, r := range []string{"node_full", "ip_limit", "user_limit", "draining", "origin", "subprotocol", "starting"} {
		m.HandshakesRejected.WithLabelValues(r) // present at 0, for rate() and alerts
	}
	m.ConnectionFill = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventedge_connection_fill_ratio", Help: "Connections (authenticated or not) as a fraction of --max-conns.",
	})
	m.DrainRemaining = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eventedge_drain_remaining", Help: "Clients not yet closed by the drain in progress (0 when not draining).",
	})
	reg.MustRegister(m.HandshakesRejected, m.ConnectionFill, m.DrainRemaining)
	return m
}
