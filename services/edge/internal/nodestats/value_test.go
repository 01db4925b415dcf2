package nodestats

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestValueOfManyLabels: value sums a vector with more label combinations
// than any channel buffer (here 200); it had blocked for ever past 64.
func TestValueOfManyLabels(t *testing.T) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"k"})
	for i := range 200 {
		v.WithLabelValues(strconv.Itoa(i)).Add(float64(i))
	}
	got := make(chan float64, 1)
	go func() { got <- value(v) }()
	select {
	case g := <-got:
		if want := float64(199 * 200 / 2); g != want {
			t.Fatalf("value = %v, want %v", g, want)
		}
	case <-time.After(30 * time.Second): // a deadlock guard, not a speed check
		t.Fatal("value blocked on a vector of 200 metrics")
	}
}
