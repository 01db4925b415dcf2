package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/revoke"

	"github.com/eventedge/eventedge/services/internal/natstest"
)

// TestCreatePatchDeletePublishExactEvents: each REST change reaches a
// subscriber of live.project.p1 (the EVENTS stream's RePublish, what edge
// nodes read) with exactly the changes made.
func TestCreatePatchDeletePublishExactEvents(t *testing.T) {
	e := newEnv(t, nil)
	live := natstest.Events(t, e.nc, "live.project.p1")
	userRoom := natstest.Events(t, e.nc, "live.user.u7")

	r := e.do("POST", "/v1/projects/p1/tasks", writer(t), `{"id":"t1","title":"Write docs","assignee":"u7","labels":["docs"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.task(t)
	if r.header.Get("ETag") != strconv.Quote(strconv.FormatUint(created.Revision, 10)) || r.header.Get("Location") != "/v1/projects/p1/tasks/t1" {
		t.Errorf("headers = %v", r.header)
	}
	if created.Status != pb.TaskStatus_TASK_STATUS_TODO || created.CreatedBy != "u1" || created.ProjectId != "p1" {
		t.Errorf("created = %v", created)
	}
	for _, ch := range []<-chan *natstest.Received{live, userRoom} {
		ev := natstest.Next(t, ch, wait)
		if !proto.Equal(ev.GetTaskCreated().GetTask(), created) || ev.UserId != "u1" {
			t.Errorf("task_created = %v\nwant the created task %v", ev, created)
		}
	}

	r = e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"title":"Write the docs","labels":["docs","p1"],"description":"all of them"}`,
		"If-Match: "+r.header.Get("ETag"))
	if r.status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	patched := r.task(t)
	ev := natstest.Next(t, live, wait)
	want := &pb.TaskUpdated{TaskId: "t1", UpdatedBy: "u1",
		Changes:       &pb.Task{Title: "Write the docs", Description: "all of them", Labels: []string{"docs", "p1"}},
		ChangedFields: []string{"title", "description", "labels"}}
	if !proto.Equal(ev.GetTaskUpdated(), want) {
		t.Errorf("task_updated = %v\nwant %v", ev.GetTaskUpdated(), want)
	}
	if ev.Metadata["revision"] != strconv.FormatUint(patched.Revision, 10) {
		t.Errorf("revision metadata %q, want %d", ev.Metadata["revision"], patched.Revision)
	}

	// Clearing the assignee: named in changedFields, absent from changes.
	r = e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"assignee":""}`)
	if r.status != http.StatusOK || r.task(t).Assignee != "" {
		t.Fatalf("clear assignee: %d %s", r.status, r.body)
	}
	ev = natstest.Next(t, live, wait)
	want = &pb.TaskUpdated{TaskId: "t1", UpdatedBy: "u1", Changes: &pb.Task{}, ChangedFields: []string{"assignee"}}
	if !proto.Equal(ev.GetTaskUpdated(), want) {
		t.Errorf("task_updated = %v\nwant %v", ev.GetTaskUpdated(), want)
	}
	current := r.header.Get("ETag")

	// A stale If-Match: 409 with the current ETag, and no event.
	r = e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"title":"lost update"}`, "If-Match: "+etag(patched.Revision))
	if r.status != http.StatusConflict || r.apiError(t).Code != CodeConflict || r.header.Get("ETag") != current {
		t.Errorf("stale If-Match: %d %s %v, want 409 with ETag %s", r.status, r.body, r.header, current)
	}
	r = e.do("DELETE", "/v1/projects/p1/tasks/t1", writer(t), "", "If-Match: "+etag(patched.Revision))
	if r.status != http.StatusConflict {
		t.Errorf("stale DELETE: %d %s", r.status, r.body)
	}
	natstest.Quiet(t, live, 100*time.Millisecond)

	// A no-op PATCH changes nothing and publishes nothing.
	r = e.do("PATCH", "/v1/projects/p1/tasks/t1", writer(t), `{"title":"Write the docs"}`)
	if r.status != http.StatusOK || r.header.Get("ETag") != current {
		t.Errorf("no-op patch: %d, ETag %s, want 200 and %s", r.status, r.header.Get("ETag"), current)
	}
	natstest.Quiet(t, live, 100*time.Millisecond)

	r = e.do("GET", "/v1/projects/p1/tasks/t1", writer(t), "", "If-None-Match: "+current)
	if r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.status)
	}

	r = e.do("DELETE", "/v1/projects/p1/tasks/t1", writer(t), "", "If-Match: "+current)
	if r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	ev = natstest.Next(t, live, wait)
	if d := ev.GetTaskDeleted(); d.GetTaskId() != "t1" || d.GetDeletedBy() != "u1" {
		t.Errorf("task_deleted = %v", ev)
	}
	if r = e.do("GET", "/v1/projects/p1/tasks/t1", writer(t), ""); r.status != http.StatusNotFound || r.apiError(t).Code != CodeNotFound {
		t.Errorf("GET after delete: %d %s", r.status, r.body)
	}
	natstest.Quiet(t, live, 100*time.Millisecond)
}

func TestValidationNamesTheField(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ExecCommands = []string{"echo-ok"} })
	e.create(`{"id":"t1","title":"x"}`)
	long := strings.Repeat("x", 201)
	for _, tc := range []struct {
		method, path, body string
		headers            []string
		field              string
	}{
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","foo":1}`, nil, "foo"},
		{"POST", "/v1/projects/p1/tasks", `{"description":"no title"}`, nil, "title"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"` + long + `"}`, nil, "title"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","status":"TASK_STATUS_NOPE"}`, nil, "status"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","status":"TASK_STATUS_RUNNING"}`, nil, "status"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","progress":0.5}`, nil, "progress"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","revision":"3"}`, nil, "revision"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","labels":"a"}`, nil, "labels"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","labels":["a","a"]}`, nil, "labels"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","assignee":"not valid"}`, nil, "assignee"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","id":"a/b"}`, nil, "id"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","projectId":"p2"}`, nil, "projectId"},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x","title":"y"}`, nil, "title"},
		{"POST", "/v1/projects/p1/tasks", `{"title":1}`, nil, "title"},
		{"POST", "/v1/projects/p1/tasks", `["title"]`, nil, ""},
		{"POST", "/v1/projects/p1/tasks", `{"title":"x"} {}`, nil, ""},
		{"POST", "/v1/projects/p%2E1/tasks", `{"title":"x"}`, nil, "projectId"},
		{"PATCH", "/v1/projects/p1/tasks/t%2E1", `{"title":"x"}`, nil, "taskId"},
		{"PATCH", "/v1/projects/p1/tasks/t1", `{"id":"t2"}`, nil, "id"},
		{"PATCH", "/v1/projects/p1/tasks/t1", `{"createdBy":"me"}`, nil, "createdBy"},
		{"PATCH", "/v1/projects/p1/tasks/t1", `{"title":""}`, nil, "title"},
		{"PATCH", "/v1/projects/p1/tasks/t1", `{"title":"x"}`, []string{`If-Match: W/"1"`}, "If-Match"},
		{"PATCH", "/v1/projects/p1/tasks/t1", `{"title":"x"}`, []string{`If-Match: "abc"`}, "If-Match"},
		{"GET", "/v1/projects/p1/tasks?limit=0", "", nil, "limit"},
		{"GET", "/v1/projects/p1/tasks?limit=201", "", nil, "limit"},
		{"GET", "/v1/projects/p1/tasks?limit=x", "", nil, "limit"},
		{"GET", "/v1/projects/p1/tasks?status=todo", "", nil, "status"},
		{"GET", "/v1/projects/p1/tasks?assignee=a.b", "", nil, "assignee"},
		{"GET", "/v1/projects/p1/tasks?cursor=bogus", "", nil, "cursor"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"nope"}`, nil, "job"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"exec"}`, nil, "command"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"exec","command":"rm-rf"}`, nil, "command"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"exec","command":"/bin/sh -c reboot"}`, nil, "command"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"demo","command":"echo-ok"}`, nil, "command"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":"demo","args":["x"]}`, nil, "args"},
		{"POST", "/v1/projects/p1/tasks/t1/run", `{"job":1}`, nil, "job"},
	} {
		r := e.do(tc.method, tc.path, writer(t), tc.body, tc.headers...)
		if r.status != http.StatusBadRequest {
			t.Errorf("%s %s %s: %d %s, want 400", tc.method, tc.path, tc.body, r.status, r.body)
			continue
		}
		if got := r.apiError(t); got.Code != CodeBadRequest || got.Field != tc.field || got.Message == "" {
			t.Errorf("%s %s %s: error %+v, want field %q", tc.method, tc.path, tc.body, got, tc.field)
		}
	}
	// The task is unchanged by all of it.
	if got := e.do("GET", "/v1/projects/p1/tasks/t1", writer(t), "").task(t); got.Title != "x" || got.Status != pb.TaskStatus_TASK_STATUS_TODO {
		t.Errorf("task after refused requests = %v", got)
	}
}

func TestBodyLimitsAndMediaType(t *testing.T) {
	e := newEnv(t, nil)
	big := `{"title":"x","description":"` + strings.Repeat("a", 64<<10) + `"}`
	if r := e.do("POST", "/v1/projects/p1/tasks", writer(t), big); r.status != http.StatusRequestEntityTooLarge || r.apiError(t).Code != CodeTooLarge {
		t.Errorf("64 KiB+ body: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/projects/p1/tasks", writer(t), `{"title":"x"}`, "Content-Type: text/plain"); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/projects/p1/tasks", writer(t), `{"title":"x"}`, "Content-Type: application/json; charset=utf-8"); r.status != http.StatusCreated {
		t.Errorf("json with charset: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/projects/p1/tasks", writer(t), ""); r.status != http.StatusBadRequest {
		t.Errorf("no body: %d %s", r.status, r.body)
	}
	if r := e.do("PUT", "/v1/projects/p1/tasks", writer(t), ""); r.status != http.StatusMethodNotAllowed || r.apiError(t).Code != CodeMethodNotAllowed || r.header.Get("Allow") == "" {
		t.Errorf("PUT: %d %s %v", r.status, r.body, r.header)
	}
	if r := e.do("GET", "/v2/nothing", writer(t), ""); r.status != http.StatusNotFound || r.apiError(t).Code != CodeNotFound {
		t.Errorf("unknown path: %d %s", r.status, r.body)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	e.create(`{"id":"t1","title":"x"}`)
	revocations := make(chan string, 4)
	sub, err := e.nc.Subscribe(revoke.Subject, func(m *natsMsg) { revocations <- string(m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = e.nc.Flush()

	expired := func() string {
		return signWith(t, map[string]any{"sub": "u1", "exp": time.Now().Add(-time.Minute).Unix(), "permissions": []string{"tasks:read"}, "projects": []string{"p1"}})
	}()
	reader := token(t, "u2", []string{"tasks:read"}, []string{"p1"})
	outsider := token(t, "u3", []string{"tasks:read", "tasks:write"}, []string{"p2"})
	everyProject := token(t, "u4", []string{"tasks:read"}, []string{"*"})
	admin := token(t, "root", []string{"admin"}, nil)
	noPerms := token(t, "u5", nil, []string{"p1"})
	for _, tc := range []struct {
		name, method, path, tok, body string
		want                          int
	}{
		{"no token", "GET", "/v1/projects/p1/tasks/t1", "", "", 401},
		{"garbage token", "GET", "/v1/projects/p1/tasks/t1", "abc", "", 401},
		{"expired", "GET", "/v1/projects/p1/tasks/t1", expired, "", 401},
		{"no permission", "GET", "/v1/projects/p1/tasks", noPerms, "", 403},
		{"read ok", "GET", "/v1/projects/p1/tasks/t1", reader, "", 200},
		{"read cannot write", "PATCH", "/v1/projects/p1/tasks/t1", reader, `{"title":"y"}`, 403},
		{"read cannot run", "POST", "/v1/projects/p1/tasks/t1/run", reader, "", 403},
		{"read cannot delete", "DELETE", "/v1/projects/p1/tasks/t1", reader, "", 403},
		{"not a member", "GET", "/v1/projects/p1/tasks/t1", outsider, "", 403},
		{"not a member writes", "POST", "/v1/projects/p1/tasks", outsider, `{"title":"x"}`, 403},
		{"projects *", "GET", "/v1/projects/p1/tasks", everyProject, "", 200},
		{"admin is everything", "PATCH", "/v1/projects/p1/tasks/t1", admin, `{"title":"by admin"}`, 200},
		{"revoke needs admin", "DELETE", "/v1/projects/p1/members/u2", writer(t), "", 403},
		{"revoke without token", "DELETE", "/v1/projects/p1/members/u2", "", "", 401},
		{"revoke bad user", "DELETE", "/v1/projects/p1/members/a.b", admin, "", 400},
		{"revoke", "DELETE", "/v1/projects/p1/members/u2", admin, "", 204},
	} {
		r := e.do(tc.method, tc.path, tc.tok, tc.body)
		if r.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.want)
			continue
		}
		if r.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
		if r.status >= 400 {
			if code := r.apiError(t).Code; code == "" || (r.status == 401 && code != CodeUnauthorized) || (r.status == 403 && code != CodeForbidden) {
				t.Errorf("%s: code %q", tc.name, code)
			}
		}
	}
	select {
	case got := <-revocations:
		if got != `{"userId":"u2","rooms":["project:p1"]}` {
			t.Errorf("ctl.revoke = %s", got)
		}
	case <-time.After(wait):
		t.Fatal("no ctl.revoke message")
	}
	select {
	case got := <-revocations:
		t.Errorf("a refused revocation was published: %s", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestListPaginates(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5 {
		assignee := ""
		if i%2 == 0 {
			assignee = `,"assignee":"u9"`
		}
		e.create(fmt.Sprintf(`{"id":"t%d","title":"task %d"%s}`, i, i, assignee))
	}
	e.do("PATCH", "/v1/projects/p1/tasks/t4", writer(t), `{"status":"TASK_STATUS_SUCCEEDED"}`)
	list := func(query string) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for pages := 0; ; pages++ {
			q := query
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := e.do("GET", "/v1/projects/p1/tasks?"+q, writer(t), "")
			if r.status != http.StatusOK {
				t.Fatalf("list %s: %d %s", q, r.status, r.body)
			}
			var page struct {
				Tasks      []map[string]any
				NextCursor string
			}
			if err := jsonUnmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			for _, tk := range page.Tasks {
				ids = append(ids, tk["id"].(string))
			}
			if page.NextCursor == "" || pages > 10 {
				return ids
			}
			cursor = page.NextCursor
		}
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"t0", "t1", "t2", "t3", "t4"}},
		{"limit=2", []string{"t0", "t1", "t2", "t3", "t4"}},
		{"assignee=u9&limit=1", []string{"t0", "t2", "t4"}},
		{"status=TASK_STATUS_SUCCEEDED", []string{"t4"}},
		{"status=TASK_STATUS_TODO&assignee=u9", []string{"t0", "t2"}},
	} {
		if got := list(tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("list %q = %v, want %v", tc.query, got, tc.want)
		}
	}
	r := e.do("GET", "/v1/projects/p1/tasks?limit=2", writer(t), "")
	if !strings.Contains(string(r.body), `"nextCursor"`) {
		t.Errorf("first page of 2 without nextCursor: %s", r.body)
	}
	r = e.do("GET", "/v1/projects/p1/tasks?assignee=nobody", writer(t), "")
	if string(r.body) != `{"tasks":[]}` {
		t.Errorf("empty list = %s, want {\"tasks\":[]}", r.body)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowedOrigins = []string{"http://localhost:8082"} })
	r := e.do("OPTIONS", "/v1/projects/p1/tasks", "", "", "Origin: http://localhost:8082", "Access-Control-Request-Method: PATCH",
		"Access-Control-Request-Headers: authorization, if-match")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:8082" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "PATCH") || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "If-Match") {
		t.Errorf("preflight: %d %v", r.status, r.header)
	}
	if r := e.do("OPTIONS", "/v1/projects/p1/tasks", "", "", "Origin: http://evil.example", "Access-Control-Request-Method: GET"); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.status, r.header)
	}
	r = e.do("GET", "/v1/projects/p1/tasks", writer(t), "", "Origin: http://localhost:8082")
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:8082" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Errorf("GET from the dashboard: %d %v", r.status, r.header)
	}
	if r := e.do("GET", "/v1/projects/p1/tasks", writer(t), "", "Origin: http://evil.example"); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from another origin carries CORS headers: %v", r.header)
	}
}

// TestRemoveMemberNeedsTheStoredRevocation: without the REVOCATIONS
// stream's ack the revocation is not reported done: 503 with Retry-After,
// and once the stream is back the same request is stored.
func TestRemoveMemberNeedsTheStoredRevocation(t *testing.T) {
	e := newEnv(t, nil)
	admin := token(t, "root", []string{"admin"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.js.DeleteStream(ctx, revoke.StreamName); err != nil {
		t.Fatal(err)
	}
	r := e.do("DELETE", "/v1/projects/p1/members/u2", admin, "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || r.apiError(t).Code != CodeUnavailable ||
		!strings.Contains(r.apiError(t).Message, "revocation was not stored") {
		t.Fatalf("no stream: %d %s %v, want 503 with Retry-After", r.status, r.body, r.header)
	}
	st, err := revoke.EnsureStream(ctx, e.js, revoke.StreamConfig{MemoryStorage: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do("DELETE", "/v1/projects/p1/members/u2", admin, ""); r.status != http.StatusNoContent {
		t.Fatalf("with the stream: %d %s", r.status, r.body)
	}
	msg, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != `{"userId":"u2","rooms":["project:p1"]}` {
		t.Fatalf("stored %s", msg.Data)
	}
}
