package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/services/internal/proctest"
)

// runMainEnv makes the test binary run main() instead of the tests, so the
// tests can check exit codes and signal handling of the real command.
const runMainEnv = "DASHBOARD_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// command returns the test binary set up to run the dashboard's main with
// args and the variables in env.
func command(t *testing.T, env []string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	// Only what the command needs: no DASHBOARD_* from the caller's
	// environment leaks in.
	cmd.Env = append([]string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH")}, env...)
	return cmd, stderr
}

// client keeps no idle connections, so nothing outlives a test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

func status(url string) int {
	res, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// eventually polls ok until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadConfigExits2WithOneLine(t *testing.T) {
	for _, args := range [][]string{{"--dev"}, {"--no-such-flag"}, {"--edge-url", "http://x/v1/ws"}, {"--dev-token-ttl", "1s"}} {
		cmd, stderr := command(t, nil, args...)
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("dashboard %q: %v, want exit status 2", args, err)
		}
		out := stderr.String()
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "dashboard: config: ") {
			t.Errorf("dashboard %q: stderr %q, want one line \"dashboard: config: …\"", args, out)
		}
	}
}

// TestSIGTERMStopsCleanly runs the real command in development mode, waits
// until it is ready, checks it serves the app, and stops it with SIGTERM.
func TestSIGTERMStopsCleanly(t *testing.T) {
	addr, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	cmd, stderr := command(t, []string{"DASHBOARD_DEV_JWT_SECRET=" + strings.Repeat("s", 32)},
		"--dev", "--addr", addr, "--admin-addr", admin)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	eventually(t, 15*time.Second, func() bool { return status("http://"+admin+"/readyz") == http.StatusOK }, "dashboard ready")
	for _, p := range []string{"/", "/login", "/config.json", "/dev/users"} {
		if code := status("http://" + addr + p); code != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, code)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
	logs := stderr.String()
	for _, want := range []string{`"message":"stopped"`, "development login enabled: anyone can mint tokens", `"level":"warn"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, strings.Repeat("s", 32)) {
		t.Errorf("the log holds the development secret:\n%s", logs)
	}
}

// TestRun runs the dashboard in this process until its context ends.
func TestRun(t *testing.T) {
	cfg, err := parseConfig([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-format", "console"}, env{}.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs) }()
	eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "dashboard serving") }, "dashboard serving")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("logs lack \"stopped\":\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "development login") {
		t.Errorf("development warning without --dev:\n%s", logs.String())
	}
}

// TestRunFailsOnBusyPort: a listener that cannot bind is run's error.
func TestRunFailsOnBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := parseConfig([]string{"--addr", ln.Addr().String(), "--admin-addr", "127.0.0.1:0"}, env{}.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "public listener") {
		t.Errorf("run on a busy port = %v, want a public listener error", err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
