// Package report publishes what a job run reports as task_progress events
// to the task's project room.
//
// A Reporter sends, for one execution:
//   - progress-only events (no log lines, no required permission, so that
//     viewers without logs:read see progress move): 0 at start, then the
//     latest value at most once per ProgressInterval (10 per second by
//     default; values in between are coalesced, the newest wins). Progress
//     never decreases and stays below 1: the final 1 belongs to success
//     (Final).
//   - log events with RequiredPermission "logs:read": lines are batched and
//     sent when LogBatch lines are waiting or the oldest has waited
//     LogInterval (50 lines or 100 ms by default). They carry the progress
//     last sent, so they never move it.
//
// Events are published in order by one goroutine per Reporter, which
// Start starts and Close stops (after sending everything buffered). A
// failed publish is logged and the event dropped: progress and logs are
// best effort, unlike task status changes, which go through the task
// store's outbox.
package report

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// Options configures Reporters. The zero value of each field selects its
// default.
type Options struct {
	// ProgressInterval is the least time between two progress events of an
	// execution. Default 100ms (10 per second).
	ProgressInterval time.Duration
	// LogInterval is the longest a log line waits to be sent. Default
	// 100ms.
	LogInterval time.Duration
	// LogBatch is the number of waiting lines that are sent at once, and
	// the most one event carries. Default 50.
	LogBatch int
	// MaxBuffered bounds the lines waiting to be sent; Log blocks beyond it
	// (a command writing faster than NATS takes its output is slowed
	// down, not cut). Default 20 × LogBatch.
	MaxBuffered int
	// LogPermission is the RequiredPermission of events carrying log
	// lines. Default "logs:read".
	LogPermission string
	// PublishTimeout bounds each publish. Default 5s.
	PublishTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultProgressInterval = 100 * time.Millisecond
	DefaultLogInterval      = 100 * time.Millisecond
	DefaultLogBatch         = 50
	DefaultLogPermission    = "logs:read"
	DefaultPublishTimeout   = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.LogInterval <= 0 {
		o.LogInterval = DefaultLogInterval
	}
	if o.LogBatch <= 0 {
		o.LogBatch = DefaultLogBatch
	}
	if o.MaxBuffered < o.LogBatch {
		o.MaxBuffered = 20 * o.LogBatch
	}
	if o.LogPermission == "" {
		o.LogPermission = DefaultLogPermission
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = DefaultPublishTimeout
	}
	return o
}

// Execution names what a Reporter reports on.
type Execution struct {
	ProjectID, TaskID, ExecutionID string
}

// maxRunning is the highest progress a run may report: 1 is success's.
const maxRunning = 0.99

// Reporter publishes one execution's progress and logs. Its methods are
// safe for concurrent use.
type Reporter struct {
	// static after Start
	js   jetstream.JetStream
	exec Execution
	opts Options
	log  zerolog.Logger
	wake chan struct{} // cap 1: something changed
	done chan struct{} // closed when run returns

	mu        sync.Mutex
	space     *sync.Cond // signalled when lines were taken or closing
	progress  float64    // latest reported
	stage     string
	message   string
	dirty     bool // progress, stage or message changed since last sent
	lastSent  time.Time
	sentProg  float64 // last progress sent
	sentStage string
	logs      []*pb.LogEntry
	firstLog  time.Time // when logs[0] was added
	closing   bool
	stopped   bool // run has returned: later calls are ignored
	failed    int  // events dropped after a failed publish
}

// Start starts the Reporter of an execution and publishes its progress 0.
func Start(js jetstream.JetStream, e Execution, opts Options, log zerolog.Logger) *Reporter {
	r := &Reporter{
		js:    js,
		exec:  e,
		opts:  opts.withDefaults(),
		log:   log,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		dirty: true, // progress 0 at start
	}
	r.space = sync.NewCond(&r.mu)
	go r.run()
	return r
}

// Progress sets the progress (clamped to what was reported and below 1)
// and the stage; the newest value is sent within ProgressInterval.
func (r *Reporter) Progress(p float64, stage, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if math.IsNaN(p) || r.stopped {
		return
	}
	p = min(max(p, r.progress), maxRunning)
	if stage == "" {
		stage = r.stage
	}
	if p == r.progress && stage == r.stage && message == r.message {
		return
	}
	r.progress, r.stage, r.message, r.dirty = p, stage, message, true
	r.kick()
}

// Log adds a line. It blocks while MaxBuffered lines wait, until Close.
// Lines logged after Close returned are ignored.
func (r *Reporter) Log(stream pb.LogStream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.logs) >= r.opts.MaxBuffered && !r.closing {
		r.space.Wait()
	}
	if r.stopped {
		return
	}
	if len(r.logs) == 0 {
		r.firstLog = time.Now()
	}
	r.logs = append(r.logs, &pb.LogEntry{Timestamp: timestamppb.Now(), Stream: stream, Line: line})
	if len(r.logs) >= r.opts.LogBatch || len(r.logs) == 1 {
		r.kick()
	}
}

// kick wakes run; mu is held.
func (r *Reporter) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close sends what is buffered (all log lines, and the last progress) and
// stops the Reporter. It returns the number of events dropped after a
// failed publish over the Reporter's life.
func (r *Reporter) Close() (failed int) {
	r.mu.Lock()
	r.closing = true
	r.space.Broadcast()
	r.kick()
	r.mu.Unlock()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// run publishes, in order, whatever is due; it is the only publisher.
func (r *Reporter) run() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		evs, next, finished := r.due(time.Now())
		for _, ev := range evs {
			r.publish(ev)
		}
		if finished {
			return
		}
		if len(evs) > 0 {
			continue // more may be due already
		}
		timer.Reset(next)
		select {
		case <-r.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// due takes the events to send now, and says how long to sleep otherwise
// and whether the Reporter is done.
func (r *Reporter) due(now time.Time) (evs []*pb.Event, next time.Duration, finished bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next = time.Hour
	if r.dirty {
		// Even when closing the interval holds: Close waits for it.
		if wait := r.opts.ProgressInterval - now.Sub(r.lastSent); r.lastSent.IsZero() || wait <= 0 {
			evs = append(evs, r.event(&pb.TaskProgress{Progress: r.progress, Stage: r.stage, Message: r.message}, false))
			r.sentProg, r.sentStage, r.dirty, r.lastSent = r.progress, r.stage, false, now
		} else {
			next = min(next, wait)
		}
	}
	if n := len(r.logs); n > 0 {
		wait := r.opts.LogInterval - now.Sub(r.firstLog)
		if r.closing || n >= r.opts.LogBatch || wait <= 0 {
			take := min(n, r.opts.LogBatch)
			lines := r.logs[:take:take]
			r.logs = r.logs[take:]
			if len(r.logs) > 0 {
				r.firstLog = now
			}
			evs = append(evs, r.event(&pb.TaskProgress{Progress: r.sentProg, Stage: r.sentStage, Logs: lines}, true))
			r.space.Broadcast()
		} else {
			next = min(next, wait)
		}
	}
	finished = r.closing && !r.dirty && len(r.logs) == 0 && len(evs) == 0
	r.stopped = finished
	return evs, next, finished
}

func (r *Reporter) event(p *pb.TaskProgress, logs bool) *pb.Event {
	p.TaskId, p.ExecutionId = r.exec.TaskID, r.exec.ExecutionID
	ev := events.TaskProgress(room.Project(r.exec.ProjectID), p)
	if logs {
		ev.RequiredPermission = r.opts.LogPermission
	}
	return ev
}

func (r *Reporter) publish(ev *pb.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.PublishTimeout)
	defer cancel()
	_, err := events.Publish(ctx, r.js, ev)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.failed++
		if r.failed == 1 || r.failed%100 == 0 { // bounded logging when NATS is away
			r.log.Warn().Err(err).Int("dropped", r.failed).Str("execution", r.exec.ExecutionID).Msg("task_progress not published")
		}
	}
}

// FinalEventID is the id of an execution's final progress event. It is
// fixed, so that the event can be published again (after a worker died
// between recording success and acknowledging the job) and JetStream's
// duplicate window drops the second copy: progress 1 appears once.
func FinalEventID(executionID string) string { return executionID + ".done" }

// Final publishes the execution's progress 1 (stage "done"), without log
// lines or required permission. Publish it after the task was recorded as
// succeeded; calling it again for the same execution is harmless.
func Final(ctx context.Context, js jetstream.JetStream, e Execution) error {
	ev := events.TaskProgress(room.Project(e.ProjectID), &pb.TaskProgress{TaskId: e.TaskID, ExecutionId: e.ExecutionID, Progress: 1, Stage: "done"})
	ev.Id = FinalEventID(e.ExecutionID)
	_, err := events.Publish(ctx, js, ev)
	return err
}

// Lines publishes log lines at once (a refused job's explanation, say):
// one event with RequiredPermission opts.LogPermission.
func Lines(ctx context.Context, js jetstream.JetStream, e Execution, opts Options, stream pb.LogStream, lines ...string) error {
	opts = opts.withDefaults()
	p := &pb.TaskProgress{TaskId: e.TaskID, ExecutionId: e.ExecutionID}
	for _, l := range lines {
		p.Logs = append(p.Logs, &pb.LogEntry{Timestamp: timestamppb.Now(), Stream: stream, Line: l})
	}
	ev := events.TaskProgress(room.Project(e.ProjectID), p)
	ev.RequiredPermission = opts.LogPermission
	_, err := events.Publish(ctx, js, ev)
	return err
}
