package worker

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/worker/internal/jobrun"
	"github.com/eventedge/eventedge/services/worker/internal/report"
)

const (
	queued    = pb.TaskStatus_TASK_STATUS_QUEUED
	running_  = pb.TaskStatus_TASK_STATUS_RUNNING
	succeeded = pb.TaskStatus_TASK_STATUS_SUCCEEDED
	failed    = pb.TaskStatus_TASK_STATUS_FAILED
	cancelled = pb.TaskStatus_TASK_STATUS_CANCELLED
)

// checkProgress: each attempt starts at 0 and never decreases (a new
// attempt runs the job again from the start: progress drops back to 0
// once per attempt), and 1 appears exactly `ones` times, last.
func checkProgress(t *testing.T, ps []*pb.TaskProgress, attempts, ones int) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatal("no task_progress")
	}
	var values []float64
	for _, p := range ps {
		values = append(values, p.Progress)
	}
	segments := [][]float64{{}}
	for i, v := range values {
		if i > 0 && v < values[i-1] {
			segments = append(segments, nil)
		}
		segments[len(segments)-1] = append(segments[len(segments)-1], v)
	}
	if len(segments) != attempts {
		t.Errorf("progress %v: %d runs, want %d (progress decreases only when an attempt starts over)", values, len(segments), attempts)
	}
	for _, seg := range segments {
		if seg[0] != 0 {
			t.Errorf("progress %v: an attempt starts at %v, want 0", values, seg[0])
		}
	}
	if n := count(values, 1); n != ones || (ones > 0 && values[len(values)-1] != 1) {
		t.Errorf("progress 1 appears %d times (want %d, last): %v", n, ones, values)
	}
}

func TestDemoJobSucceeds(t *testing.T) {
	e := newEnv(t)
	stats := make(chan Stats, 100)
	sub, err := e.nc.Subscribe(StatsSubject, func(m *nats.Msg) {
		var s Stats
		if err := json.Unmarshal(m.Data, &s); err != nil {
			t.Errorf("stats %s: %v", m.Data, err)
		}
		select {
		case stats <- s:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.task("t1")
	w := e.startWorker("w1", nil)
	id := e.run("t1", jobs.TypeDemo, "")
	task := e.waitStatus("t1", succeeded)
	if task.Progress != 1 || task.ExecutionId != id {
		t.Errorf("task = %v", task)
	}
	natstest.CheckFor(t, wait, func() error {
		if ps := e.rec.progress(id); len(ps) == 0 || ps[len(ps)-1].Progress != 1 {
			return errString("no final progress yet")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // nothing else may follow
	checkProgress(t, e.rec.progress(id), 1, 1)
	logs := e.rec.logs(id)
	for _, want := range []string{"STDOUT: Cloning into 'board'...", "STDERR: warning: internal/api/legacy.go:12: ListAll is deprecated", "SYSTEM: deployed board 3f2c1ab to staging"} {
		if !slices.Contains(logs, want) {
			t.Errorf("logs lack %q: %q", want, logs)
		}
	}
	if slices.Contains(logs, "MISSING PERMISSION") || slices.Contains(logs, "PERMISSION ON A PROGRESS-ONLY EVENT") {
		t.Errorf("permission rule broken: %q", logs)
	}
	if got := e.rec.statuses(); !slices.Equal(got, []pb.TaskStatus{queued, running_, succeeded}) {
		t.Errorf("statuses %v", got)
	}
	if n := e.jobsLeft(); n != 0 {
		t.Errorf("%d jobs left: the job was not acknowledged", n)
	}
	natstest.CheckFor(t, wait, func() error {
		for {
			select {
			case s := <-stats:
				if s.Worker == "w1" && s.Succeeded == 1 && s.Running == 0 && !s.At.IsZero() {
					return nil
				}
			default:
				return errString("no stats with succeeded 1")
			}
		}
	})
	w.stop(t)
}

func TestExecOutsideTheAllowListIsRefused(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	e.startWorker("w1", nil)
	id := e.run("t1", jobs.TypeExec, "rm-rf") // sent directly: the API would refuse it
	e.waitStatus("t1", failed)
	natstest.CheckFor(t, wait, func() error {
		for _, l := range e.rec.logs(id) {
			if strings.Contains(l, `command "rm-rf" is not in this worker's allow-list`) {
				return nil
			}
		}
		return errString("no refusal in the logs")
	})
	natstest.CheckFor(t, wait, func() error {
		if e.jobsLeft() != 0 {
			return errString("the refused job is still queued")
		}
		return nil
	})
	if ps := e.rec.progress(id); slices.ContainsFunc(ps, func(p *pb.TaskProgress) bool { return p.Progress > 0 }) {
		t.Errorf("a refused job reported progress: %v", ps)
	}
}

func TestFailingCommandEndsFailedWithStderr(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	boom := script(t, "echo 'PROGRESS 0.5 compile'\necho 'error: cannot find module board/store' >&2\nexit 3\n")
	e.startWorker("w1", func(o *Options) {
		o.AllowList = jobrun.AllowList{"boom": {Name: "boom", Path: boom}}
		o.MaxDeliver = 2
	})
	id := e.run("t1", jobs.TypeExec, "boom")
	task := e.waitStatus("t1", failed)
	if task.Progress == 1 {
		t.Errorf("failed task with progress 1")
	}
	time.Sleep(200 * time.Millisecond)
	logs := e.rec.logs(id)
	if count(logs, "STDERR: error: cannot find module board/store") != 2 {
		t.Errorf("want the stderr line once per attempt (2): %q", logs)
	}
	joined := strings.Join(logs, "\n")
	for _, want := range []string{"attempt 1 of 2 failed: boom: exit status 3; retrying", "attempt 2 of 2 failed: boom: exit status 3; giving up"} {
		if !strings.Contains(joined, want) {
			t.Errorf("logs lack %q:\n%s", want, joined)
		}
	}
	checkProgress(t, e.rec.progress(id), 2, 0)
	if got := e.rec.statuses(); !slices.Equal(got, []pb.TaskStatus{queued, running_, failed}) {
		t.Errorf("statuses %v", got)
	}
	if n := e.jobsLeft(); n != 0 {
		t.Errorf("%d jobs left", n)
	}
}

func TestCancelStopsTheProcess(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	e.startWorker("w1", func(o *Options) { o.Heartbeat = time.Second }) // the cancel message, not the heartbeat, stops it
	id := e.run("t1", jobs.TypeExec, "sleep")
	e.waitStatus("t1", running_)
	natstest.CheckFor(t, wait, func() error {
		if !slices.Contains(e.rec.logs(id), "SYSTEM: $ /bin/sleep 10") {
			return errString("not started")
		}
		return nil
	})
	// What the task API does: the status first, then the message.
	start := time.Now()
	if _, err := e.store.Update(context.Background(), "p1", "t1", taskstore.Write{Actor: "u1"}, func(t *pb.Task) ([]string, error) {
		t.Status = cancelled
		return []string{"status"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.nc.Publish(jobs.CancelSubject(id), nil); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, wait, func() error {
		if !slices.Contains(e.rec.logs(id), "SYSTEM: stopped: cancelled") {
			return errString("not stopped")
		}
		return nil
	})
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("cancellation took %s", took)
	}
	natstest.CheckFor(t, wait, func() error {
		if e.jobsLeft() != 0 {
			return errString("job still queued")
		}
		return nil
	})
	if got := e.rec.statuses(); !slices.Equal(got, []pb.TaskStatus{queued, running_, cancelled}) {
		t.Errorf("statuses %v (cancelled once)", got)
	}
}

// TestKilledWorkerJobIsFinishedByAnother: the worker running a job dies
// without acknowledging it; after AckWait another worker runs it to the
// end, and the task sees "succeeded" and progress 1 exactly once.
func TestKilledWorkerJobIsFinishedByAnother(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	short := func(o *Options) {
		o.AckWait = time.Second
		o.Heartbeat = 200 * time.Millisecond
		o.Demo.Duration = 1500 * time.Millisecond
		o.ShutdownGrace = 100 * time.Millisecond
	}
	a := e.startWorker("a", short)
	id := e.run("t1", jobs.TypeDemo, "")
	e.waitStatus("t1", running_)
	natstest.CheckFor(t, wait, func() error { // a is mid-job
		if len(e.rec.logs(id)) < 3 {
			return errString("a has not logged yet")
		}
		return nil
	})
	b := e.startWorker("b", short)
	a.kill(t)
	e.waitStatus("t1", succeeded)
	natstest.CheckFor(t, wait, func() error {
		if e.jobsLeft() != 0 {
			return errString("job still queued")
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	if got := e.rec.statuses(); !slices.Equal(got, []pb.TaskStatus{queued, running_, succeeded}) {
		t.Errorf("statuses %v: running and succeeded must appear once", got)
	}
	checkProgress(t, e.rec.progress(id), 2, 1)
	if !slices.ContainsFunc(e.rec.logs(id), func(l string) bool { return strings.Contains(l, "attempt 2 of 5 on b") }) {
		t.Errorf("b does not say it took over: %q", e.rec.logs(id))
	}
	if s := b.w.Stats(); s.Succeeded != 1 {
		t.Errorf("b stats %+v", s)
	}
}

// TestRedeliveryAfterSuccessIsSkipped: a worker died after recording
// success and publishing progress 1, before its ack. The redelivered job
// is acknowledged without running, and progress 1 is not repeated.
func TestRedeliveryAfterSuccessIsSkipped(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	id := e.run("t1", jobs.TypeDemo, "")
	// What the dead worker did before dying.
	for _, s := range []pb.TaskStatus{running_, succeeded} {
		if _, err := e.store.Update(context.Background(), "p1", "t1", taskstore.Write{}, func(t *pb.Task) ([]string, error) {
			t.Status = s
			if s == succeeded {
				t.Progress = 1
				return []string{"status", "progress"}, nil
			}
			return []string{"status"}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := report.Final(context.Background(), e.js, report.Execution{ProjectID: "p1", TaskID: "t1", ExecutionID: id}); err != nil {
		t.Fatal(err)
	}
	e.startWorker("w2", nil)
	natstest.CheckFor(t, wait, func() error {
		if e.jobsLeft() != 0 {
			return errString("job still queued")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond)
	if ps := e.rec.progress(id); len(ps) != 1 || ps[0].Progress != 1 {
		t.Errorf("progress events %v, want the one progress 1", ps)
	}
	if got := e.rec.statuses(); !slices.Equal(got, []pb.TaskStatus{queued, running_, succeeded}) {
		t.Errorf("statuses %v", got)
	}
}

// TestLastDeliveryLostFailsTheTask: the worker dies during the only
// allowed delivery; the max-deliveries advisory makes another worker fail
// the task and remove the job.
func TestLastDeliveryLostFailsTheTask(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	opts := func(o *Options) {
		o.MaxDeliver = 1
		o.AckWait = time.Second
		o.Heartbeat = 200 * time.Millisecond
		o.Demo.Duration = 5 * time.Second
		o.ShutdownGrace = 100 * time.Millisecond
	}
	a := e.startWorker("a", opts)
	id := e.run("t1", jobs.TypeDemo, "")
	e.waitStatus("t1", running_)
	e.startWorker("b", opts)
	a.kill(t)
	e.waitStatus("t1", failed)
	natstest.CheckFor(t, wait, func() error {
		if e.jobsLeft() != 0 {
			return errString("the exhausted job was not removed")
		}
		return nil
	})
	natstest.CheckFor(t, wait, func() error {
		for _, l := range e.rec.logs(id) {
			if strings.Contains(l, "giving up after 1 deliveries") {
				return nil
			}
		}
		return errString("no explanation in the logs")
	})
}

// TestShutdownRequeuesRunningJobs: a stopping worker gives its job back at
// once (no AckWait), and another worker finishes it.
func TestShutdownRequeuesRunningJobs(t *testing.T) {
	e := newEnv(t)
	e.task("t1")
	a := e.startWorker("a", func(o *Options) {
		o.AckWait = time.Minute
		o.ShutdownGrace = 100 * time.Millisecond
		o.Demo.Duration = 10 * time.Second
	})
	id := e.run("t1", jobs.TypeDemo, "")
	e.waitStatus("t1", running_)
	start := time.Now()
	a.stop(t)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stop took %s", took)
	}
	e.startWorker("b", nil)
	e.waitStatus("t1", succeeded)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("requeued job finished after %s: it waited for AckWait", took)
	}
	logs := strings.Join(e.rec.logs(id), "\n")
	if !strings.Contains(logs, "worker a stopping: the job will run again") {
		t.Errorf("logs:\n%s", logs)
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	for name, o := range map[string]Options{
		"no store":  {Name: "w", JS: e.js, NC: e.nc},
		"bad name":  {Name: "a b", Store: e.store, JS: e.js, NC: e.nc},
		"heartbeat": {Name: "w", Store: e.store, JS: e.js, NC: e.nc, AckWait: time.Second, Heartbeat: time.Second},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	w, err := New(Options{Name: "w", Store: e.store, JS: e.js, NC: e.nc})
	if err != nil {
		t.Fatal(err)
	}
	c := w.ConsumerConfig()
	if c.Durable != "workers" || c.AckWait != 30*time.Second || c.MaxDeliver != 5 || c.FilterSubject != "job.run.>" {
		t.Errorf("consumer config %+v", c)
	}
	if w.opts.backoff(1) != time.Second || w.opts.backoff(9) != 10*time.Second || w.opts.Heartbeat != 10*time.Second {
		t.Errorf("defaults %+v", w.opts)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
