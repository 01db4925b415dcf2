package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/client"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestProcessSIGTERM runs the real binary with its embedded NATS, connects
// a client, sends SIGTERM and checks that the client gets 1012 (service
// restart) and the process exits 0.
func TestProcessSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "edge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	natsAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	const secret = "process-test-secret-0123456789abcdef"
	cmd := exec.Command(bin, "--addr", addr, "--admin-addr", admin, "--embedded-nats-addr", natsAddr,
		"--data-dir", filepath.Join(dir, "data"), "--node-name", "proc-1")
	cmd.Env = append(os.Environ(), "EDGE_JWT_SECRET="+secret)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("edge logs:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	var tokOut bytes.Buffer
	if err := runToken([]string{"--sub", "u1", "--projects", "p1", "--permissions", "tasks:read"}, func(k string) string {
		if k == "EDGE_JWT_SECRET" {
			return secret
		}
		return ""
	}, &tokOut); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/v1/ws", client.Options{Token: strings.TrimSpace(tokOut.String())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Welcome().Node != "proc-1" {
		t.Fatalf("welcome %+v", c.Welcome())
	}
	if err := c.Subscribe(ctx, "project:p1"); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("client not closed after SIGTERM")
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != 1012 {
		t.Fatalf("client closed with %v; want 1012", c.Err())
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v; want 0", err)
		}
		exited <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	if !strings.Contains(logs.String(), `"message":"connection closed"`) || !strings.Contains(logs.String(), `"reason":"service_restart"`) {
		t.Fatalf("no close log line with reason service_restart:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), strings.TrimSpace(tokOut.String())) {
		t.Fatal("a token was logged")
	}
}
