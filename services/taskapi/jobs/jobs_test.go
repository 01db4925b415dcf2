package jobs_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
)

func valid() *jobs.Job {
	return &jobs.Job{ExecutionID: "x1", ProjectID: "p1", TaskID: "t1", Job: jobs.TypeExec, Command: "echo-ok", RequestedBy: "u1",
		EnqueuedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestRoundTrip(t *testing.T) {
	j := valid()
	b, err := j.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"executionId":"x1","projectId":"p1","taskId":"t1","job":"exec","command":"echo-ok","requestedBy":"u1","enqueuedAt":"2026-01-02T03:04:05Z"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant %s", b, want)
	}
	got, err := jobs.Decode(b)
	if err != nil || *got != *j {
		t.Errorf("Decode = %+v, %v", got, err)
	}
	m, err := jobs.Message(j)
	if err != nil || m.Subject != "job.run.exec" || m.Header.Get(nats.MsgIdHdr) != "x1" || m.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Message = %+v, %v", m, err)
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*jobs.Job){
		"execution id":     func(j *jobs.Job) { j.ExecutionID = "a.b" },
		"project":          func(j *jobs.Job) { j.ProjectID = "" },
		"task":             func(j *jobs.Job) { j.TaskID = "t>" },
		"type":             func(j *jobs.Job) { j.Job = "shell" },
		"exec w/o command": func(j *jobs.Job) { j.Command = "" },
		"command line":     func(j *jobs.Job) { j.Command = "/bin/sh -c x" },
		"demo w/ command":  func(j *jobs.Job) { j.Job = jobs.TypeDemo },
		"requested by":     func(j *jobs.Job) { j.RequestedBy = "a b" },
		"no time":          func(j *jobs.Job) { j.EnqueuedAt = time.Time{} },
	} {
		j := valid()
		mod(j)
		if err := j.Validate(); !jobs.IsInvalid(err) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for name, body := range map[string]string{
		"unknown field": `{"executionId":"x1","projectId":"p1","taskId":"t1","job":"demo","enqueuedAt":"2026-01-02T03:04:05Z","shell":"rm"}`,
		"trailing":      `{"executionId":"x1","projectId":"p1","taskId":"t1","job":"demo","enqueuedAt":"2026-01-02T03:04:05Z"} {}`,
		"not JSON":      `job`,
		"too large":     `{"executionId":"` + strings.Repeat("x", jobs.MaxJobBytes) + `"}`,
	} {
		if _, err := jobs.Decode([]byte(body)); !jobs.IsInvalid(err) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestCancelSubjects(t *testing.T) {
	if s := jobs.CancelSubject("x1"); s != "job.cancel.x1" || jobs.ExecutionIDFromCancel(s) != "x1" {
		t.Errorf("cancel subject %s", s)
	}
	for _, s := range []string{"job.cancel.", "job.cancel.a.b", "job.run.x1", "x"} {
		if id := jobs.ExecutionIDFromCancel(s); id != "" {
			t.Errorf("ExecutionIDFromCancel(%q) = %q", s, id)
		}
	}
}

// TestEnsureStreamAndPublish: EnsureStream is idempotent, the stream is a
// work queue, and a retried publish of the same execution is dropped.
func TestEnsureStreamAndPublish(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if _, err := jobs.EnsureStream(ctx, js, jobs.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, jobs.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if cfg.Retention != jetstream.WorkQueuePolicy || cfg.Storage != jetstream.FileStorage || cfg.Subjects[0] != "job.run.>" {
		t.Errorf("config = %+v", cfg)
	}
	j := valid()
	a1, err := jobs.Publish(ctx, js, j)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := jobs.Publish(ctx, js, j)
	if err != nil || !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Errorf("second publish = %+v, %v; want a duplicate of %d", a2, err, a1.Sequence)
	}
	bad := valid()
	bad.Job = "nope"
	if _, err := jobs.Publish(ctx, js, bad); !jobs.IsInvalid(err) {
		t.Errorf("invalid job published: %v", err)
	}
	if err := (jobs.StreamConfig{Replicas: 2}).Validate(); err == nil {
		t.Error("replicas 2 accepted")
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := valid().Marshal()
	f.Add(b)
	f.Add([]byte(`{"job":"demo"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := jobs.Decode(data)
		if err != nil {
			if !jobs.IsInvalid(err) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("Decode returned an invalid job: %v", err)
		}
		out, err := j.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var again jobs.Job
		if err := json.Unmarshal(out, &again); err != nil || !again.EnqueuedAt.Equal(j.EnqueuedAt) || again.ExecutionID != j.ExecutionID {
			t.Fatalf("round trip: %+v vs %+v (%v)", again, j, err)
		}
	})
}
