package load

import "testing"

// TestEdgeLatencyMean: the edge's mean delivery latency over a run is the
// growth of its histogram's sum over the growth of its count; absent
// series or no delivery give none.
func TestEdgeLatencyMean(t *testing.T) {
	const sum, count = edgeLatencySum, edgeLatencyCount
	m := &MetricsResults{
		Start: map[string]float64{sum: 10, count: 1000},
		End:   map[string]float64{sum: 10.5, count: 1100},
	}
	if got := m.edgeLatencyMean(); got == nil || *got < 4.999 || *got > 5.001 {
		t.Errorf("mean %v, want 5 ms (0.5 s over 100 deliveries)", got)
	}
	m.End = map[string]float64{sum: 10, count: 1000}
	if got := m.edgeLatencyMean(); got != nil {
		t.Errorf("no delivery during the run: mean %v, want none", *got)
	}
	m.End = map[string]float64{count: 1100}
	if got := m.edgeLatencyMean(); got != nil {
		t.Errorf("no sum series: mean %v, want none", *got)
	}
}
