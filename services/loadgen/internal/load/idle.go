package load

import (
	"context"
	"fmt"

	"github.com/eventedge/eventedge/proto/room"
)

// idle connects every client, subscribes it to the run's room (where
// nothing is published), holds them for Duration so the edge settles, and
// reports the edge's RSS per connection: (RSS after − RSS before) / connected.
func (r *runner) idle(ctx context.Context) (*Results, error) {
	var before int64
	if r.sampler != nil {
		s, err := r.sampler.sample()
		if err != nil {
			return nil, fmt.Errorf("sample edge: %w", err)
		}
		before = s.RSS
	}
	r.phase.Store("connect")
	d := r.dialAll(ctx, r.cfg.Clients, room.Project(r.cfg.Project).String(), true, nil)
	defer r.closeAll(d.conns) // on every return, an error's included
	res := r.connectResults(d)
	r.phase.Store("idle")
	sleepCtx(ctx, r.cfg.Duration)
	if r.sampler != nil {
		s, err := r.sampler.sample()
		if err != nil {
			return nil, fmt.Errorf("sample edge: %w", err)
		}
		if res.Clients.Connected > 0 {
			per := float64(s.RSS-before) / float64(res.Clients.Connected)
			res.Edge = &EdgeResults{RSSPerConnBytes: &per}
		}
	} else {
		res.Notes = append(res.Notes, "edge memory not measured: pass --edge-pid")
	}
	res.Clients.Disconnected = disconnected(d)
	if res.Clients.Disconnected != nil {
		res.OK = false
	}
	r.captureMetrics()
	r.phase.Store("close") // the deferred closeAll
	return res, nil
}
