package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/internal/proctest"
	"github.com/eventedge/eventedge/services/sysmon/internal/sysmontest"
)

// runMainEnv makes the test binary run main() instead of the tests, so the
// tests can check exit codes and signal handling of the real command.
const runMainEnv = "SYSMON_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// command returns the test binary set up to run sysmon's main with args.
func command(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Only what the command needs: no SYSMON_* from the caller's
	// environment leaks in.
	cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH")}
	return cmd, &stderr
}

func TestBadConfigExits2WithOneLine(t *testing.T) {
	for _, args := range [][]string{{"--max-p99", "fast"}, {"--no-such-flag"}, {"--max-stream-fill", "2"}} {
		cmd, stderr := command(t, args...)
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("sysmon %q: %v, want exit status 2", args, err)
		}
		out := stderr.String()
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "sysmon: config: ") {
			t.Errorf("sysmon %q: stderr %q, want one line \"sysmon: config: …\"", args, out)
		}
	}
}

// TestSIGTERMStopsCleanly runs the real command against an embedded NATS
// server, waits until it is ready (it published a status), and stops it
// with SIGTERM.
func TestSIGTERMStopsCleanly(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	_, js := sysmontest.Connect(t, ns.ClientURL())
	sysmontest.EnsureStream(t, js, events.StreamConfig{})
	admin := proctest.FreeAddr(t)
	cmd, stderr := command(t, "--nats-url", ns.ClientURL(), "--admin-addr", admin, "--probe-interval", "100ms")
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
	sysmontest.Eventually(t, 15*time.Second, func() bool {
		code, _ := sysmontest.Get("http://" + admin + "/readyz")
		return code == http.StatusOK
	}, "sysmon ready")
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
	if !strings.Contains(stderr.String(), `"message":"stopped"`) {
		t.Errorf("stderr lacks the stopped log line:\n%s", stderr)
	}
}

// TestRun runs sysmon in this process until its context ends.
func TestRun(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	cfg, err := parseConfig([]string{"--nats-url", ns.ClientURL(), "--admin-addr", "127.0.0.1:0", "--log-format", "console"}, env{}.get, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logs) }()
	sysmontest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "sysmon running") }, "sysmon running")
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
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
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
