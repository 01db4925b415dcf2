package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

// TestMain runs main instead of the tests when the process test below
// re-executes this binary: the real entry point, flags, env and signals.
func TestMain(m *testing.M) {
	if os.Getenv("TASKAPI_RUN_MAIN") == "1" {
		os.Args = append([]string{"taskapi"}, strings.Fields(os.Getenv("TASKAPI_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProcessStopsOnSIGTERM: the binary serves, answers /readyz, and exits
// 0 with a final log line when sent SIGTERM.
func TestProcessStopsOnSIGTERM(t *testing.T) {
	srv := natstest.Start(t)
	srv.Connect(t) // creates EVENTS (in memory) for the service to find
	addr, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"TASKAPI_RUN_MAIN=1",
		"TASKAPI_ARGS=--addr "+addr+" --admin-addr "+admin,
		"NATS_URL="+srv.URL(),
		"TASKAPI_JWT_SECRET="+testSecret,
	)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	natstest.CheckFor(t, 20*time.Second, func() error {
		res, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("/readyz %d", res.StatusCode)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var logs []string
	for l := range lines {
		logs = append(logs, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, strings.Join(logs, "\n"))
	}
	all := strings.Join(logs, "\n")
	for _, want := range []string{`"message":"task API serving"`, `"message":"task API stopped"`, `"service":"taskapi"`} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %s:\n%s", want, all)
		}
	}
}
