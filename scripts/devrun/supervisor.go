package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc describes one supervised process.
type Proc struct {
	Name string
	Path string
	Args []string
	Env  []string // added to the supervisor's environment
	// Ready, when set, is polled (HTTP 200) before the next process starts.
	Ready string
}

// Supervisor starts processes in order and stops them in reverse order.
// Each process's output goes to Out, every line prefixed with its name.
// Goroutines: one waiter per process and two line copiers, all owned by
// the Supervisor and waited for by Stop.
type Supervisor struct {
	Out io.Writer
	// StopTimeout is how long a process has after SIGTERM before SIGKILL.
	// Default 30s.
	StopTimeout time.Duration

	mu      sync.Mutex
	running []*running // guarded by mu, in start order
	exited  chan *running
	outMu   sync.Mutex // serialises lines on Out
	wg      sync.WaitGroup
}

type running struct {
	proc Proc
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start starts p and, when p.Ready is set, waits until it answers 200.
func (s *Supervisor) Start(ctx context.Context, p Proc) error {
	if s.exited == nil {
		s.exited = make(chan *running, 16)
	}
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	// Own process group: a Ctrl-C in the terminal reaches the supervisor
	// only, which then stops the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	r := &running{proc: p, cmd: cmd, done: make(chan struct{})}
	var copies sync.WaitGroup
	for _, rd := range []io.Reader{stdout, stderr} {
		copies.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer copies.Done()
			s.copyLines(p.Name, rd)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		copies.Wait() // read all output before Wait closes the pipes
		r.err = cmd.Wait()
		close(r.done)
		s.exited <- r
	}()
	s.mu.Lock()
	s.running = append(s.running, r)
	s.mu.Unlock()
	if p.Ready == "" {
		return nil
	}
	return s.waitReady(ctx, r)
}

func (s *Supervisor) waitReady(ctx context.Context, r *running) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.proc.Ready, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-r.done:
			return fmt.Errorf("%s exited before it was ready: %v", r.proc.Name, r.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s within 60s", r.proc.Name, r.proc.Ready)
		}
	}
}

func (s *Supervisor) copyLines(name string, rd io.Reader) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		s.Printf("%-8s| %s\n", name, sc.Text())
	}
}

// Printf writes a line to Out, not interleaved with process output.
func (s *Supervisor) Printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.Out, format, args...)
}

// Exited reports processes that end while the supervisor runs.
func (s *Supervisor) Exited() <-chan *running { return s.exited }

// Stop sends SIGTERM to every running process, newest first, waiting for
// each (SIGKILL after StopTimeout), then waits for the output copiers.
// It returns the first process error other than the termination itself.
func (s *Supervisor) Stop() error {
	timeout := s.StopTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	s.mu.Lock()
	procs := s.running
	s.running = nil
	s.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		r := procs[i]
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(timeout):
				s.Printf("%-8s| did not stop within %s: killed\n", r.proc.Name, timeout)
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
		if r.err != nil && !isTermination(r.err) {
			errs = append(errs, fmt.Errorf("%s: %w", r.proc.Name, r.err))
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

func isTermination(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGINT)
}
