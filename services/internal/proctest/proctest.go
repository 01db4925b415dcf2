// Package proctest builds eventedge's service binaries and runs them as real
// processes in tests: each listens on loopback ports the test chose, is
// ready when its admin /readyz answers 200, and can be stopped (SIGTERM),
// killed and started again on the same ports. Their output is kept and
// printed when the test fails.
//
// Ownership: a Process's fields are static after Start, except those
// guarded by mu; the goroutine waiting for the OS process is started by
// start and ends when the process exits (Stop and Kill wait for it).
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the services named (directories under root/services, each
// with cmd/<name>) into dir and returns their paths by name. Binaries are
// built without the race detector: they are the system under test, not
// the test.
func Build(dir, root string, services ...string) (map[string]string, error) {
	paths := map[string]string{}
	for _, svc := range services {
		out := filepath.Join(dir, svc)
		cmd := exec.Command("go", "build", "-o", out, "./cmd/"+svc)
		cmd.Dir = filepath.Join(root, "services", svc)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build %s: %v\n%s", svc, err, b)
		}
		paths[svc] = out
	}
	return paths, nil
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago, for a process to listen on (see FreeAddrs).
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}

// FreeAddrs returns n distinct 127.0.0.1 addresses with ports that were
// free a moment ago, none handed out before by this test process (another
// process may pick the same port between its check and a bind: unlikely,
// one in about 12,000 per port here, and make test runs one test process
// at a time).
//
// The ports are picked at random outside the kernel's ephemeral range
// (ip_local_port_range), and each is checked free by listening on it. A
// port from the ephemeral range, as "127.0.0.1:0" gives, can be taken
// between the check and the process's bind — or while the process is
// stopped for a restart on the same port — as the source port of any
// outgoing connection the test makes, and the process then fails to
// start with "address already in use". When the host leaves no room
// outside its ephemeral range, FreeAddrs falls back to "127.0.0.1:0".
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := listenFixed()
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all n are chosen
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{} // guarded by portsMu: ports handed out by FreeAddrs
)

// listenFixed listens on a free port outside the ephemeral range that this
// process has not handed out yet.
func listenFixed() (net.Listener, error) {
	lo, hi := fixedPorts()
	portsMu.Lock()
	defer portsMu.Unlock()
	var lastErr error
	for range 200 {
		addr := "127.0.0.1:0" // no room outside the ephemeral range: the kernel's pick
		if lo != 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo+1)))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			lastErr = err
			continue
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if portsUsed[port] {
			ln.Close()
			lastErr = fmt.Errorf("port %d handed out before", port)
			continue
		}
		portsUsed[port] = true
		return ln, nil
	}
	return nil, fmt.Errorf("no free port after 200 tries (range %d-%d; 0-0: the kernel's): %v", lo, hi, lastErr)
}

// fixedPorts returns the range FreeAddrs picks from: the ports between
// 20000 and the start of the ephemeral range, or those above its end (at
// least 1,000 of them); 0, 0 when neither is that large or the range
// cannot be read.
func fixedPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var elo, ehi int
	if _, err := fmt.Sscan(string(b), &elo, &ehi); err != nil {
		return 0, 0
	}
	const floor, minPorts = 20000, 1000
	switch {
	case elo-1-floor >= minPorts:
		return floor, elo - 1
	case 65535-ehi >= minPorts:
		return ehi + 1, 65535
	}
	return 0, 0
}

// Spec describes a process.
type Spec struct {
	Name string   // for logs
	Path string   // the binary
	Args []string // command-line arguments
	Env  []string // added to this process's environment
	// Ready is a URL that answers 200 once the process is ready; empty:
	// ready once started.
	Ready string
	// ReadyTimeout bounds the wait for Ready. Default 30s.
	ReadyTimeout time.Duration
	// StopTimeout bounds Stop's wait after SIGTERM, then the process is
	// killed. Default 20s.
	StopTimeout time.Duration
}

// Process is a running (or stopped) service process.
type Process struct {
	t    testing.TB
	spec Spec
	out  *lockedBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd     // guarded by mu: the current run
	done chan struct{} // guarded by mu: closed when the current run ended
	err  error         // written before done is closed
}

// Start starts the process and waits until it is ready. It is stopped
// (SIGTERM, then kill) when the test ends, and its output is logged if the
// test failed.
func Start(t testing.TB, spec Spec) *Process {
	t.Helper()
	if spec.ReadyTimeout == 0 {
		spec.ReadyTimeout = 30 * time.Second
	}
	if spec.StopTimeout == 0 {
		spec.StopTimeout = 20 * time.Second
	}
	p := &Process{t: t, spec: spec, out: &lockedBuffer{}}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("output of %s:\n%s", spec.Name, p.out.String())
		}
	})
	p.Restart()
	return p
}

// Restart starts the process again after Stop or Kill, with the same spec,
// and waits until it is ready.
func (p *Process) Restart() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("start %s: %v", p.spec.Name, err)
	}
	if err := p.waitReady(); err != nil {
		p.t.Fatalf("%s: %v\noutput:\n%s", p.spec.Name, err, p.out.String())
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return errors.New("already running")
		}
	}
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = append(os.Environ(), p.spec.Env...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	fmt.Fprintf(p.out, "--- start %s\n", p.spec.Name)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *Process) waitReady() error {
	if p.spec.Ready == "" {
		return nil
	}
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.spec.ReadyTimeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.spec.Ready, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("exited before it was ready: %v", p.exitErr())
		case <-ctx.Done():
			return fmt.Errorf("not ready at %s after %s", p.spec.Ready, p.spec.ReadyTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM and waits for the process to exit (killing it after
// the spec's StopTimeout). It returns the exit error (nil: exit status 0);
// a process that is not running returns nil.
func (p *Process) Stop() error {
	return p.signal(syscall.SIGTERM, p.spec.StopTimeout)
}

// Kill kills the process (SIGKILL) and waits for it to exit.
func (p *Process) Kill() {
	_ = p.signal(syscall.SIGKILL, p.spec.StopTimeout)
}

func (p *Process) signal(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil // already exited (its error was reported by whoever waited)
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %s: killed", p.spec.Name, timeout, sig)
	}
	if sig == syscall.SIGKILL {
		return nil
	}
	return p.exitErr()
}

// Output is everything the process wrote so far, across restarts.
func (p *Process) Output() string { return p.out.String() }

// lockedBuffer is a bytes.Buffer safe for the process's two output pipes
// and the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
