package promtext

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const fixture = `# HELP eventedge_connections Open client connections.
# TYPE eventedge_connections gauge
eventedge_connections 20
# TYPE eventedge_deliveries_total counter
eventedge_deliveries_total{priority="high"} 100
eventedge_deliveries_total{priority="normal"} 1e3
eventedge_events_dropped_total{reason="a b}c"} 3 1700000000000
eventedge_deliveries_totalx 7
go_goroutines 55
`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(fixture), []string{"eventedge_connections", "eventedge_deliveries_total", "eventedge_events_dropped_total", "eventedge_absent",
		`eventedge_deliveries_total{priority="normal"}`, `eventedge_events_dropped_total{reason="a b}c"}`, `eventedge_deliveries_total{priority="low"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"eventedge_connections": 20, "eventedge_deliveries_total": 1100, "eventedge_events_dropped_total": 3,
		`eventedge_deliveries_total{priority="normal"}`: 1000, `eventedge_events_dropped_total{reason="a b}c"}`: 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestParseOneSeries: a series wanted with its labels, without its
// metric's name, is read alone.
func TestParseOneSeries(t *testing.T) {
	got, err := Parse(strings.NewReader(fixture), []string{`eventedge_deliveries_total{priority="high"}`})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[`eventedge_deliveries_total{priority="high"}`] != 100 {
		t.Fatalf("got %v; want the high series alone, 100", got)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"m{a=\"1\" 2\n", "m\n", "m abc\n"} {
		if _, err := Parse(strings.NewReader(s), []string{"m"}); err == nil {
			t.Errorf("Parse(%q): no error", s)
		}
	}
}

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(fixture))
	}))
	defer srv.Close()
	got, err := Fetch(context.Background(), srv.Client(), srv.URL, []string{"eventedge_connections"})
	if err != nil || got["eventedge_connections"] != 20 {
		t.Fatalf("Fetch = %v, %v", got, err)
	}
}
