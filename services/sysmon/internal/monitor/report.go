package monitor

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Report is one decision.
type Report struct {
	At      time.Time
	Status  pb.HealthStatus
	Metrics *pb.SystemMetrics
	// Alerts are sorted by severity, worst first, then by id.
	Alerts []Alert
}

// Alert is one condition that is wrong.
type Alert struct {
	// ID names the condition, stable for as long as it holds, such as
	// "edge-silent:edge-2".
	ID       string
	Severity pb.Severity
	Message  string
	// Since is when the condition started.
	Since time.Time
}

// AlertIDs returns the ids of r's alerts, in r's order.
func (r Report) AlertIDs() []string {
	ids := make([]string, len(r.Alerts))
	for i, a := range r.Alerts {
		ids[i] = a.ID
	}
	return ids
}

// SameState reports whether r and o have the same status and the same
// alerts (by id): what sysmon publishes at once when it changes.
func (r Report) SameState(o Report) bool {
	return r.Status == o.Status && slices.Equal(r.AlertIDs(), o.AlertIDs())
}

// SystemStatus returns r as the payload of a system_status event.
func (r Report) SystemStatus() *pb.SystemStatus {
	s := &pb.SystemStatus{Status: r.Status, Metrics: r.Metrics}
	for _, a := range r.Alerts {
		s.Alerts = append(s.Alerts, &pb.Alert{Id: a.ID, Severity: a.Severity, Message: a.Message, Since: timestamppb.New(a.Since)})
	}
	return s
}

// statusOf maps the worst severity to a status: critical → error,
// warning → degraded, otherwise healthy.
func statusOf(alerts []Alert) pb.HealthStatus {
	st := pb.HealthStatus_HEALTH_STATUS_HEALTHY
	for _, a := range alerts {
		switch a.Severity {
		case pb.Severity_SEVERITY_CRITICAL:
			return pb.HealthStatus_HEALTH_STATUS_ERROR
		case pb.Severity_SEVERITY_WARNING:
			st = pb.HealthStatus_HEALTH_STATUS_DEGRADED
		}
	}
	return st
}
