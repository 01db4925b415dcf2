package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// procs tracks every process the orchestrator starts, so that all are
// stopped on exit, whatever the path (error, Ctrl-C).
type procs struct {
	mu   sync.Mutex
	live map[*exec.Cmd]struct{} // guarded by mu
}

// start starts cmd in its own process group (a Ctrl-C at the terminal
// reaches the orchestrator only, which then stops it), killed with the
// orchestrator if that dies (Pdeathsig).
func (p *procs) start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	if p.live == nil {
		p.live = map[*exec.Cmd]struct{}{}
	}
	p.live[cmd] = struct{}{}
	return nil
}

// stop ends cmd: SIGTERM to its group, SIGKILL after grace, and waits.
func (p *procs) stop(cmd *exec.Cmd, grace time.Duration) error {
	p.mu.Lock()
	_, ok := p.live[cmd]
	delete(p.live, cmd)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

// stopAll stops every live process, all at once (they do not depend on
// each other's shutdown: the edge's NATS connection just drops).
func (p *procs) stopAll() {
	p.mu.Lock()
	cmds := make([]*exec.Cmd, 0, len(p.live))
	for c := range p.live {
		cmds = append(cmds, c)
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cmds {
		wg.Go(func() { _ = p.stop(c, 5*time.Second) })
	}
	wg.Wait()
}

// freeAddr returns a 127.0.0.1 address with a port free at the moment.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// pinned returns a command running bin with args on CPU cpu (taskset -c,
// which execs bin: the command's pid is bin's). When ctx ends the process
// gets SIGINT (loadgen then reports what it has), SIGKILL 10 s later.
func pinned(ctx context.Context, cpu string, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, bin}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// natsServer is the NATS server of a bench run.
type natsServer struct {
	cmd *exec.Cmd
	url string
}

// startNATS runs bin/nats-server with JetStream on a free port, its store
// in dir, pinned to CPU 1, and waits until it accepts connections.
func startNATS(ctx context.Context, p *procs, bin, dir, logPath string) (*natsServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child holds its own descriptor
	cmd := pinned(ctx, "1", filepath.Join(bin, "nats-server"), "-js", "-sd", dir, "-a", host, "-p", port)
	cmd.Stdout, cmd.Stderr = log, log
	if err := p.start(cmd); err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	if err := waitFor(ctx, 15*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		_ = p.stop(cmd, time.Second)
		return nil, fmt.Errorf("nats-server on %s not ready (log %s): %w", addr, logPath, err)
	}
	return &natsServer{cmd: cmd, url: "nats://" + addr}, nil
}

// edge is one edge process of a bench run.
type edge struct {
	cmd               *exec.Cmd
	pid               int
	wsURL, metricsURL string
	readyURL, logPath string
}

// startEdge runs bin/edge against natsURL on CPU 0 with GOMAXPROCS=1,
// limits raised for 10,000+ loopback clients, extra flags added, and
// waits for its /readyz.
func startEdge(ctx context.Context, p *procs, bin, natsURL, secret, dataDir, logPath string, extra ...string) (*edge, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	args := []string{"--addr", addr, "--admin-addr", admin, "--nats-url", natsURL, "--node-name", "bench",
		"--data-dir", dataDir, "--log-level", "warn", "--drain-duration", "0s",
		// Every client is its own user on one of 8 loopback addresses:
		// raise what would refuse 10,000 of them.
		"--max-conns", "30000", "--max-conns-per-ip", "30000", "--ready-fill", "1"}
	cmd := pinned(ctx, "0", filepath.Join(bin, "edge"), append(args, extra...)...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "EDGE_JWT_SECRET="+secret)
	cmd.Stdout, cmd.Stderr = log, log
	if err := p.start(cmd); err != nil {
		return nil, fmt.Errorf("start edge: %w", err)
	}
	e := &edge{cmd: cmd, pid: cmd.Process.Pid, wsURL: "ws://" + addr + "/v1/ws", metricsURL: "http://" + admin + "/metrics",
		readyURL: "http://" + admin + "/readyz", logPath: logPath}
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	if err := waitFor(ctx, 30*time.Second, func() error {
		resp, err := hc.Get(e.readyURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		_ = p.stop(cmd, time.Second)
		return nil, fmt.Errorf("edge not ready (log %s): %w", logPath, err)
	}
	return e, nil
}

// waitFor polls check every 50 ms until it succeeds, ctx ends or limit
// passes, returning check's last error.
func waitFor(ctx context.Context, limit time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// raiseNoFile raises this process's RLIMIT_NOFILE soft limit to the hard
// limit (children inherit it) and returns the limits before and after.
func raiseNoFile() (before, after uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	before = lim.Cur
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return before, before, err
		}
	}
	return before, lim.Cur, nil
}
