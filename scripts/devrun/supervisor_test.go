package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSupervisorStopsInReverseOrder: real processes get SIGTERM newest
// first, their output is prefixed, and Stop returns only once they exited.
func TestSupervisorStopsInReverseOrder(t *testing.T) {
	var out syncBuffer
	sup := &Supervisor{Out: &out, StopTimeout: 5 * time.Second}
	script := `trap 'echo stopping $0; exit 0' TERM; echo started $0; while :; do sleep 0.05; done`
	for _, name := range []string{"first", "second"} {
		if err := sup.Start(context.Background(), Proc{Name: name, Path: "/bin/sh", Args: []string{"-c", script, name}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "started second") || !strings.Contains(out.String(), "started first") {
		if time.Now().After(deadline) {
			t.Fatalf("processes did not start: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	i, j := strings.Index(got, "second  | stopping second"), strings.Index(got, "first   | stopping first")
	if i < 0 || j < 0 || i > j {
		t.Fatalf("want second stopped before first, got:\n%s", got)
	}
}

// TestSupervisorKillsStubbornProcess: a process that ignores SIGTERM is
// killed after StopTimeout.
func TestSupervisorKillsStubbornProcess(t *testing.T) {
	var out syncBuffer
	sup := &Supervisor{Out: &out, StopTimeout: 300 * time.Millisecond}
	if err := sup.Start(context.Background(), Proc{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", `trap '' TERM; echo up; while :; do sleep 0.05; done`}}); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "up") {
		time.Sleep(10 * time.Millisecond)
	}
	_ = sup.Stop()
	if !strings.Contains(out.String(), "killed") {
		t.Fatalf("not killed: %q", out.String())
	}
}

// TestSupervisorReportsEarlyExit: a process that dies is reported on
// Exited, and one that dies before it is ready fails Start.
func TestSupervisorReportsEarlyExit(t *testing.T) {
	sup := &Supervisor{Out: &syncBuffer{}}
	err := sup.Start(context.Background(), Proc{Name: "dies", Path: "/bin/sh", Args: []string{"-c", "exit 3"}, Ready: "http://127.0.0.1:1/readyz"})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Start: %v", err)
	}
	select {
	case r := <-sup.Exited():
		if r.proc.Name != "dies" {
			t.Fatalf("exited: %s", r.proc.Name)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit reported")
	}
	if err := sup.Stop(); err == nil {
		t.Fatal("Stop hid the exit status 3")
	}
}
