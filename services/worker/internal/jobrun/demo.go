package jobrun

import (
	"context"
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// DefaultDemoDuration is how long a demo run takes by default.
const DefaultDemoDuration = 6500 * time.Millisecond

// Demo configures the demo job.
type Demo struct {
	// Duration is the run's total time, spread over its stages. Default
	// 6.5s; tests use a few hundred milliseconds.
	Duration time.Duration
}

type demoLine struct {
	stream pb.LogStream
	text   string
}

// demoStage is one stage of the simulated pipeline: its share of the run's
// time and its log lines, emitted evenly over it.
type demoStage struct {
	name   string
	weight float64
	lines  []demoLine
}

func out(s string) demoLine  { return demoLine{pb.LogStream_LOG_STREAM_STDOUT, s} }
func errl(s string) demoLine { return demoLine{pb.LogStream_LOG_STREAM_STDERR, s} }
func sys(s string) demoLine  { return demoLine{pb.LogStream_LOG_STREAM_SYSTEM, s} }

var demoScript = []demoStage{
	{"checkout", 0.12, []demoLine{
		sys("checking out main@3f2c1ab"),
		out("Cloning into 'board'..."),
		out("remote: Enumerating objects: 1432, done."),
		out("Receiving objects: 100% (1432/1432), 2.10 MiB | 18.4 MiB/s, done."),
		out("HEAD is now at 3f2c1ab Add task board filters"),
	}},
	{"build", 0.35, []demoLine{
		out("go: downloading github.com/nats-io/nats.go v1.55.0"),
		out("go build -o bin/board ./cmd/board"),
		out("compiling internal/store (1/5)"),
		out("compiling internal/api (2/5)"),
		errl("warning: internal/api/legacy.go:12: ListAll is deprecated"),
		out("compiling internal/events (3/5)"),
		out("compiling internal/web (4/5)"),
		out("linking cmd/board (5/5)"),
		out("built bin/board (14.2 MB)"),
	}},
	{"test", 0.35, []demoLine{
		out("=== RUN   TestStore"),
		out("--- PASS: TestStore (0.21s)"),
		out("=== RUN   TestAPI"),
		out("--- PASS: TestAPI (0.48s)"),
		out("=== RUN   TestEvents"),
		out("--- PASS: TestEvents (0.37s)"),
		out("ok  \tboard/internal/...\t1.064s"),
		out("PASS"),
	}},
	{"deploy", 0.18, []demoLine{
		out("pushing registry.local/board:3f2c1ab"),
		out("rollout: 1/3 replicas updated"),
		out("rollout: 2/3 replicas updated"),
		out("rollout: 3/3 replicas updated"),
		sys("deployed board 3f2c1ab to staging"),
	}},
}

// Run runs the demo: the same stages, lines and timing every time. It
// returns the context's cause when ctx ends first.
func (d Demo) Run(ctx context.Context, sink Sink) error {
	total := d.Duration
	if total <= 0 {
		total = DefaultDemoDuration
	}
	var lines int
	for _, s := range demoScript {
		lines += len(s.lines)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	done := 0
	for _, s := range demoScript {
		step := time.Duration(float64(total) * s.weight / float64(len(s.lines)))
		for _, l := range s.lines {
			timer.Reset(step)
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-timer.C:
			}
			sink.Log(l.stream, l.text)
			done++
			sink.Progress(float64(done)/float64(lines+1), s.name, "")
		}
	}
	return nil
}
