package worker

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/worker/internal/jobrun"
)

// TestMain fails the package if a worker leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const wait = 10 * time.Second

// env is a real NATS server with the streams and the bucket, a client
// connection for the test, and a recorder of every event of project p1.
type env struct {
	t     *testing.T
	srv   *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *taskstore.Store
	rec   *recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := jobs.EnsureStream(ctx, js, jobs.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	st, err := taskstore.Open(ctx, js, taskstore.Options{MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, nc: nc, js: js, store: st, rec: &recorder{}}
	sub, err := nc.Subscribe("live.project.p1", func(m *nats.Msg) {
		ev, err := events.Decode(m.Data, m.Header.Get(events.HeaderContentType))
		if err != nil {
			t.Errorf("event: %v", err)
			return
		}
		e.rec.add(ev)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = nc.Flush()
	return e
}

// recorder keeps events in arrival order.
type recorder struct {
	mu  sync.Mutex
	evs []*pb.Event
}

func (r *recorder) add(ev *pb.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) all() []*pb.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*pb.Event(nil), r.evs...)
}

// progress returns the task_progress events of execution id.
func (r *recorder) progress(id string) []*pb.TaskProgress {
	var out []*pb.TaskProgress
	for _, ev := range r.all() {
		if p := ev.GetTaskProgress(); p != nil && p.ExecutionId == id {
			out = append(out, p)
		}
	}
	return out
}

// statuses returns the statuses task_updated events set, in order.
func (r *recorder) statuses() []pb.TaskStatus {
	var out []pb.TaskStatus
	for _, ev := range r.all() {
		if u := ev.GetTaskUpdated(); u != nil {
			for _, f := range u.ChangedFields {
				if f == "status" {
					out = append(out, u.Changes.Status)
				}
			}
		}
	}
	return out
}

// logs returns every log line of execution id as "STREAM: line".
func (r *recorder) logs(id string) []string {
	var out []string
	for _, ev := range r.all() {
		p := ev.GetTaskProgress()
		if p == nil || p.ExecutionId != id {
			continue
		}
		if len(p.Logs) > 0 && ev.RequiredPermission != "logs:read" {
			out = append(out, "MISSING PERMISSION")
		}
		if len(p.Logs) == 0 && ev.RequiredPermission != "" {
			out = append(out, "PERMISSION ON A PROGRESS-ONLY EVENT")
		}
		for _, l := range p.Logs {
			out = append(out, l.Stream.String()[len("LOG_STREAM_"):]+": "+l.Line)
		}
	}
	return out
}

type running struct {
	w      *Worker
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

// startWorker runs a worker on a connection of its own; it is stopped when
// the test ends (if the test did not).
func (e *env) startWorker(name string, mod func(*Options)) *running {
	e.t.Helper()
	nc, err := nats.Connect(e.srv.URL(), nats.Name(name))
	if err != nil {
		e.t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	st, err := taskstore.Open(context.Background(), js, taskstore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	list, _ := jobrun.ParseAllowList(jobrun.DefaultAllowList)
	o := Options{
		Name: name, Store: st, JS: js, NC: nc,
		AckWait: 5 * time.Second, Heartbeat: 200 * time.Millisecond, FetchWait: 500 * time.Millisecond,
		Backoff: []time.Duration{50 * time.Millisecond}, StatsInterval: 100 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		Demo: jobrun.Demo{Duration: 400 * time.Millisecond}, AllowList: list,
		Log: zerolog.New(io.Discard),
	}
	if testing.Verbose() {
		o.Log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	if mod != nil {
		mod(&o)
	}
	w, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop stops the worker and waits for Run; idempotent.
func (r *running) stop(t *testing.T) {
	r.cancel()
	if r.done != nil {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
		r.done = nil
	}
	r.nc.Close()
}

// kill makes the worker vanish like a killed process: its connection
// closes at once, so nothing it holds is acknowledged, and its Run ends.
func (r *running) kill(t *testing.T) {
	r.nc.Close()
	r.stop(t)
}

// task creates task id in p1.
func (e *env) task(id string) {
	e.t.Helper()
	if _, err := e.store.Create(context.Background(), "p1", &pb.Task{Id: id, Title: "task " + id}, taskstore.Write{Actor: "u1"}); err != nil {
		e.t.Fatal(err)
	}
}

// run queues a run of task id as the task API does: the queued status and
// the job message in one write. It returns the execution id.
func (e *env) run(id, jobType, command string) string {
	e.t.Helper()
	job := &jobs.Job{ExecutionID: events.NewID(), ProjectID: "p1", TaskID: id, Job: jobType, Command: command, RequestedBy: "u1", EnqueuedAt: time.Now()}
	msg, err := jobs.Message(job)
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.store.Update(context.Background(), "p1", id, taskstore.Write{Actor: "u1", Also: []*nats.Msg{msg}}, func(t *pb.Task) ([]string, error) {
		t.Status, t.ExecutionId, t.Progress = pb.TaskStatus_TASK_STATUS_QUEUED, job.ExecutionID, 0
		return []string{"status", "executionId", "progress"}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return job.ExecutionID
}

// waitStatus waits until task id has status s.
func (e *env) waitStatus(id string, s pb.TaskStatus) *pb.Task {
	e.t.Helper()
	var t *pb.Task
	natstest.CheckFor(e.t, wait, func() error {
		var err error
		t, err = e.store.Get(context.Background(), "p1", id)
		if err != nil {
			return err
		}
		if t.Status != s {
			return fmt.Errorf("task %s is %s, want %s", id, t.Status, s)
		}
		return nil
	})
	return t
}

// jobsLeft is the number of jobs in the JOBS stream.
func (e *env) jobsLeft() uint64 {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), jobs.StreamName)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmd.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}
