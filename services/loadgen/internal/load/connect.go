package load

import (
	"context"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

// connect is the connect storm: every client connects, authenticates and
// subscribes, Dialers at a time; then all are closed.
func (r *runner) connect(ctx context.Context) (*Results, error) {
	r.phase.Store("connect")
	d := r.dialAll(ctx, r.cfg.Clients, room.Project(r.cfg.Project).String(), true, nil)
	res := r.connectResults(d)
	r.captureMetrics()
	r.phase.Store("close")
	r.closeAll(d.conns)
	return res, nil
}

// connectResults fills the client and connect sections of every scenario.
func (r *runner) connectResults(d *dialResult) *Results {
	failures, samples, failed := d.failures.snapshot()
	connected := r.cfg.Clients - failed
	res := &Results{
		OK: failed == 0,
		Clients: ClientResults{
			Requested: r.cfg.Clients, Connected: connected, Failed: failed,
			Failures: failures, FailureSamples: samples,
		},
		Connect: &ConnectResults{
			Wall:              Duration(d.wall),
			Dialers:           min(r.cfg.Dialers, r.cfg.Clients),
			ClientLatency:     latencyOf(d.latency),
			LoadgenCPUSeconds: d.cpu.Seconds(),
		},
	}
	if d.edgeCPUOK {
		e := d.edgeCPU.Seconds()
		res.Connect.EdgeCPUSeconds = &e
	}
	if d.wall > 0 {
		res.Connect.PerSecond = float64(connected) / d.wall.Seconds()
	}
	if len(failures) == 0 {
		res.Clients.Failures, res.Clients.FailureSamples = nil, nil
	}
	return res
}

// disconnected counts the connections that ended before the run closed
// them, by reason.
func disconnected(d *dialResult) map[string]int {
	out := map[string]int{}
	for _, c := range d.conns {
		if c == nil {
			continue
		}
		select {
		case <-c.Done():
			out[classify(c.Err())]++
		default:
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
