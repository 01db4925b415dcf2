package service

import (
	"github.com/nats-io/nats.go"

	"github.com/eventedge/eventedge/services/sysmon/internal/metrics"
	"github.com/eventedge/eventedge/services/sysmon/stats"
)

// onEdgeStats handles one message of ctl.edge.stats (on the subscription's
// goroutine).
func (s *Service) onEdgeStats(msg *nats.Msg) {
	e, err := stats.ParseEdge(msg.Data)
	if err != nil {
		s.refuse(metrics.SourceEdge, msg, err)
		return
	}
	s.m.StatsReceived.WithLabelValues(metrics.SourceEdge).Inc()
	if s.mon.ObserveEdge(e) {
		s.log.Info().Str("node", e.Node).Msg("edge node reporting")
	}
	s.kickReporter()
}

// onWorkerStats handles one message of ctl.worker.stats.
func (s *Service) onWorkerStats(msg *nats.Msg) {
	w, err := stats.ParseWorker(msg.Data)
	if err != nil {
		s.refuse(metrics.SourceWorker, msg, err)
		return
	}
	s.m.StatsReceived.WithLabelValues(metrics.SourceWorker).Inc()
	if s.mon.ObserveWorker(w) {
		s.log.Info().Str("worker", w.Worker).Msg("worker reporting")
	}
	s.kickReporter()
}

func (s *Service) refuse(source string, msg *nats.Msg, err error) {
	reason := string(stats.ReasonOf(err))
	s.m.StatsInvalid.WithLabelValues(source, reason).Inc()
	s.invalidLog.Warn().Err(err).Str("subject", msg.Subject).Str("reason", reason).Int("bytes", len(msg.Data)).
		Msg("ignored invalid stats")
}
