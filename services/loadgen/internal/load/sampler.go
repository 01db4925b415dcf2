package load

import (
	"context"
	"sync"
	"time"

	"github.com/eventedge/eventedge/services/loadgen/internal/procstat"
)

// sampler reads the edge process from /proc every interval. Its goroutine
// is started by run and stopped (ctx) and waited for by Run.
type sampler struct {
	// static after construction
	root string
	pid  int

	mu      sync.Mutex
	first   procstat.Sample // guarded by mu
	prev    procstat.Sample // guarded by mu: the sample before last
	last    procstat.Sample // guarded by mu
	maxRSS  int64           // guarded by mu
	samples int             // guarded by mu
	err     error           // guarded by mu: the last read error
}

func newSampler(root string, pid int) (*sampler, error) {
	s := &sampler{root: root, pid: pid}
	if _, err := s.sample(); err != nil {
		return nil, err
	}
	return s, nil
}

// sample reads the process now and records the reading.
func (s *sampler) sample() (procstat.Sample, error) {
	got, err := procstat.Read(s.root, s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return got, err
	}
	if s.samples == 0 {
		s.first, s.prev = got, got
	} else {
		s.prev = s.last
	}
	s.last = got
	s.maxRSS = max(s.maxRSS, got.RSS)
	s.samples++
	return got, nil
}

func (s *sampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = s.sample() // an error is kept and reported in the results
		}
	}
}

// recent returns the CPU use (in cores) over the last interval and the
// last RSS, for the progress line.
func (s *sampler) recent() (cores float64, rss int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if dt := s.last.At.Sub(s.prev.At); dt > 0 {
		cores = float64(s.last.CPU-s.prev.CPU) / float64(dt)
	}
	return cores, s.last.RSS
}
