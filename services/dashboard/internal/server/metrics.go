package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's counters.
type metrics struct {
	// requests by route (a fixed set: see the route* constants) and status
	// code.
	requests *prometheus.CounterVec
	// devTokens minted, by demo user id.
	devTokens *prometheus.CounterVec
}

// Route labels of eventedge_dashboard_http_requests_total. Files share one
// label so the series stay few whatever the app holds.
const (
	routeIndex    = "/"
	routeLogin    = "/login"
	routeConfig   = "/config.json"
	routeDevUsers = "/dev/users"
	routeDevToken = "/dev/token"
	routeAsset    = "asset"
	routeNotFound = "not_found"
	// routeDevRefused: the development login asked for on a Host that is
	// not loopback.
	routeDevRefused = "dev_refused"
)

// newMetrics creates the counters and registers them with reg unless it is
// nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_dashboard_http_requests_total",
			Help: "HTTP requests answered by the dashboard's public listener, by route and status code.",
		}, []string{"route", "code"}),
		devTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventedge_dashboard_dev_tokens_total",
			Help: "Development tokens minted by POST /dev/token, by demo user.",
		}, []string{"user"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.devTokens} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("metrics: already registered (one Server per registry): %w", err)
			}
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// countingWriter remembers the status code of an answer for the requests
// counter.
type countingWriter struct {
	http.ResponseWriter
	code int
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) status() string {
	if w.code == 0 {
		return strconv.Itoa(http.StatusOK) // the handler wrote nothing: net/http sends 200
	}
	return strconv.Itoa(w.code)
}
