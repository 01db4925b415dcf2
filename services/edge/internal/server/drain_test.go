package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// TestDrainRefusesHandshakes: once a drain has begun, the server is not
// ready and refuses handshakes with 503 (draining) and Retry-After 1.
func TestDrainRefusesHandshakes(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry())
	s := New(&session.Env{Metrics: m, Log: zerolog.Nop()}, Options{})
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready before the drain: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Drain(ctx, time.Second); err != nil {
		t.Fatalf("Drain without sessions: %v", err)
	}
	if s.Ready() == nil {
		t.Fatal("ready while draining")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/ws", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("handshake while draining: %d, Retry-After %q; want 503 and 1", rec.Code, rec.Header().Get("Retry-After"))
	}
	if got := testutil.ToFloat64(m.HandshakesRejected.WithLabelValues(rejectDraining)); got != 1 {
		t.Fatalf("draining rejections %v; want 1", got)
	}
	if got := testutil.ToFloat64(m.DrainRemaining); got != 0 {
		t.Fatalf("drain_remaining %v; want 0", got)
	}
}
