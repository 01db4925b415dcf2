package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/client"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSystemEndToEnd runs the real binaries under the supervisor — edge
// (embedded NATS), task API, worker — on loopback ports, and checks the
// paths between them: REST changes reach a WebSocket client in the
// project room with the exact changes, a stale If-Match gets 409, and a
// demo job's progress (0 → 1, never down), logs and final status arrive.
func TestSystemEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every service")
	}
	bin := t.TempDir()
	root, _ := filepath.Abs("../..")
	for _, svc := range []string{"edge", "taskapi", "worker"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, svc), "./cmd/"+svc)
		cmd.Dir = filepath.Join(root, "services", svc)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", svc, err, out)
		}
	}
	edgeAddr, edgeAdmin, natsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	apiAddr, apiAdmin, workerAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	natsURL := "nats://" + natsAddr
	var out syncBuffer
	sup := &Supervisor{Out: &out, StopTimeout: 20 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	procs := []Proc{
		{Name: "edge", Path: filepath.Join(bin, "edge"), Ready: "http://" + edgeAdmin + "/readyz",
			Args: []string{"--addr", edgeAddr, "--admin-addr", edgeAdmin, "--embedded-nats-addr", natsAddr, "--data-dir", t.TempDir()},
			Env:  []string{"EDGE_JWT_SECRET=" + DevSecret}},
		{Name: "taskapi", Path: filepath.Join(bin, "taskapi"), Ready: "http://" + apiAdmin + "/readyz",
			Args: []string{"--addr", apiAddr, "--admin-addr", apiAdmin, "--nats-url", natsURL},
			Env:  []string{"TASKAPI_JWT_SECRET=" + DevSecret}},
		{Name: "worker", Path: filepath.Join(bin, "worker"), Ready: "http://" + workerAdmin + "/readyz",
			Args: []string{"--admin-addr", workerAdmin, "--nats-url", natsURL, "--demo-duration", "1500ms", "--name", "w-e2e"}},
	}
	for _, p := range procs {
		if err := sup.Start(ctx, p); err != nil {
			_ = sup.Stop()
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	defer func() {
		if err := sup.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("process output:\n%s", out.String())
		}
	}()

	tok, err := token(filepath.Join(bin, "edge"), "u1", "tasks:read,tasks:write,logs:read", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, "ws://"+edgeAddr+"/v1/ws", client.Options{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "project:e2e"); err != nil {
		t.Fatal(err)
	}
	var seen []string // raw events of other types skipped by next
	next := func(typ string) *client.Message {
		t.Helper()
		for {
			select {
			case m := <-c.Messages():
				if m.Op == "event" && m.Event.Type == typ {
					return m
				}
				seen = append(seen, string(m.Raw))
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s event", typ)
			}
		}
	}
	api := "http://" + apiAddr + "/v1/projects/e2e/tasks"
	do := func(method, url, body, ifMatch string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, url, bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp, b.Bytes()
	}

	resp, body := do(http.MethodPost, api, `{"title":"ship it","assignee":"u1"}`, "")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var task struct{ ID string }
	_ = json.Unmarshal(body, &task)
	etag := resp.Header.Get("ETag")
	if m := next("task_created"); !strings.Contains(string(m.Event.Data), `"title":"ship it"`) {
		t.Fatalf("task_created: %s", m.Raw)
	}

	resp, body = do(http.MethodPatch, api+"/"+task.ID, `{"title":"ship it today"}`, etag)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("patch: %d %s", resp.StatusCode, body)
	}
	m := next("task_updated")
	var upd struct {
		TaskID        string            `json:"taskId"`
		Changes       map[string]any    `json:"changes"`
		ChangedFields []string          `json:"changedFields"`
		Extra         map[string]string `json:"-"`
	}
	_ = json.Unmarshal(m.Event.Data, &upd)
	if upd.TaskID != task.ID || upd.Changes["title"] != "ship it today" || fmt.Sprint(upd.ChangedFields) != "[title]" || len(upd.Changes) != 1 {
		t.Fatalf("task_updated with changes %v %v: %s", upd.Changes, upd.ChangedFields, m.Raw)
	}
	if resp, _ := do(http.MethodPatch, api+"/"+task.ID, `{"title":"stale"}`, etag); resp.StatusCode != http.StatusConflict {
		t.Fatalf("stale If-Match: %d, want 409", resp.StatusCode)
	}

	// A demo job: progress from 0 to 1, never down, logs, status succeeded.
	if resp, body := do(http.MethodPost, api+"/"+task.ID+"/run", `{"job":"demo"}`, ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run: %d %s", resp.StatusCode, body)
	}
	last, logs := -1.0, 0
	for last < 1 {
		m := next("task_progress")
		var p struct {
			Progress float64           `json:"progress"`
			Logs     []json.RawMessage `json:"logs"`
		}
		_ = json.Unmarshal(m.Event.Data, &p)
		if p.Progress < last {
			t.Fatalf("progress went down: %v after %v", p.Progress, last)
		}
		last, logs = p.Progress, logs+len(p.Logs)
	}
	if logs == 0 {
		t.Fatal("no log lines")
	}
	for !strings.Contains(strings.Join(seen, "\n"), "TASK_STATUS_SUCCEEDED") {
		seen = append(seen, string(next("task_updated").Raw))
	}

	resp, _ = do(http.MethodDelete, api+"/"+task.ID, "", "")
	if resp.StatusCode/100 != 2 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if m := next("task_deleted"); !strings.Contains(string(m.Event.Data), task.ID) {
		t.Fatalf("task_deleted: %s", m.Raw)
	}
}
