// Package metrics defines sysmon's Prometheus metrics. Every metric is
// registered on the registerer given to New (never the global one), so
// tests can run several services in one process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// Stats sources: the source label.
const (
	SourceEdge   = "edge"
	SourceWorker = "worker"
)

// Probe targets: the target label of ProbeErrors.
const (
	TargetNATS      = "nats"      // sysmon's own round trip
	TargetJetStream = "jetstream" // account info
	TargetStream    = "stream"    // EVENTS stream info
	TargetMonitor   = "monitor"   // the NATS monitoring endpoint
	TargetHost      = "host"      // /proc
)

// Publish triggers: the trigger label of Published.
const (
	TriggerChange   = "change"
	TriggerInterval = "interval"
)

// Metrics are sysmon's metrics. Safe for concurrent use.
type Metrics struct {
	StatsReceived *prometheus.CounterVec // source: valid stats messages
	StatsInvalid  *prometheus.CounterVec // source, reason: refused stats messages
	Status        *prometheus.GaugeVec   // status: 1 for the current decision, 0 for the others
	Alerts        *prometheus.GaugeVec   // severity: current alerts
	Published     *prometheus.CounterVec // trigger: system_status events published
	PublishErrors prometheus.Counter
	ProbeErrors   *prometheus.CounterVec // target
	EdgeNodes     prometheus.Gauge
	Workers       prometheus.Gauge
	HostCPU       prometheus.Gauge
	HostMemory    prometheus.Gauge
	StreamMsgs    prometheus.Gauge
	StreamBytes   prometheus.Gauge
	Fill          *prometheus.GaugeVec // limit: fraction in use (0: no limit)
	NATSConnected prometheus.Gauge
	ServerConns   prometheus.Gauge // from the monitoring endpoint
	ServerSlow    prometheus.Gauge // from the monitoring endpoint
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		StatsReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmon_stats_received_total", Help: "Valid stats messages received, by source (edge, worker)."}, []string{"source"}),
		StatsInvalid:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmon_stats_invalid_total", Help: "Stats messages refused and ignored, by source and reason (json, name, negative, time, too_large)."}, []string{"source", "reason"}),
		Status:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sysmon_status", Help: "1 for the system status decided last (healthy, degraded, error), 0 for the others."}, []string{"status"}),
		Alerts:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sysmon_alerts", Help: "Alerts active now, by severity."}, []string{"severity"}),
		Published:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmon_status_published_total", Help: "system_status events published, by trigger (change, interval)."}, []string{"trigger"}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sysmon_status_publish_errors_total", Help: "Failed attempts to publish a system_status event."}),
		ProbeErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sysmon_probe_errors_total", Help: "Failed health probes, by target (nats, jetstream, stream, monitor, host)."}, []string{"target"}),
		EdgeNodes:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_edge_nodes", Help: "Edge nodes reporting stats."}),
		Workers:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_workers", Help: "Workers reporting stats."}),
		HostCPU:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_host_cpu_percent", Help: "Host CPU use (0-100, all CPUs) between the last two probes."}),
		HostMemory:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_host_memory_percent", Help: "Host memory in use (0-100)."}),
		StreamMsgs:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_stream_messages", Help: "Messages in the EVENTS stream."}),
		StreamBytes:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_stream_bytes", Help: "Bytes in the EVENTS stream."}),
		Fill:          prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sysmon_jetstream_fill_ratio", Help: "Fraction (0-1) in use of a limit, by limit: stream_bytes and stream_messages of the EVENTS stream, account_storage and account_memory of the JetStream account; 0 when the limit is unset."}, []string{"limit"}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_nats_connected", Help: "1 while sysmon is connected to NATS."}),
		ServerConns:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_nats_server_connections", Help: "Client connections of the NATS server (monitoring endpoint)."}),
		ServerSlow:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "sysmon_nats_server_slow_consumers", Help: "Slow consumers the NATS server has seen since it started (monitoring endpoint)."}),
	}
	reg.MustRegister(m.StatsReceived, m.StatsInvalid, m.Status, m.Alerts, m.Published, m.PublishErrors, m.ProbeErrors,
		m.EdgeNodes, m.Workers, m.HostCPU, m.HostMemory, m.StreamMsgs, m.StreamBytes, m.Fill, m.NATSConnected, m.ServerConns, m.ServerSlow)
	// Every series exists from the start, at 0: a rate() over a series
	// that appears only with its first increment misses that increment.
	for _, src := range []string{SourceEdge, SourceWorker} {
		m.StatsReceived.WithLabelValues(src)
		for _, r := range []stats.Reason{stats.ReasonJSON, stats.ReasonName, stats.ReasonNegative, stats.ReasonTime, stats.ReasonTooLarge} {
			m.StatsInvalid.WithLabelValues(src, string(r))
		}
	}
	for _, t := range []string{TargetNATS, TargetJetStream, TargetStream, TargetMonitor, TargetHost} {
		m.ProbeErrors.WithLabelValues(t)
	}
	m.Published.WithLabelValues(TriggerChange)
	m.Published.WithLabelValues(TriggerInterval)
	m.SetStatus(pb.HealthStatus_HEALTH_STATUS_UNSPECIFIED)
	return m
}

// StatusLabel is the status label of a health status: healthy, degraded or
// error ("" for unspecified).
func StatusLabel(s pb.HealthStatus) string {
	switch s {
	case pb.HealthStatus_HEALTH_STATUS_HEALTHY:
		return "healthy"
	case pb.HealthStatus_HEALTH_STATUS_DEGRADED:
		return "degraded"
	case pb.HealthStatus_HEALTH_STATUS_ERROR:
		return "error"
	}
	return ""
}

// SetStatus sets Status to 1 for s and 0 for the other statuses.
func (m *Metrics) SetStatus(s pb.HealthStatus) {
	for _, st := range []pb.HealthStatus{pb.HealthStatus_HEALTH_STATUS_HEALTHY, pb.HealthStatus_HEALTH_STATUS_DEGRADED, pb.HealthStatus_HEALTH_STATUS_ERROR} {
		v := 0.0
		if st == s {
			v = 1
		}
		m.Status.WithLabelValues(StatusLabel(st)).Set(v)
	}
}

// SetAlerts sets Alerts from the count of alerts per severity.
func (m *Metrics) SetAlerts(bySeverity map[pb.Severity]int) {
	for _, sev := range []pb.Severity{pb.Severity_SEVERITY_INFO, pb.Severity_SEVERITY_WARNING, pb.Severity_SEVERITY_CRITICAL} {
		m.Alerts.WithLabelValues(SeverityLabel(sev)).Set(float64(bySeverity[sev]))
	}
}

// SeverityLabel is the severity label: info, warning or critical.
func SeverityLabel(s pb.Severity) string {
	switch s {
	case pb.Severity_SEVERITY_INFO:
		return "info"
	case pb.Severity_SEVERITY_WARNING:
		return "warning"
	case pb.Severity_SEVERITY_CRITICAL:
		return "critical"
	}
	return "unspecified"
}
