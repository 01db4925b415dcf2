package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// runRequest is the body of POST …/run.
type runRequest struct {
	Job     string `json:"job"`
	Command string `json:"command"`
}

// runResponse is the body of a 202 from …/run and …/cancel.
type runResponse struct {
	ExecutionID string `json:"executionId"`
	// Status is the task's status after the request (cancel only).
	Status string `json:"status,omitempty"`
}

func (a *API) parseRun(body []byte) (runRequest, error) {
	req := runRequest{Job: jobs.TypeDemo}
	if body == nil {
		return req, nil
	}
	ms, err := members(body)
	if err != nil {
		return req, err
	}
	for _, m := range ms {
		var s string
		if err := json.Unmarshal(m.raw, &s); err != nil && (m.key == "job" || m.key == "command") {
			return req, badRequest(m.key, "want a string")
		}
		switch m.key {
		case "job":
			req.Job = s
		case "command":
			req.Command = s
		default:
			return req, badRequest(m.key, "unknown field")
		}
	}
	switch {
	case !jobs.KnownType(req.Job):
		return req, badRequest("job", "want one of "+strings.Join(jobs.Types, ", "))
	case req.Job == jobs.TypeExec && req.Command == "":
		return req, badRequest("command", "an exec job needs a command name from the allow-list: "+strings.Join(a.execCmds, ", "))
	case req.Job == jobs.TypeExec && !slices.Contains(a.execCmds, req.Command):
		return req, badRequest("command", "not in the allow-list: "+strings.Join(a.execCmds, ", "))
	case req.Job != jobs.TypeExec && req.Command != "":
		return req, badRequest("command", "only exec jobs take a command")
	}
	return req, nil
}

// runTask queues a run: in one write the task becomes queued with a new
// execution id, and its outbox gets the task_updated event and the job
// message, so neither can be lost nor sent without the other.
func (a *API) runTask(w http.ResponseWriter, r *http.Request) {
	c, project, id, ok := a.begin(w, r, auth.PermTasksWrite)
	if !ok {
		return
	}
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req, err := a.parseRun(body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	job := &jobs.Job{
		ExecutionID: events.NewID(),
		ProjectID:   project,
		TaskID:      id,
		Job:         req.Job,
		Command:     req.Command,
		RequestedBy: c.Subject,
		EnqueuedAt:  a.now().UTC(),
	}
	msg, err := jobs.Message(job)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, err := a.store.Update(r.Context(), project, id, taskstore.Write{Actor: c.Subject, Also: []*nats.Msg{msg}}, func(t *pb.Task) ([]string, error) {
		if taskstore.Active(t.Status) {
			return nil, errActive
		}
		t.Status = pb.TaskStatus_TASK_STATUS_QUEUED
		t.ExecutionId = job.ExecutionID
		t.Progress = 0
		return []string{"status", "executionId", "progress"}, nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.m.runs.WithLabelValues(req.Job).Inc()
	w.Header().Set("ETag", etag(t.Revision))
	writeJSON(w, http.StatusAccepted, runResponse{ExecutionID: job.ExecutionID})
}

// cancelTask cancels the task's current run: a queued or running task
// becomes cancelled (first, so that a worker that misses the message still
// sees it), then job.cancel.<executionId> stops the process.
func (a *API) cancelTask(w http.ResponseWriter, r *http.Request) {
	c, project, id, ok := a.begin(w, r, auth.PermTasksWrite)
	if !ok {
		return
	}
	if _, err := a.readBody(w, r); err != nil {
		a.fail(w, r, err)
		return
	}
	var execID string
	t, err := a.store.Update(r.Context(), project, id, taskstore.Write{Actor: c.Subject}, func(t *pb.Task) ([]string, error) {
		execID = t.ExecutionId
		if execID == "" {
			return nil, conflict("the task has never run")
		}
		if !taskstore.Active(t.Status) {
			return nil, nil
		}
		t.Status = pb.TaskStatus_TASK_STATUS_CANCELLED
		return []string{"status"}, nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cancelRun(execID)
	w.Header().Set("ETag", etag(t.Revision))
	writeJSON(w, http.StatusAccepted, runResponse{ExecutionID: execID, Status: t.Status.String()})
}
