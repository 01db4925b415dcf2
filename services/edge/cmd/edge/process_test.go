package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

// edgeProcess is the real binary running with its embedded NATS.
type edgeProcess struct {
	cmd         *exec.Cmd
	addr, admin string
	logs        *bytes.Buffer
	exited      chan error // the exit, once; put back by whoever takes it
}

const processSecret = "process-test-secret-0123456789abcdef"

// startProcess builds and starts the binary and waits until it is ready;
// it is killed when the test ends.
func startProcess(t *testing.T) *edgeProcess {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "edge")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	p := &edgeProcess{
		addr:   proctest.FreeAddr(t),
		admin:  proctest.FreeAddr(t),
		logs:   &bytes.Buffer{},
		exited: make(chan error, 1),
	}
	natsAddr := proctest.FreeAddr(t)
	p.cmd = exec.Command(bin, "--addr", p.addr, "--admin-addr", p.admin, "--embedded-nats-addr", natsAddr,
		"--data-dir", filepath.Join(dir, "data"), "--node-name", "proc-1")
	p.cmd.Env = append(os.Environ(), "EDGE_JWT_SECRET="+processSecret)
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("edge logs:\n%s", p.logs.String())
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.admin + "/readyz")
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
	return p
}

// token mints a token with `edge token` and the process's secret.
func (p *edgeProcess) token(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := runToken(args, func(k string) string {
		if k == "EDGE_JWT_SECRET" {
			return processSecret
		}
		return ""
	}, &out); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// waitExit fails unless the process exits 0 within a generous timeout.
func (p *edgeProcess) waitExit(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit: %v; want 0", err)
		}
		p.exited <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("process did not exit")
	}
}

// TestProcessSIGTERM runs the real binary with its embedded NATS, connects
// a client, sends SIGTERM and checks that the client gets 1012 (service
// restart) and the process exits 0.
func TestProcessSIGTERM(t *testing.T) {
	p := startProcess(t)
	cmd, addr, logs := p.cmd, p.addr, p.logs
	tok := p.token(t, "--sub", "u1", "--projects", "p1", "--permissions", "tasks:read")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/v1/ws", client.Options{Token: tok})
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
	p.waitExit(t)
	if !strings.Contains(logs.String(), `"message":"connection closed"`) || !strings.Contains(logs.String(), `"reason":"service_restart"`) {
		t.Fatalf("no close log line with reason service_restart:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), tok) {
		t.Fatal("a token was logged")
	}
}

// TestProcessAdminDrain: POST /v1/admin/drain with an admin token from
// `edge token` drains the process as SIGTERM does: the client gets 1012
// and the process exits 0.
func TestProcessAdminDrain(t *testing.T) {
	p := startProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+p.addr+"/v1/ws", client.Options{Token: p.token(t, "--sub", "u1", "--projects", "p1", "--permissions", "tasks:read")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	req, err := http.NewRequest("POST", "http://"+p.admin+"/v1/admin/drain", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+p.token(t, "--sub", "ops", "--permissions", "admin"))
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("drain: %d", resp.StatusCode)
	}
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("client not closed after the drain request")
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != 1012 {
		t.Fatalf("client closed with %v; want 1012", c.Err())
	}
	p.waitExit(t)
	logged := false
	for _, line := range strings.Split(p.logs.String(), "\n") {
		logged = logged || strings.Contains(line, `"message":"drain requested by admin"`) && strings.Contains(line, `"admin":"ops"`)
	}
	if !logged {
		t.Fatalf("no log line naming the admin who asked:\n%s", p.logs.String())
	}
}
