// Command devrun brings the whole eventedge system up on one machine for
// development — the edge node with its embedded NATS, the task API, a job
// worker, the system monitor and the dashboard — seeds a demo project with
// tasks, starts a demo job so events flow at once, and prints the URLs and
// a development token. Ctrl-C stops every process cleanly, newest first.
//
// `make run` builds the binaries and runs it. It needs nothing installed
// but the binaries in ./bin.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DevSecret is the development JWT secret every service gets from devrun.
// Never use it in production.
const DevSecret = "dev-secret-do-not-use-in-production-0123456789"

func main() {
	bin := flag.String("bin", "./bin", "directory of the service binaries")
	data := flag.String("data-dir", "./.data", "directory of the embedded NATS server's store")
	seed := flag.Bool("seed", true, "create a demo project with tasks and start a demo job")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *data, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, data string, seed bool) error {
	sup := &Supervisor{Out: os.Stdout}
	exe := func(name string) string { return filepath.Join(bin, name) }
	procs := []Proc{
		{Name: "edge", Path: exe("edge"), Ready: "http://127.0.0.1:9090/readyz",
			Args: []string{"--log-format", "console", "--data-dir", data, "--node-name", "edge-dev", "--allowed-origins", "localhost:*,127.0.0.1:*"},
			Env:  []string{"EDGE_JWT_SECRET=" + DevSecret}},
		{Name: "taskapi", Path: exe("taskapi"), Ready: "http://127.0.0.1:9091/readyz",
			Env: []string{"TASKAPI_JWT_SECRET=" + DevSecret, "NATS_URL=nats://127.0.0.1:4222",
				// The dashboard's pages call the task API from the browser.
				"TASKAPI_ALLOWED_ORIGINS=http://localhost:8082,http://127.0.0.1:8082"}},
		{Name: "worker", Path: exe("worker"), Ready: "http://127.0.0.1:9092/readyz",
			Env: []string{"NATS_URL=nats://127.0.0.1:4222", "WORKER_NAME=worker-dev"}},
		{Name: "sysmon", Path: exe("sysmon"), Ready: "http://127.0.0.1:9093/readyz",
			Env: []string{"NATS_URL=nats://127.0.0.1:4222"}},
		{Name: "dashboard", Path: exe("dashboard"), Ready: "http://127.0.0.1:9094/readyz",
			Args: []string{"--dev"},
			Env: []string{"DASHBOARD_EDGE_URL=ws://localhost:8080/v1/ws", "DASHBOARD_API_URL=http://localhost:8081",
				"DASHBOARD_DEV_JWT_SECRET=" + DevSecret}},
	}
	var started []string
	for _, p := range procs {
		if _, err := os.Stat(p.Path); err != nil {
			if p.Name == "edge" {
				return fmt.Errorf("%s not built: run make build", p.Path)
			}
			sup.Printf("devrun  | %s not built: skipped\n", p.Name)
			continue
		}
		if err := sup.Start(ctx, p); err != nil {
			sup.Printf("devrun  | %v\n", err)
			return stopAll(sup, err)
		}
		started = append(started, p.Name)
	}

	admin, err := token(exe("edge"), "admin", "tasks:read,tasks:write,logs:read,system:read,admin", "*")
	if err != nil {
		return stopAll(sup, err)
	}
	member, err := token(exe("edge"), "u1", "tasks:read,tasks:write,logs:read,system:read", "demo")
	if err != nil {
		return stopAll(sup, err)
	}
	banner(sup, started, member)
	if seed && contains(started, "taskapi") {
		if err := seedDemo(ctx, admin); err != nil {
			sup.Printf("devrun  | seeding the demo project failed: %v\n", err)
		}
	}

	select {
	case <-ctx.Done():
		sup.Printf("devrun  | stopping…\n")
		return sup.Stop()
	case r := <-sup.Exited():
		err := fmt.Errorf("%s exited unexpectedly: %v", r.proc.Name, r.err)
		sup.Printf("devrun  | %v\n", err)
		return stopAll(sup, err)
	}
}

func stopAll(sup *Supervisor, cause error) error {
	if err := sup.Stop(); err != nil {
		return fmt.Errorf("%w (and stopping: %v)", cause, err)
	}
	return cause
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// token mints a development token with the edge binary.
func token(edge, sub, perms, projects string) (string, error) {
	cmd := exec.Command(edge, "token", "--sub", sub, "--permissions", perms, "--projects", projects, "--ttl", "12h")
	cmd.Env = append(os.Environ(), "EDGE_JWT_SECRET="+DevSecret)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("mint a token: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func banner(sup *Supervisor, started []string, tok string) {
	var b strings.Builder
	b.WriteString("\n================ eventedge is up ================\n")
	urls := map[string]string{
		"edge":      "WebSocket  ws://localhost:8080/v1/ws   (browser client: http://localhost:8080/v1/client.js; metrics: http://localhost:9090/metrics)",
		"taskapi":   "Task API   http://localhost:8081/v1/projects/demo/tasks   (OpenAPI: http://localhost:8081/openapi.json)",
		"worker":    "Worker     metrics http://localhost:9092/metrics",
		"sysmon":    "Sysmon     metrics http://localhost:9093/metrics",
		"dashboard": "Dashboard  http://localhost:8082/login (development login: pick a demo user)",
	}
	for _, name := range started {
		fmt.Fprintf(&b, "  %s\n", urls[name])
	}
	b.WriteString("  NATS       nats://127.0.0.1:4222 (embedded in the edge, JetStream)\n")
	fmt.Fprintf(&b, "  Token (user u1, project demo, 12h):\n    %s\n", tok)
	b.WriteString("  Watch:  ./bin/edge listen --token <token> --room project:demo --since 0\n")
	b.WriteString("  Ctrl-C stops everything.\n")
	b.WriteString("=================================================\n\n")
	sup.Printf("%s", b.String())
}

// seedDemo creates the demo project's tasks through the task API and runs
// a demo job on the first, so events flow at once.
func seedDemo(ctx context.Context, tok string) error {
	base := "http://127.0.0.1:8081/v1/projects/demo/tasks"
	var first string
	for _, title := range []string{"Build the release", "Write the changelog", "Review open issues"} {
		body, _ := json.Marshal(map[string]any{"title": title, "assignee": "u1"})
		var created struct {
			ID string `json:"id"`
		}
		if err := call(ctx, tok, http.MethodPost, base, body, http.StatusCreated, &created); err != nil {
			return err
		}
		if first == "" {
			first = created.ID
		}
	}
	return call(ctx, tok, http.MethodPost, base+"/"+first+"/run", []byte(`{"job":"demo"}`), http.StatusAccepted, nil)
}

func call(ctx context.Context, tok, method, url string, body []byte, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, strings.TrimSpace(msg.String()))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}
