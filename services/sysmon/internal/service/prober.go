package service

import (
	"time"

	"github.com/eventedge/eventedge/services/sysmon/internal/metrics"
)

// probeLoop probes at once, then every ProbeInterval, until quit. It owns
// the sampler and probeFailing.
func (s *Service) probeLoop() {
	defer s.loops.Done()
	t := time.NewTicker(s.opts.ProbeInterval)
	defer t.Stop()
	for {
		s.probeOnce()
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}

func (s *Service) probeOnce() {
	r := s.prober.Probe(s.ctx)
	if s.ctx.Err() != nil {
		return // shutting down: the errors say nothing about NATS
	}
	n := r.NATS
	s.probeResult(metrics.TargetNATS, r.RTTErr)
	s.probeResult(metrics.TargetJetStream, n.JetStreamErr)
	s.probeResult(metrics.TargetStream, n.StreamErr)
	s.probeResult(metrics.TargetMonitor, n.MonitorErr)
	if n.StreamErr == nil {
		s.m.StreamMsgs.Set(float64(n.Stream.Messages))
		s.m.StreamBytes.Set(float64(n.Stream.Bytes))
	}
	for limit, f := range n.Fills() {
		s.m.Fill.WithLabelValues(limit).Set(f)
	}
	if r.Server != nil {
		s.m.ServerConns.Set(float64(r.Server.Connections))
		s.m.ServerSlow.Set(float64(r.Server.SlowConsumers))
		if !s.serverSeen {
			s.serverSeen = true
			s.log.Info().Str("server", r.Server.Name).Str("version", r.Server.Version).Msg("NATS monitoring endpoint read")
		}
	}
	s.mon.ObserveNATS(n)

	h, err := s.sampler.Sample()
	s.probeResult(metrics.TargetHost, err)
	s.m.HostCPU.Set(h.CPUPercent)
	s.m.HostMemory.Set(h.MemoryPercent)
	s.mon.ObserveHost(h.CPUPercent, h.MemoryPercent)

	s.probed.Store(true)
	s.kickReporter()
}

// probeResult counts a failed probe, and logs when a target starts or stops
// failing (not at every probe: a JetStream outage would log every 2 s).
func (s *Service) probeResult(target string, err error) {
	was := s.probeFailing[target]
	s.probeFailing[target] = err != nil
	switch {
	case err != nil:
		s.m.ProbeErrors.WithLabelValues(target).Inc()
		if !was {
			s.log.Warn().Err(err).Str("target", target).Msg("probe failed")
		}
	case was:
		s.log.Info().Str("target", target).Msg("probe succeeds again")
	}
}
