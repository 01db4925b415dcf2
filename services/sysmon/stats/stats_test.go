package stats_test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/sysmon/stats"
)

func TestParseEdge(t *testing.T) {
	at := time.Date(2026, 11, 26, 5, 3, 13, 975e6, time.UTC)
	valid := `{"node":"edge-1","connections":12,"rooms":3,"eventsInPerSecond":1.5,"eventsOutPerSecond":40,"dropsPerSecond":0,"p99DeliveryLatencyMs":3.2,"natsRttMs":0.4,"at":"2026-11-26T05:03:13.975Z"}`
	e, err := stats.ParseEdge([]byte(valid))
	if err != nil {
		t.Fatalf("ParseEdge(valid): %v", err)
	}
	want := stats.Edge{Node: "edge-1", Connections: 12, Rooms: 3, EventsInPerSecond: 1.5, EventsOutPerSecond: 40,
		P99DeliveryLatencyMs: 3.2, NATSRTTMs: 0.4, At: at}
	if !e.At.Equal(want.At) {
		t.Errorf("At = %v, want %v", e.At, want.At)
	}
	e.At = at
	if e != want {
		t.Errorf("ParseEdge = %+v, want %+v", e, want)
	}

	for _, tc := range []struct {
		name, in string
		reason   stats.Reason
		field    string
	}{
		{"not json", `{"node":`, stats.ReasonJSON, ""},
		{"null", `null`, stats.ReasonJSON, ""},
		{"array", `[1]`, stats.ReasonJSON, ""},
		{"empty", ``, stats.ReasonJSON, ""},
		{"string for number", `{"node":"a","connections":"12","at":"2026-01-01T00:00:00Z"}`, stats.ReasonJSON, ""},
		{"fraction for integer", `{"node":"a","connections":1.5,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonJSON, ""},
		{"no node", `{"connections":1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonName, "node"},
		{"space in node", `{"node":"edge 1","at":"2026-01-01T00:00:00Z"}`, stats.ReasonName, "node"},
		{"non-ascii node", `{"node":"édge","at":"2026-01-01T00:00:00Z"}`, stats.ReasonName, "node"},
		{"long node", `{"node":"` + strings.Repeat("n", 65) + `","at":"2026-01-01T00:00:00Z"}`, stats.ReasonName, "node"},
		{"negative connections", `{"node":"a","connections":-1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "connections"},
		{"negative rooms", `{"node":"a","rooms":-3,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "rooms"},
		{"negative in", `{"node":"a","eventsInPerSecond":-0.5,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "eventsInPerSecond"},
		{"negative out", `{"node":"a","eventsOutPerSecond":-1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "eventsOutPerSecond"},
		{"negative drops", `{"node":"a","dropsPerSecond":-1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "dropsPerSecond"},
		{"negative p99", `{"node":"a","p99DeliveryLatencyMs":-1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "p99DeliveryLatencyMs"},
		{"negative rtt", `{"node":"a","natsRttMs":-1,"at":"2026-01-01T00:00:00Z"}`, stats.ReasonNegative, "natsRttMs"},
		{"no at", `{"node":"a"}`, stats.ReasonTime, "at"},
		{"bad at", `{"node":"a","at":"yesterday"}`, stats.ReasonTime, "at"},
		{"too large", `{"node":"a","pad":"` + strings.Repeat("x", stats.MaxMessageBytes) + `"}`, stats.ReasonTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stats.ParseEdge([]byte(tc.in))
			if got := stats.ReasonOf(err); got != tc.reason {
				t.Fatalf("ParseEdge(%.60s) = %v, want reason %q", tc.in, err, tc.reason)
			}
			var ie *stats.InvalidError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Errorf("error %v: field %q, want %q", err, ie.Field, tc.field)
			}
		})
	}
}

func TestParseEdgeIgnoresUnknownFields(t *testing.T) {
	e, err := stats.ParseEdge([]byte(` {"node":"edge-9","future":{"x":1},"at":"2026-01-01T00:00:00Z"}`))
	if err != nil || e.Node != "edge-9" {
		t.Fatalf("ParseEdge = %+v, %v; want edge-9 accepted", e, err)
	}
}

func TestParseWorker(t *testing.T) {
	w, err := stats.ParseWorker([]byte(`{"worker":"w1","running":1,"succeeded":10,"failed":0,"at":"2026-11-26T05:03:13Z"}`))
	if err != nil {
		t.Fatalf("ParseWorker: %v", err)
	}
	if w.Worker != "w1" || w.Running != 1 || w.Succeeded != 10 || w.Failed != 0 {
		t.Errorf("ParseWorker = %+v", w)
	}
	for _, tc := range []struct {
		in     string
		reason stats.Reason
	}{
		{`{"worker":"w1","running":-1,"at":"2026-11-26T05:03:13Z"}`, stats.ReasonNegative},
		{`{"worker":"w1","succeeded":-1,"at":"2026-11-26T05:03:13Z"}`, stats.ReasonNegative},
		{`{"worker":"w1","failed":-1,"at":"2026-11-26T05:03:13Z"}`, stats.ReasonNegative},
		{`{"worker":"","at":"2026-11-26T05:03:13Z"}`, stats.ReasonName},
		{`{"node":"w1","at":"2026-11-26T05:03:13Z"}`, stats.ReasonName},
		{`{"worker":"w1"}`, stats.ReasonTime},
		{`{"worker":"w1",`, stats.ReasonJSON},
	} {
		if _, err := stats.ParseWorker([]byte(tc.in)); stats.ReasonOf(err) != tc.reason {
			t.Errorf("ParseWorker(%s) = %v, want reason %q", tc.in, err, tc.reason)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	e := stats.Edge{Node: "edge-1", Connections: 5, Rooms: 2, EventsInPerSecond: 1, EventsOutPerSecond: 2, DropsPerSecond: 0.5, P99DeliveryLatencyMs: 7, NATSRTTMs: 0.3, At: at}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The JSON names are the contract: check them literally.
	for _, name := range []string{"node", "connections", "rooms", "eventsInPerSecond", "eventsOutPerSecond", "dropsPerSecond", "p99DeliveryLatencyMs", "natsRttMs", "at"} {
		if !strings.Contains(string(b), `"`+name+`":`) {
			t.Errorf("Encode() = %s: no %q", b, name)
		}
	}
	got, err := stats.ParseEdge(b)
	if err != nil || got != e {
		t.Errorf("ParseEdge(Encode()) = %+v, %v; want %+v", got, err, e)
	}
	w := stats.Worker{Worker: "w1", Running: 1, Succeeded: 2, Failed: 3, At: at}
	b, err = w.Encode()
	if err != nil {
		t.Fatal(err)
	}
	gotW, err := stats.ParseWorker(b)
	if err != nil || gotW != w {
		t.Errorf("ParseWorker(Encode()) = %+v, %v; want %+v", gotW, err, w)
	}
	if _, err := (stats.Edge{Node: "x", Rooms: -1, At: at}).Encode(); stats.ReasonOf(err) != stats.ReasonNegative {
		t.Errorf("Encode of a negative count = %v, want reason negative", err)
	}
	if _, err := (stats.Worker{Worker: "w1"}).Encode(); stats.ReasonOf(err) != stats.ReasonTime {
		t.Errorf("Encode without at = %v, want reason time", err)
	}
}

// TestDocExamples keeps the package doc honest: its JSON examples parse,
// and every field of the Go types appears in its tables.
func TestDocExamples(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	examples := regexp.MustCompile(`(?m)^//\t(\{.*\})$`).FindAllStringSubmatch(string(src), -1)
	if len(examples) != 2 {
		t.Fatalf("found %d JSON examples in doc.go, want 2", len(examples))
	}
	if _, err := stats.ParseEdge([]byte(examples[0][1])); err != nil {
		t.Errorf("edge example: %v", err)
	}
	if _, err := stats.ParseWorker([]byte(examples[1][1])); err != nil {
		t.Errorf("worker example: %v", err)
	}
	for _, v := range []any{stats.Edge{}, stats.Worker{}} {
		b, _ := json.Marshal(v)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		for name := range m {
			if !strings.Contains(string(src), "//\t| "+name+" |") {
				t.Errorf("doc.go has no table row for %q", name)
			}
		}
	}
}

func FuzzParseEdge(f *testing.F) {
	f.Add([]byte(`{"node":"edge-1","connections":12,"rooms":3,"eventsInPerSecond":1.5,"eventsOutPerSecond":40,"dropsPerSecond":0,"p99DeliveryLatencyMs":3.2,"natsRttMs":0.4,"at":"2026-11-26T05:03:13.975Z"}`))
	f.Add([]byte(`{"node":"a","connections":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := stats.ParseEdge(data)
		if err != nil {
			if stats.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("ParseEdge accepted what Validate refuses: %v", err)
		}
		if _, err := e.Encode(); err != nil {
			t.Fatalf("accepted stats do not encode: %v", err)
		}
	})
}

func FuzzParseWorker(f *testing.F) {
	f.Add([]byte(`{"worker":"w1","running":1,"succeeded":10,"failed":0,"at":"2026-11-26T05:03:13Z"}`))
	f.Add([]byte(`{"worker":"w1","running":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := stats.ParseWorker(data)
		if err != nil {
			if stats.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if err := w.Validate(); err != nil {
			t.Fatalf("ParseWorker accepted what Validate refuses: %v", err)
		}
	})
}
