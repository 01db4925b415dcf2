package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// Writable fields of a task body.
var (
	createFields = []string{"id", "projectId", "title", "description", "status", "assignee", "labels"}
	patchFields  = []string{"title", "description", "status", "assignee", "labels"}
)

// pathIDs validates the path's ids (taskId too when the route has it).
func pathIDs(r *http.Request) (project, task string, err error) {
	project = r.PathValue("projectId")
	if !taskstore.ValidID(project) {
		return "", "", badRequest("projectId", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	task = r.PathValue("taskId")
	if strings.Contains(r.Pattern, "{taskId}") && !taskstore.ValidID(task) {
		return "", "", badRequest("taskId", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	return project, task, nil
}

// checkStatus refuses the statuses only runs set.
func checkStatus(s pb.TaskStatus) error {
	if taskstore.Active(s) {
		return badRequest("status", "TASK_STATUS_QUEUED and TASK_STATUS_RUNNING are set by runs (POST …/run)")
	}
	if s == pb.TaskStatus_TASK_STATUS_UNSPECIFIED {
		return badRequest("status", "TASK_STATUS_UNSPECIFIED is not a status")
	}
	return nil
}

func (a *API) createTask(w http.ResponseWriter, r *http.Request) {
	c, project, _, ok := a.begin(w, r, auth.PermTasksWrite)
	if !ok {
		return
	}
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if body == nil {
		a.fail(w, r, badRequest("", "a task body is required"))
		return
	}
	t, names, err := taskPatch(body, createFields)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if hasField(names, "status") {
		if err := checkStatus(t.Status); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	created, err := a.store.Create(r.Context(), project, t, taskstore.Write{Actor: c.Subject})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/projects/"+project+"/tasks/"+created.Id)
	writeTask(w, http.StatusCreated, created)
}

func (a *API) getTask(w http.ResponseWriter, r *http.Request) {
	_, project, id, ok := a.begin(w, r, auth.PermTasksRead)
	if !ok {
		return
	}
	t, err := a.store.Get(r.Context(), project, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag(t.Revision) || inm == "*") {
		w.Header().Set("ETag", etag(t.Revision))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeTask(w, http.StatusOK, t)
}

// listResponse is the body of GET …/tasks.
type listResponse struct {
	Tasks      []json.RawMessage `json:"tasks"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

func (a *API) listTasks(w http.ResponseWriter, r *http.Request) {
	_, project, _, ok := a.begin(w, r, auth.PermTasksRead)
	if !ok {
		return
	}
	q := r.URL.Query()
	var query taskstore.Query
	if s := q.Get("status"); s != "" {
		v, found := pb.TaskStatus_value[s]
		if !found || v == 0 {
			a.fail(w, r, badRequest("status", "want a TASK_STATUS_* name, e.g. TASK_STATUS_TODO"))
			return
		}
		query.Status = pb.TaskStatus(v)
	}
	query.Assignee = q.Get("assignee")
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > taskstore.MaxLimit {
			a.fail(w, r, badRequest("limit", "want 1-"+strconv.Itoa(taskstore.MaxLimit)))
			return
		}
		query.Limit = n
	}
	query.Cursor = q.Get("cursor")
	page, err := a.store.List(r.Context(), project, query)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp := listResponse{Tasks: make([]json.RawMessage, 0, len(page.Tasks)), NextCursor: page.NextCursor}
	for _, t := range page.Tasks {
		b, err := protojson.Marshal(t)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		resp.Tasks = append(resp.Tasks, b)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) patchTask(w http.ResponseWriter, r *http.Request) {
	c, project, id, ok := a.begin(w, r, auth.PermTasksWrite)
	if !ok {
		return
	}
	rev, err := ifMatch(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body, err := a.readBody(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if body == nil {
		a.fail(w, r, badRequest("", "a body with the fields to change is required"))
		return
	}
	patch, names, err := taskPatch(body, patchFields)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if hasField(names, "status") {
		if err := checkStatus(patch.Status); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	t, err := a.store.Update(r.Context(), project, id, taskstore.Write{Actor: c.Subject, IfRevision: rev}, func(t *pb.Task) ([]string, error) {
		if hasField(names, "status") && t.Status != patch.Status && taskstore.Active(t.Status) {
			return nil, errActive
		}
		for _, n := range names {
			switch n {
			case "title":
				t.Title = patch.Title
			case "description":
				t.Description = patch.Description
			case "status":
				t.Status = patch.Status
			case "assignee":
				t.Assignee = patch.Assignee
			case "labels":
				t.Labels = patch.Labels
			}
		}
		return names, nil
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeTask(w, http.StatusOK, t)
}

func (a *API) deleteTask(w http.ResponseWriter, r *http.Request) {
	c, project, id, ok := a.begin(w, r, auth.PermTasksWrite)
	if !ok {
		return
	}
	rev, err := ifMatch(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// A run of a deleted task is pointless: stop it. The worker also
	// notices by itself (it checks the task while running).
	before, err := a.store.Get(r.Context(), project, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.store.Delete(r.Context(), project, id, taskstore.Write{Actor: c.Subject, IfRevision: rev}); err != nil {
		a.fail(w, r, err)
		return
	}
	if taskstore.Active(before.Status) && before.ExecutionId != "" {
		a.cancelRun(before.ExecutionId)
	}
	w.WriteHeader(http.StatusNoContent)
}

// cancelRun publishes the core NATS cancellation of an execution. Losing
// it is harmless (the task's status already says cancelled, and workers
// check it), so a failure is only logged.
func (a *API) cancelRun(executionID string) {
	if err := a.nc.Publish(jobs.CancelSubject(executionID), nil); err != nil {
		a.log.Warn().Err(err).Str("execution", executionID).Msg("publishing the cancellation failed; workers will see the task's status")
		return
	}
	if err := a.nc.FlushTimeout(a.timeout); err != nil && err != nats.ErrConnectionClosed {
		a.log.Warn().Err(err).Str("execution", executionID).Msg("flushing the cancellation failed")
	}
}

// begin authorizes a request on a project and validates its path ids.
func (a *API) begin(w http.ResponseWriter, r *http.Request, perm string) (*auth.Claims, string, string, bool) {
	project, task, idErr := pathIDs(r)
	c := a.authorize(w, r, project, perm)
	if c == nil {
		return nil, "", "", false
	}
	if idErr != nil {
		a.fail(w, r, idErr)
		return nil, "", "", false
	}
	return c, project, task, true
}

func hasField(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}
