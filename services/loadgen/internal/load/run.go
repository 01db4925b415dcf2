package load

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eventedge/eventedge/services/loadgen/internal/promtext"
)

// metricSeries are the edge series read at the start and end of a run.
var metricSeries = []string{
	"eventedge_connections",
	"eventedge_connections_opened_total",
	"eventedge_connections_closed_total",
	"eventedge_handshakes_rejected_total",
	"eventedge_deliveries_total",
	"eventedge_frames_out_total",
	"eventedge_frames_handed_off_total",
	"eventedge_bytes_out_total",
	"eventedge_events_in_total",
	"eventedge_events_dropped_total",
	"eventedge_client_drops_total",
	"eventedge_resumes_total",
	"eventedge_replayed_events_total",
	// Coalesced task_progress (the job mix): superseded events, and the
	// merged events' encodings, done by a client or shared with the
	// others of its room.
	"eventedge_coalesced_total",
	`eventedge_coalesced_encodings_total{result="encoded"}`,
	`eventedge_coalesced_encodings_total{result="shared"}`,
	// The edge's own delivery latency (event timestamp → frame written),
	// summed over its paths: with the clients' latency, it tells the
	// edge's share from the load generator's (see EdgeLatencyMeanMs).
	edgeLatencySum,
	edgeLatencyCount,
}

// The edge's delivery latency histogram's sum and count series.
const (
	edgeLatencySum   = "eventedge_delivery_latency_seconds_sum"
	edgeLatencyCount = "eventedge_delivery_latency_seconds_count"
)

// runner is one run's state.
type runner struct {
	// static after construction
	cfg         Config
	minter      *minter
	http        []*http.Client
	metricsHTTP *http.Client // reads --edge-metrics
	userPrefix  string       // clients are users <userPrefix>-<i>
	sampler     *sampler
	progress    io.Writer

	// counters, written by the scenario's goroutines, read by the
	// progress line
	connected, failed, published, received atomic.Int64
	expected                               atomic.Int64 // delivered events expected so far
	messageBytes                           atomic.Int64 // size of the first event message received
	receivedBytes                          atomic.Int64 // size of every event message received
	malformed                              atomic.Int64 // server messages the lean path could not scan
	compressed                             atomic.Int64 // lean clients with permessage-deflate
	malformedSample                        atomic.Value // string: the first of them

	metricsEnd    map[string]float64 // owned by the scenario's goroutine: set by captureMetrics
	metricsEndErr error              // owned by the scenario's goroutine
	phase         atomic.Value       // string
}

// Run runs cfg's scenario against the edge, printing a progress line to
// progress every second, and returns the record. An error means the run
// could not be made (bad config, edge unreachable at start, …); a run that
// was made but found problems returns a record whose Results.OK is false.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Record, error) {
	cfg = cfg.WithDefaults()
	if cfg.Project == "" {
		cfg.Project = "lg-" + strings.ToLower(rand.Text()[:10])
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loop, _ := loopbackURL(cfg.URL)
	r := &runner{
		cfg:         cfg,
		minter:      &minter{secret: []byte(cfg.JWTSecret), ttl: cfg.MaxDuration + 10*time.Minute},
		http:        httpClients(cfg.SourceAddrs, loop),
		metricsHTTP: &http.Client{Transport: &http.Transport{}},
		userPrefix:  cfg.Project,
		progress:    progress,
	}
	r.phase.Store("start")
	defer func() { // no keep-alive goroutine outlives the run
		r.metricsHTTP.CloseIdleConnections()
		for _, c := range r.http {
			c.CloseIdleConnections()
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()

	rec := &Record{
		Machine:    machineInfo(cfg.ProcRoot),
		Commit:     gitDescribe(),
		Scenario:   cfg.Scenario,
		StartedAt:  time.Now().UTC(),
		Parameters: cfg,
	}

	var metricsStart map[string]float64
	if cfg.EdgeMetrics != "" {
		var err error
		if metricsStart, err = promtext.Fetch(ctx, r.metricsHTTP, cfg.EdgeMetrics, metricSeries); err != nil {
			return nil, fmt.Errorf("--edge-metrics %s: %w", cfg.EdgeMetrics, err)
		}
	}
	var bg sync.WaitGroup // the sampler and the progress printer
	bgCtx, stopBg := context.WithCancel(ctx)
	defer func() { stopBg(); bg.Wait() }()
	if cfg.EdgePID > 0 {
		s, err := newSampler(cfg.ProcRoot, cfg.EdgePID)
		if err != nil {
			return nil, fmt.Errorf("--edge-pid %d: %w", cfg.EdgePID, err)
		}
		r.sampler = s
		bg.Go(func() { s.run(bgCtx, time.Second) })
	}
	if progress != nil {
		bg.Go(func() { r.printProgress(bgCtx, time.Now()) })
	}

	start, cpuStart := time.Now(), selfCPU()
	var (
		res *Results
		err error
	)
	switch cfg.Scenario {
	case "broadcast":
		res, err = r.broadcast(ctx)
	case "idle":
		res, err = r.idle(ctx)
	case "connect":
		res, err = r.connect(ctx)
	case "rooms":
		res, err = r.rooms(ctx)
	case "slow":
		res, err = r.slow(ctx)
	case "churn":
		res, err = r.churn(ctx)
	case "resume":
		res, err = r.resume(ctx)
	default: // Validate refused it
		err = fmt.Errorf("scenario %q: unknown", cfg.Scenario)
	}
	stopBg()
	bg.Wait()
	if err != nil {
		return nil, err
	}
	res.Elapsed = Duration(time.Since(start))
	lc := &LoadgenResults{CPUSeconds: (selfCPU() - cpuStart).Seconds()}
	if res.Elapsed > 0 {
		lc.CPUCores = lc.CPUSeconds / time.Duration(res.Elapsed).Seconds()
	}
	res.Loadgen = lc
	res.Clients.Requested = cfg.Clients
	if res.Clients.Failed > 0 {
		res.OK = false
	}
	if cfg.Compression {
		res.Notes = append(res.Notes, fmt.Sprintf("permessage-deflate offered: the edge accepted it for %d clients", r.compressed.Load()))
	}
	if n := r.malformed.Load(); n > 0 {
		res.OK = false
		res.MalformedLines = int(n)
		res.Notes = append(res.Notes, fmt.Sprintf("%d malformed server messages, the first: %s", n, r.malformedSample.Load()))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.OK = false
		res.Notes = append(res.Notes, fmt.Sprintf("stopped by --max-duration %s: results are partial", cfg.MaxDuration))
	}
	if r.sampler != nil {
		_, _ = r.sampler.sample()
		e := r.edgeResults(time.Since(start))
		if res.Edge != nil && res.Edge.RSSPerConnBytes != nil {
			e.RSSPerConnBytes = res.Edge.RSSPerConnBytes
		}
		res.Edge = e
	}
	if cfg.EdgeMetrics != "" {
		if r.metricsEnd == nil && r.metricsEndErr == nil {
			r.captureMetrics() // the scenario ended before it could
		}
		m := &MetricsResults{Start: metricsStart, End: r.metricsEnd}
		if r.metricsEndErr != nil {
			m.Err = r.metricsEndErr.Error()
		}
		m.EdgeLatencyMeanMs = m.edgeLatencyMean()
		res.Metrics = m
	}
	rec.Results = res
	return rec, nil
}

// captureMetrics reads the end snapshot of the edge's metrics; scenarios
// call it before they close their clients, so eventedge_connections shows
// them.
func (r *runner) captureMetrics() {
	if r.cfg.EdgeMetrics == "" {
		return
	}
	// A fresh context: the run's may have ended at --max-duration.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.metricsEnd, r.metricsEndErr = promtext.Fetch(ctx, r.metricsHTTP, r.cfg.EdgeMetrics, metricSeries)
}

func (r *runner) edgeResults(elapsed time.Duration) *EdgeResults {
	s := r.sampler
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &EdgeResults{
		PID:           s.pid,
		CPUSeconds:    (s.last.CPU - s.first.CPU).Seconds(),
		RSSStartBytes: s.first.RSS,
		RSSEndBytes:   s.last.RSS,
		RSSMaxBytes:   s.maxRSS,
		Samples:       s.samples,
	}
	if elapsed > 0 {
		e.CPUCores = e.CPUSeconds / elapsed.Seconds()
	}
	if s.first.Written >= 0 && s.last.Written >= 0 {
		w := s.last.Written - s.first.Written
		e.WrittenBytes = &w
	}
	if s.err != nil {
		e.Err = s.err.Error()
	}
	return e
}

// printProgress writes one line a second until ctx ends.
func (r *runner) printProgress(ctx context.Context, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		line := fmt.Sprintf("%5.1fs %-9s conn %d/%d fail %d", time.Since(start).Seconds(), r.phase.Load(),
			r.connected.Load(), r.cfg.Clients, r.failed.Load())
		if r.cfg.Scenario != "idle" && r.cfg.Scenario != "connect" {
			line += fmt.Sprintf(" pub %d recv %d/%d", r.published.Load(), r.received.Load(), r.expected.Load())
		}
		if r.sampler != nil {
			cores, rss := r.sampler.recent()
			line += fmt.Sprintf(" edge cpu %.0f%% rss %s", cores*100, mib(rss))
		}
		fmt.Fprintln(r.progress, line)
	}
}

// WriteJSON writes rec, indented, to w.
func WriteJSON(w io.Writer, rec *Record) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rec)
}

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
