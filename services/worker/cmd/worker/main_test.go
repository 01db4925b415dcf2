package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

// TestMain runs main instead of the tests when the process test below
// re-executes this binary.
func TestMain(m *testing.M) {
	if os.Getenv("WORKER_RUN_MAIN") == "1" {
		os.Args = append([]string{"worker"}, strings.Fields(os.Getenv("WORKER_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProcessFinishesItsJobOnSIGTERM: the binary runs a job; SIGTERM
// during it lets the job finish (within the grace), then exits 0.
func TestProcessFinishesItsJobOnSIGTERM(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := proctest.FreeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"WORKER_RUN_MAIN=1",
		"WORKER_ARGS=--admin-addr "+admin+" --name proc-test --demo-duration 1500ms --shutdown-grace 10s",
		"NATS_URL="+srv.URL(),
	)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 200)
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
	st, err := taskstore.Open(ctx, js, taskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, "p1", &pb.Task{Id: "t1", Title: "x"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	job := &jobs.Job{ExecutionID: events.NewID(), ProjectID: "p1", TaskID: "t1", Job: jobs.TypeDemo, EnqueuedAt: time.Now()}
	msg, _ := jobs.Message(job)
	if _, err := st.Update(ctx, "p1", "t1", taskstore.Write{Also: []*nats.Msg{msg}}, func(t *pb.Task) ([]string, error) {
		t.Status, t.ExecutionId = pb.TaskStatus_TASK_STATUS_QUEUED, job.ExecutionID
		return []string{"status", "executionId"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, func() error {
		tk, err := st.Get(ctx, "p1", "t1")
		if err != nil || tk.Status != pb.TaskStatus_TASK_STATUS_RUNNING {
			return fmt.Errorf("task %v %v", tk, err)
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
		t.Fatalf("exit: %v\n%s", err, strings.Join(logs, "\n"))
	}
	tk, err := st.Get(ctx, "p1", "t1")
	if err != nil || tk.Status != pb.TaskStatus_TASK_STATUS_SUCCEEDED {
		t.Errorf("task after SIGTERM = %v, %v; want the running job finished", tk, err)
	}
	all := strings.Join(logs, "\n")
	for _, want := range []string{`"message":"worker started"`, `"message":"job succeeded"`, `"message":"worker stopped"`, `"worker":"proc-test"`} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %s:\n%s", want, all)
		}
	}
}
