package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// Subjects the stats are published on (core NATS, not JetStream: a lost
// message is replaced by the next one).
const (
	EdgeSubject   = "ctl.edge.stats"
	WorkerSubject = "ctl.worker.stats"
)

// Interval is how often every edge node and worker publishes its stats.
// sysmon's silence threshold (default 15 s) is three intervals.
const Interval = 5 * time.Second

// MaxMessageBytes bounds one stats message.
const MaxMessageBytes = 4096

// MaxNameLen is the longest node or worker name.
const MaxNameLen = 64

// Edge is the stats message of one edge node (EdgeSubject). The zero value
// is not valid: Node and At are required.
type Edge struct {
	Node                 string    `json:"node"`
	Connections          int64     `json:"connections"`
	Rooms                int64     `json:"rooms"`
	EventsInPerSecond    float64   `json:"eventsInPerSecond"`
	EventsOutPerSecond   float64   `json:"eventsOutPerSecond"`
	DropsPerSecond       float64   `json:"dropsPerSecond"`
	P99DeliveryLatencyMs float64   `json:"p99DeliveryLatencyMs"`
	NATSRTTMs            float64   `json:"natsRttMs"`
	At                   time.Time `json:"at"`
}

// Worker is the stats message of one job worker (WorkerSubject). The zero
// value is not valid: Worker and At are required.
type Worker struct {
	Worker    string    `json:"worker"`
	Running   int64     `json:"running"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	At        time.Time `json:"at"`
}

// ValidName reports whether s may name an edge node or a worker: 1 to
// MaxNameLen printable ASCII characters without spaces (the rule of the
// edge's --node-name).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Validate returns an *InvalidError naming the first wrong field of e.
func (e Edge) Validate() error {
	if !ValidName(e.Node) {
		return invalid(ReasonName, "node", "%q: want 1-%d printable ASCII characters without spaces", clip(e.Node), MaxNameLen)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"connections", float64(e.Connections)},
		{"rooms", float64(e.Rooms)},
		{"eventsInPerSecond", e.EventsInPerSecond},
		{"eventsOutPerSecond", e.EventsOutPerSecond},
		{"dropsPerSecond", e.DropsPerSecond},
		{"p99DeliveryLatencyMs", e.P99DeliveryLatencyMs},
		{"natsRttMs", e.NATSRTTMs},
	} {
		if err := nonNegative(f.name, f.v); err != nil {
			return err
		}
	}
	return validTime(e.At)
}

// Validate returns an *InvalidError naming the first wrong field of w.
func (w Worker) Validate() error {
	if !ValidName(w.Worker) {
		return invalid(ReasonName, "worker", "%q: want 1-%d printable ASCII characters without spaces", clip(w.Worker), MaxNameLen)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"running", w.Running}, {"succeeded", w.Succeeded}, {"failed", w.Failed}} {
		if err := nonNegative(f.name, float64(f.v)); err != nil {
			return err
		}
	}
	return validTime(w.At)
}

// Encode validates e and returns its JSON form, ready to publish on
// EdgeSubject.
func (e Edge) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// Encode validates w and returns its JSON form, ready to publish on
// WorkerSubject.
func (w Worker) Encode() ([]byte, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(w)
}

// ParseEdge decodes and validates an edge node's message. Every error is an
// *InvalidError.
func ParseEdge(data []byte) (Edge, error) {
	var e Edge
	if err := decode(data, &e); err != nil {
		return Edge{}, err
	}
	if err := e.Validate(); err != nil {
		return Edge{}, err
	}
	return e, nil
}

// ParseWorker decodes and validates a worker's message. Every error is an
// *InvalidError.
func ParseWorker(data []byte) (Worker, error) {
	var w Worker
	if err := decode(data, &w); err != nil {
		return Worker{}, err
	}
	if err := w.Validate(); err != nil {
		return Worker{}, err
	}
	return w, nil
}

func decode(data []byte, v any) error {
	if len(data) > MaxMessageBytes {
		return invalid(ReasonTooLarge, "", "%d bytes, at most %d", len(data), MaxMessageBytes)
	}
	// json.Unmarshal would accept "null" and leave v zero; an object is
	// required. Whitespace before it is allowed, as JSON allows it.
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return invalid(ReasonJSON, "", "want a JSON object")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return invalid(ReasonTime, "at", "%v", err)
		}
		return invalid(ReasonJSON, "", "%v", err)
	}
	return nil
}

func nonNegative(field string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return invalid(ReasonNegative, field, "%v: want a finite number", v)
	}
	if v < 0 {
		return invalid(ReasonNegative, field, "%v: must not be negative", v)
	}
	return nil
}

func validTime(t time.Time) error {
	if t.IsZero() {
		return invalid(ReasonTime, "at", "missing")
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return invalid(ReasonTime, "at", "year %d out of range", y)
	}
	return nil
}

func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
