package api

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
)

// TestRunQueuesAJobAndCancelStopsIt: a run stores the queued status and
// enqueues the job in one write; a cancel marks the task cancelled and
// sends job.cancel.<executionId>.
func TestRunQueuesAJobAndCancelStopsIt(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"id":"t1","title":"x"}`)
	live := natstest.Events(t, e.nc, "live.project.p1")
	cancels := make(chan string, 4)
	sub, err := e.nc.Subscribe(jobs.CancelWildcard, func(m *nats.Msg) { cancels <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = e.nc.Flush()

	if r := e.do("POST", "/v1/projects/p1/tasks/t1/cancel", writer(t), ""); r.status != http.StatusConflict {
		t.Errorf("cancel of a task that never ran: %d %s", r.status, r.body)
	}

	r := e.do("POST", "/v1/projects/p1/tasks/t1/run", writer(t), "")
	if r.status != http.StatusAccepted {
		t.Fatalf("run: %d %s", r.status, r.body)
	}
	var run runResponse
	if err := json.Unmarshal(r.body, &run); err != nil || run.ExecutionID == "" {
		t.Fatalf("run body %s: %v", r.body, err)
	}
	ev := natstest.Next(t, live, wait)
	want := &pb.TaskUpdated{TaskId: "t1", UpdatedBy: "u1",
		Changes:       &pb.Task{Status: pb.TaskStatus_TASK_STATUS_QUEUED, ExecutionId: run.ExecutionID},
		ChangedFields: []string{"status", "executionId"}}
	if !proto.Equal(ev.GetTaskUpdated(), want) {
		t.Errorf("task_updated = %v\nwant %v", ev.GetTaskUpdated(), want)
	}
	stream, err := e.js.Stream(t.Context(), jobs.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(t.Context(), jobs.RunSubject(jobs.TypeDemo))
	if err != nil {
		t.Fatalf("no job on %s: %v", jobs.RunSubject(jobs.TypeDemo), err)
	}
	job, err := jobs.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(nats.MsgIdHdr) != run.ExecutionID || job.ExecutionID != run.ExecutionID || job.ProjectID != "p1" ||
		job.TaskID != "t1" || job.Job != jobs.TypeDemo || job.RequestedBy != "u1" || time.Since(job.EnqueuedAt) > time.Minute {
		t.Errorf("job = %+v (msg id %s)", job, m.Header.Get(nats.MsgIdHdr))
	}

	if r := e.do("POST", "/v1/projects/p1/tasks/t1/run", writer(t), `{"job":"demo"}`); r.status != http.StatusConflict {
		t.Errorf("second run while queued: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"status":"TASK_STATUS_TODO"}`); r.status != http.StatusConflict {
		t.Errorf("status change of a queued task: %d %s", r.status, r.body)
	}
	if r := e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"title":"renamed while queued"}`); r.status != http.StatusOK {
		t.Errorf("title change of a queued task: %d %s", r.status, r.body)
	}
	natstest.Next(t, live, wait)

	r = e.do("POST", "/v1/projects/p1/tasks/t1/cancel", writer(t), "")
	if r.status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	var canc runResponse
	_ = json.Unmarshal(r.body, &canc)
	if canc.ExecutionID != run.ExecutionID || canc.Status != "TASK_STATUS_CANCELLED" {
		t.Errorf("cancel = %+v", canc)
	}
	ev = natstest.Next(t, live, wait)
	want = &pb.TaskUpdated{TaskId: "t1", UpdatedBy: "u1", Changes: &pb.Task{Status: pb.TaskStatus_TASK_STATUS_CANCELLED}, ChangedFields: []string{"status"}}
	if !proto.Equal(ev.GetTaskUpdated(), want) {
		t.Errorf("task_updated = %v\nwant %v", ev.GetTaskUpdated(), want)
	}
	select {
	case s := <-cancels:
		if s != "job.cancel."+run.ExecutionID {
			t.Errorf("cancel subject %s", s)
		}
	case <-time.After(wait):
		t.Fatal("no job.cancel message")
	}
	// Cancelling a finished run changes nothing but still tells the workers.
	if r := e.do("POST", "/v1/projects/p1/tasks/t1/cancel", writer(t), ""); r.status != http.StatusAccepted {
		t.Errorf("second cancel: %d %s", r.status, r.body)
	}
	<-cancels
	natstest.Quiet(t, live, 100*time.Millisecond)

	// An exec run carries its allow-listed command name.
	r = e.do("POST", "/v1/projects/p1/tasks/t1/run", writer(t), `{"job":"exec","command":"echo-ok"}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("exec run: %d %s", r.status, r.body)
	}
	m, err = stream.GetLastMsgForSubject(t.Context(), jobs.RunSubject(jobs.TypeExec))
	if err != nil {
		t.Fatal(err)
	}
	if job, err := jobs.Decode(m.Data); err != nil || job.Command != "echo-ok" {
		t.Errorf("exec job = %+v, %v", job, err)
	}
	if r := e.do("POST", "/v1/projects/p1/tasks/nope/run", writer(t), ""); r.status != http.StatusNotFound {
		t.Errorf("run of a missing task: %d %s", r.status, r.body)
	}
}

// TestDeleteCancelsTheRun: deleting a queued task also stops its run.
func TestDeleteCancelsTheRun(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"id":"t1","title":"x"}`)
	cancels := make(chan string, 1)
	sub, _ := e.nc.Subscribe(jobs.CancelWildcard, func(m *nats.Msg) { cancels <- m.Subject })
	defer sub.Unsubscribe()
	_ = e.nc.Flush()
	r := e.do("POST", "/v1/projects/p1/tasks/t1/run", writer(t), "")
	var run runResponse
	_ = json.Unmarshal(r.body, &run)
	if r := e.do("DELETE", "/v1/projects/p1/tasks/t1", writer(t), ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	select {
	case s := <-cancels:
		if s != jobs.CancelSubject(run.ExecutionID) {
			t.Errorf("cancel subject %s", s)
		}
	case <-time.After(wait):
		t.Fatal("no job.cancel after deleting a queued task")
	}
}
