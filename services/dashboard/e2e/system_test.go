package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/internal/browsertest"
	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

// devSecret is the development JWT secret of every service in these tests.
const devSecret = "dev-secret-do-not-use-in-production-0123456789"

var (
	// bins are the service binaries, built once by TestMain.
	bins map[string]string
	// shots is where screenshots go.
	shots = filepath.Join(os.TempDir(), "eventedge-dashboard-screenshots")
	// updateDocs copies the board's screenshot to docs/dashboard.png.
	updateDocs = flag.Bool("update-docs-screenshot", false, "write the board's screenshot to docs/dashboard.png")
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipped: -short (builds and runs every service)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "eventedge-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, _ := filepath.Abs("../../..")
	bins, err = proctest.Build(dir, root, "edge", "taskapi", "worker", "sysmon", "dashboard")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// system is the whole of eventedge on loopback: a NATS server (in this
// process, so that the edge can stop without it), edge nodes, the task API,
// a worker, sysmon and the dashboard, all real binaries.
type system struct {
	t     *testing.T
	nats  *natstest.Server
	edges []*edgeNode
	api   string // the task API's base URL
	dash  string // the dashboard's base URL

	apiProc, worker, sysmon, dashboard *proctest.Process
}

type edgeNode struct {
	name string
	addr string // public host:port
	proc *proctest.Process
}

type systemOptions struct {
	edges    int      // default 1
	edgeArgs []string // more arguments of every edge node
}

func startSystem(t *testing.T, o systemOptions) *system {
	t.Helper()
	if o.edges == 0 {
		o.edges = 1
	}
	browsertest.Skip(t)
	s := &system{t: t, nats: natstest.Start(t)}
	natsURL := s.nats.URL()
	dashAddr := proctest.FreeAddr(t)
	s.dash = "http://" + dashAddr

	for i := range o.edges {
		name := fmt.Sprintf("edge-%c", 'a'+i)
		addr, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
		args := append([]string{"--addr", addr, "--admin-addr", admin, "--nats-url", natsURL, "--node-name", name,
			"--allowed-origins", "127.0.0.1:*", "--drain-duration", "0s", "--stats-interval", "250ms"}, o.edgeArgs...)
		s.edges = append(s.edges, &edgeNode{name: name, addr: addr, proc: proctest.Start(t, proctest.Spec{
			Name: name, Path: bins["edge"], Ready: "http://" + admin + "/readyz",
			Args: args,
			Env:  []string{"EDGE_JWT_SECRET=" + devSecret},
		})})
	}

	apiAddr, apiAdmin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	s.api = "http://" + apiAddr
	s.apiProc = proctest.Start(t, proctest.Spec{
		Name: "taskapi", Path: bins["taskapi"], Ready: "http://" + apiAdmin + "/readyz",
		Args: []string{"--addr", apiAddr, "--admin-addr", apiAdmin, "--nats-url", natsURL, "--allowed-origins", s.dash},
		Env:  []string{"TASKAPI_JWT_SECRET=" + devSecret},
	})
	workerAdmin := proctest.FreeAddr(t)
	s.worker = proctest.Start(t, proctest.Spec{
		Name: "worker", Path: bins["worker"], Ready: "http://" + workerAdmin + "/readyz",
		Args: []string{"--admin-addr", workerAdmin, "--nats-url", natsURL, "--name", "w-e2e", "--demo-duration", "3s", "--stats-interval", "250ms"},
	})
	sysmonAdmin := proctest.FreeAddr(t)
	s.sysmon = proctest.Start(t, proctest.Spec{
		Name: "sysmon", Path: bins["sysmon"], Ready: "http://" + sysmonAdmin + "/readyz",
		Args: []string{"--admin-addr", sysmonAdmin, "--nats-url", natsURL,
			"--interval", "1s", "--check-interval", "200ms", "--probe-interval", "500ms", "--node-silence", "1500ms"},
	})
	dashAdmin := proctest.FreeAddr(t)
	s.dashboard = proctest.Start(t, proctest.Spec{
		Name: "dashboard", Path: bins["dashboard"], Ready: "http://" + dashAdmin + "/readyz",
		Args: []string{"--addr", dashAddr, "--admin-addr", dashAdmin, "--dev",
			"--edge-url", "ws://" + s.edges[0].addr + "/v1/ws", "--api-url", s.api},
		Env: []string{"DASHBOARD_DEV_JWT_SECRET=" + devSecret},
	})
	return s
}

// token mints a token for a demo user ("viewer", "member", "admin") through
// the dashboard's development login.
func (s *system) token(user, project string) string {
	s.t.Helper()
	body, _ := json.Marshal(map[string]string{"user": user, "project": project})
	resp, err := http.Post(s.dash+"/dev/token", "application/json", bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		s.t.Fatalf("dev token for %s: %d %v", user, resp.StatusCode, err)
	}
	return out.Token
}

// call sends a request to the task API and decodes a JSON answer into out
// (when not nil); it fails the test unless the status is want.
func (s *system) call(tok, method, path string, body any, want int, out any) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.api+path, r)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// createTask creates a task through the API and returns its id.
func (s *system) createTask(tok, project, title string) string {
	s.t.Helper()
	var task struct{ ID string }
	s.call(tok, http.MethodPost, "/v1/projects/"+project+"/tasks", map[string]string{"title": title}, http.StatusCreated, &task)
	return task.ID
}

// login opens the development login page in tab, picks user and project,
// and waits until the board has loaded.
func (s *system) login(tab *browsertest.Tab, user, project string) {
	s.t.Helper()
	tab.Navigate(s.dash + "/login")
	tab.WaitFor(`document.querySelector('button[data-user="`+user+`"]') !== null`, 10*time.Second, "the login page")
	browsertest.Eval[any](tab, fmt.Sprintf(`(() => { const i = document.querySelector("#login-project"); i.value = %q; i.dispatchEvent(new Event("input", {bubbles: true})); document.querySelector('button[data-user="%s"]').click(); return null })()`, project, user))
	s.waitBoard(tab, project)
}

// waitBoard waits for the board of project to be loaded and connected.
func (s *system) waitBoard(tab *browsertest.Tab, project string) {
	s.t.Helper()
	tab.WaitFor(fmt.Sprintf(`document.querySelector("#board")?.dataset.loaded === "true" && document.querySelector("#board").dataset.project === %q`, project), 15*time.Second, "the board to load")
	tab.WaitFor(`document.querySelector("#conn")?.dataset.state === "connected"`, 15*time.Second, "the connection")
}

// probe is installed in every page before its scripts run. It records what
// the tests check beyond the DOM's final state: CSP violations and
// uncaught errors (there must be none), when each task's card first
// appeared (Date.now(), comparable with the test's clock), and every
// percentage each card's progress bar showed.
const probe = `
window.__probe = { csp: [], errors: [], cards: {}, progress: {} };
document.addEventListener("securitypolicyviolation", (e) => __probe.csp.push(e.violatedDirective + " " + e.blockedURI));
addEventListener("error", (e) => __probe.errors.push(String(e.message)));
addEventListener("unhandledrejection", (e) => __probe.errors.push(String(e.reason)));
(() => {
  const bar = (el) => {
    const card = el.closest?.(".task[data-task-id]");
    if (!card) return;
    const seen = (__probe.progress[card.dataset.taskId] ??= []);
    const v = Number(el.getAttribute("aria-valuenow"));
    if (seen.at(-1) !== v) seen.push(v);
  };
  const added = (node) => {
    if (node.nodeType !== 1) return;
    for (const c of [node, ...node.querySelectorAll(".task[data-task-id]")]) {
      if (c.matches(".task[data-task-id]")) __probe.cards[c.dataset.taskId] ??= Date.now();
    }
    for (const b of [node, ...node.querySelectorAll('[role="progressbar"]')]) {
      if (b.matches('[role="progressbar"]')) bar(b);
    }
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "attributes") bar(r.target);
      else r.addedNodes.forEach(added);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-valuenow", "data-task-id"] });
})();
`

// openTab opens a tab (the browser's first when name is empty) with the
// probe installed.
func openTab(b *browsertest.Browser, name string) *browsertest.Tab {
	var t *browsertest.Tab
	if name == "" {
		t = b.Tab()
	} else {
		t = b.NewTab(name)
	}
	t.OnNewDocument(probe)
	return t
}

// assertClean checks what the probe and the page say about a tab: no CSP
// violation, no uncaught error, no event of the activity list delivered
// twice.
func assertClean(t *testing.T, who string, tab *browsertest.Tab) {
	t.Helper()
	if v := browsertest.Eval[[]string](tab, "__probe.csp"); len(v) > 0 {
		t.Errorf("%s: CSP violations: %q", who, v)
	}
	if v := browsertest.Eval[[]string](tab, "__probe.errors"); len(v) > 0 {
		t.Errorf("%s: uncaught errors: %q", who, v)
	}
	if d := browsertest.Eval[string](tab, `document.querySelector("#activity")?.dataset.duplicates ?? "missing"`); d != "0" {
		t.Errorf("%s: #activity data-duplicates = %s, want 0 (an event delivered twice)", who, d)
	}
}
