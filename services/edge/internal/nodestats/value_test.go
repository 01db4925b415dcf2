package nodestats

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestValueOfManyLabels: value sums a vector with more label combinations
// than any channel buffer (here 200); it had blocked for ever past 64.
func TestValueOfManyLabels(t *testing.T) {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"k"})
	for i := range 200 {
		v.WithLabelValues(strconv.Itoa(i)).Add(float64(i))
	}
	if got, want := value(v), float64(199*200/2); got != want {
		t.Fatalf("value = %v, want %v", got, want)
	}
}
