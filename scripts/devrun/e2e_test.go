package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/client"
)

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports were free a
// moment ago, picked at random outside the kernel's ephemeral range
// (ip_local_port_range): a port from that range, as "127.0.0.1:0" gives,
// can be taken as the source port of an outgoing connection between the
// check and the process's bind, and the process then fails to start. The
// same rule as services/internal/proctest.FreeAddrs, which Go's internal
// rule keeps this module from importing. When the host leaves no room
// outside its ephemeral range, the kernel picks.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	lo, hi := fixedPorts()
	var addrs []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 200*n {
			t.Fatalf("no %d free ports after %d tries (range %d-%d; 0-0: the kernel's)", n, tries, lo, hi)
		}
		addr := "127.0.0.1:0"
		if lo != 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo+1)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken: try another
		}
		ls = append(ls, l) // held until all n are chosen, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// fixedPorts returns the ports between 20000 and the start of the
// ephemeral range, or those above its end (at least 1,000 of them); 0, 0
// when neither is that large or the range cannot be read.
func fixedPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var elo, ehi int
	if _, err := fmt.Sscan(string(b), &elo, &ehi); err != nil {
		return 0, 0
	}
	const floor, minPorts = 20000, 1000
	switch {
	case elo-1-floor >= minPorts:
		return floor, elo - 1
	case 65535-ehi >= minPorts:
		return ehi + 1, 65535
	}
	return 0, 0
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
	a := freeAddrs(t, 6)
	edgeAddr, edgeAdmin, natsAddr, apiAddr, apiAdmin, workerAdmin := a[0], a[1], a[2], a[3], a[4], a[5]
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

// TestFreeAddrsOutsideEphemeralRange: the addresses are loopback, distinct,
// free to listen on, and (where the host leaves room) outside the kernel's
// ephemeral range.
func TestFreeAddrsOutsideEphemeralRange(t *testing.T) {
	lo, hi := fixedPorts()
	seen := map[string]bool{}
	for _, a := range freeAddrs(t, 40) {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || (lo != 0 && (port < lo || port > hi)) {
			t.Fatalf("address %s, want 127.0.0.1 and a port in %d-%d", a, lo, hi)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s, handed out as free: %v", a, err)
		}
		l.Close()
	}
}
