package service

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/sysmon/internal/metrics"
	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
)

// reportLoop decides the status every CheckInterval and whenever kicked
// (new stats, a probe done), once the first probe is in, until quit.
func (s *Service) reportLoop() {
	defer s.loops.Done()
	t := time.NewTicker(s.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		case <-s.kick:
		}
		// The first status must say how JetStream is: wait for the
		// first probe.
		if s.probed.Load() {
			s.report()
		}
	}
}

// report decides the status and publishes it when it changed (status or
// the set of alerts) or when Interval passed since the last publish. A
// failed publish is retried at the next decision, with fresh numbers.
func (s *Service) report() {
	r := s.mon.Evaluate()
	s.observe(r)
	trigger := metrics.TriggerChange
	if s.published && r.SameState(s.last) {
		if time.Since(s.lastPublished) < s.opts.Interval {
			return
		}
		trigger = metrics.TriggerInterval
	}
	ev := events.SystemStatus(r.SystemStatus())
	// Priority is left to the type's default: high with alerts, normal
	// without.
	ev.Metadata = map[string]string{"source": "sysmon", "trigger": trigger}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.PublishTimeout)
	ack, err := events.Publish(ctx, s.js, ev)
	cancel()
	if err != nil {
		if s.ctx.Err() != nil {
			return // shutting down
		}
		s.m.PublishErrors.Inc()
		s.setPublishErr(err)
		level := zerolog.DebugLevel
		if !s.failing {
			level = zerolog.WarnLevel // once per outage
		}
		s.failing = true
		s.log.WithLevel(level).Err(err).Str("status", metrics.StatusLabel(r.Status)).Msg("publish system_status failed; retrying")
		return
	}
	if s.failing {
		s.log.Info().Msg("publishing system_status again")
		s.failing = false
	}
	s.setPublishErr(nil)
	s.m.Published.WithLabelValues(trigger).Inc()
	s.last, s.published, s.lastPublished = r, true, time.Now()
	s.log.Debug().Str("id", ev.Id).Uint64("seq", ack.Sequence).Str("status", metrics.StatusLabel(r.Status)).
		Str("trigger", trigger).Msg("system_status published")
}

// observe updates the gauges and logs a change of the decision.
func (s *Service) observe(r monitor.Report) {
	s.m.SetStatus(r.Status)
	bySev := map[pb.Severity]int{}
	for _, a := range r.Alerts {
		bySev[a.Severity]++
	}
	s.m.SetAlerts(bySev)
	s.m.EdgeNodes.Set(float64(r.Metrics.GetEdgeNodes()))
	s.m.Workers.Set(float64(r.Metrics.GetWorkers()))
	if r.SameState(s.decided) {
		s.decided = r
		return
	}
	s.decided = r
	ev := s.log.Info()
	if r.Status != pb.HealthStatus_HEALTH_STATUS_HEALTHY {
		ev = s.log.Warn()
	}
	arr := zerolog.Arr()
	for _, a := range r.Alerts {
		arr.Dict(zerolog.Dict().Str("id", a.ID).Str("severity", metrics.SeverityLabel(a.Severity)).Str("message", a.Message).Time("since", a.Since))
	}
	ev.Str("status", metrics.StatusLabel(r.Status)).Array("alerts", arr).Msg("system status changed")
}
