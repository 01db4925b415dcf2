package report

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/internal/natstest"
)

// TestMain fails the package if a Reporter's goroutine outlives Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

var exe = Execution{ProjectID: "p1", TaskID: "t1", ExecutionID: "x1"}

type got struct {
	at time.Time
	ev *pb.Event
}

// collect reads the live events of p1 until the channel is quiet.
func collect(t *testing.T, ch <-chan *natstest.Received, quiet time.Duration) []got {
	t.Helper()
	var out []got
	for {
		select {
		case r := <-ch:
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			out = append(out, got{time.Now(), r.Event})
		case <-time.After(quiet):
			return out
		}
	}
}

func TestProgressIsThrottledAndMonotonic(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	live := natstest.Events(t, nc, "live.project.p1")
	r := Start(js, exe, Options{}, zerolog.New(io.Discard))
	start := time.Now()
	const n = 400
	for i := range n { // 400 updates over ~400ms
		r.Progress(float64(i)/n, fmt.Sprintf("s%d", i/100), "")
		if i == 200 {
			r.Progress(0.1, "backwards", "") // ignored: progress never decreases
		}
		time.Sleep(time.Millisecond)
	}
	r.Progress(1, "last", "") // clamped below 1
	elapsed := time.Since(start)
	if failed := r.Close(); failed != 0 {
		t.Errorf("%d publishes failed", failed)
	}
	evs := collect(t, live, 300*time.Millisecond)
	if len(evs) < 3 {
		t.Fatalf("%d events", len(evs))
	}
	if p := evs[0].ev.GetTaskProgress(); p.GetProgress() != 0 || p.GetExecutionId() != "x1" || p.GetTaskId() != "t1" {
		t.Errorf("first event %v, want progress 0", evs[0].ev)
	}
	// At most 10 per second: one per 100ms, plus the first.
	if max := int(elapsed/(100*time.Millisecond)) + 2; len(evs) > max {
		t.Errorf("%d progress events in %s, want at most %d", len(evs), elapsed, max)
	}
	last := -1.0
	for _, g := range evs {
		ev := g.ev
		if ev.RequiredPermission != "" || len(ev.GetTaskProgress().GetLogs()) != 0 {
			t.Errorf("progress-only event %v carries a permission or logs", ev)
		}
		if p := ev.GetTaskProgress().GetProgress(); p < last || p >= 1 {
			t.Errorf("progress %v after %v", p, last)
		} else {
			last = p
		}
		if events.Priority(ev) != pb.Priority_PRIORITY_LOW {
			t.Errorf("priority %v", events.Priority(ev))
		}
	}
	if final := evs[len(evs)-1].ev.GetTaskProgress(); final.GetProgress() != maxRunning || final.GetStage() != "last" {
		t.Errorf("last event %v, want the newest value (clamped to %v)", final, maxRunning)
	}
}

func TestLogsAreBatchedWithPermission(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	live := natstest.Events(t, nc, "live.project.p1")
	r := Start(js, exe, Options{}, zerolog.New(io.Discard))
	natstest.Next(t, live, 5*time.Second) // progress 0

	r.Progress(0.3, "build", "")
	natstest.Next(t, live, 5*time.Second)
	// 120 lines at once: two full batches of 50 at once, the rest within 100ms.
	for i := range 120 {
		r.Log(pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("line %d", i))
	}
	evs := collect(t, live, 300*time.Millisecond)
	var sizes []int
	next := 0
	for _, g := range evs {
		p := g.ev.GetTaskProgress()
		if g.ev.RequiredPermission != "logs:read" {
			t.Errorf("log event without logs:read: %v", g.ev)
		}
		if p.GetProgress() != 0.3 || p.GetStage() != "build" {
			t.Errorf("log event carries progress %v %q, want the last sent 0.3 build", p.GetProgress(), p.GetStage())
		}
		for _, l := range p.GetLogs() {
			if l.Line != fmt.Sprintf("line %d", next) || l.Stream != pb.LogStream_LOG_STREAM_STDOUT || l.Timestamp == nil {
				t.Fatalf("log %v, want line %d", l, next)
			}
			next++
		}
		sizes = append(sizes, len(p.GetLogs()))
	}
	if fmt.Sprint(sizes) != "[50 50 20]" {
		t.Errorf("batches %v, want [50 50 20]", sizes)
	}

	// A single line waits at most LogInterval.
	sent := time.Now()
	r.Log(pb.LogStream_LOG_STREAM_STDERR, "alone")
	ev := natstest.Next(t, live, 5*time.Second)
	if wait := time.Since(sent); wait > time.Second || len(ev.GetTaskProgress().GetLogs()) != 1 {
		t.Errorf("single line after %s: %v", wait, ev)
	}
	// Close flushes what is buffered.
	r.Log(pb.LogStream_LOG_STREAM_SYSTEM, "bye")
	r.Close()
	ev = natstest.Next(t, live, 5*time.Second)
	if l := ev.GetTaskProgress().GetLogs(); len(l) != 1 || l[0].Line != "bye" {
		t.Errorf("after Close: %v", ev)
	}
	r.Log(pb.LogStream_LOG_STREAM_SYSTEM, "ignored") // after Close: dropped, no block
	natstest.Quiet(t, live, 200*time.Millisecond)
}

func TestFinalIsPublishedOnce(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	live := natstest.Events(t, nc, "live.project.p1")
	for range 3 {
		if err := Final(context.Background(), js, exe); err != nil {
			t.Fatal(err)
		}
	}
	ev := natstest.Next(t, live, 5*time.Second)
	if p := ev.GetTaskProgress(); p.GetProgress() != 1 || ev.Id != FinalEventID("x1") || ev.RequiredPermission != "" {
		t.Errorf("final = %v", ev)
	}
	natstest.Quiet(t, live, 200*time.Millisecond)
}

func TestPublishFailuresDoNotBlock(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	r := Start(js, exe, Options{PublishTimeout: 200 * time.Millisecond}, zerolog.New(io.Discard))
	srv.Stop()
	for i := range 10 {
		r.Log(pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprint(i))
	}
	if failed := r.Close(); failed == 0 {
		t.Error("no failure counted with NATS down")
	}
}
