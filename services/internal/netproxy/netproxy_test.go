package netproxy

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server on loopback and returns its address.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip dials through p, or uses c when non-nil, sends a line and
// reads it back.
func roundTrip(t *testing.T, c net.Conn) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("hello\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "hello\n" {
		t.Fatalf("echo: got %q", line)
	}
	return nil
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitConns waits until the proxy holds n connections.
func waitConns(t *testing.T, p *Proxy, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Conns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("proxy holds %d connections, want %d", p.Conns(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closed reports whether c was closed by the far side: a read ends with
// EOF or a reset instead of timing out.
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func TestProxyForwardsAndCuts(t *testing.T) {
	p := Start(t, echo(t))
	a, b := dial(t, p), dial(t, p)
	for _, c := range []net.Conn{a, b} {
		if err := roundTrip(t, c); err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
	}
	waitConns(t, p, 2)
	p.Cut()
	if !closed(a) || !closed(b) {
		t.Fatal("Cut left a connection open")
	}
	waitConns(t, p, 0)
	if err := roundTrip(t, dial(t, p)); err != nil {
		t.Fatalf("a new connection after Cut: %v", err)
	}
}

func TestProxyCutSome(t *testing.T) {
	p := Start(t, echo(t))
	conns := make([]net.Conn, 6)
	for i := range conns {
		conns[i] = dial(t, p)
		if err := roundTrip(t, conns[i]); err != nil {
			t.Fatal(err)
		}
	}
	waitConns(t, p, 6)
	if n := p.CutSome(rand.New(rand.NewPCG(1, 2)), 2); n != 2 {
		t.Fatalf("CutSome(2) cut %d", n)
	}
	waitConns(t, p, 4)
	cut := 0
	for _, c := range conns {
		if roundTrip(t, c) != nil {
			cut++
		}
	}
	if cut != 2 {
		t.Fatalf("%d connections fail after CutSome(2), want 2", cut)
	}
	if n := p.CutSome(rand.New(rand.NewPCG(1, 2)), 10); n != 4 {
		t.Fatalf("CutSome(10) of 4 cut %d", n)
	}
}

func TestProxyBlockRefusesUntilUnblock(t *testing.T) {
	p := Start(t, echo(t))
	a := dial(t, p)
	if err := roundTrip(t, a); err != nil {
		t.Fatal(err)
	}
	p.Block()
	if !closed(a) {
		t.Fatal("Block left a connection open")
	}
	if !closed(dial(t, p)) {
		t.Fatal("a connection made while blocked was not closed")
	}
	p.Unblock()
	if err := roundTrip(t, dial(t, p)); err != nil {
		t.Fatalf("after Unblock: %v", err)
	}
}

func TestProxyKill(t *testing.T) {
	p := Start(t, echo(t))
	a := dial(t, p)
	if err := roundTrip(t, a); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if !closed(a) {
		t.Fatal("Kill left a connection open")
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the proxy still accepts after Kill")
	}
}

func TestProxyPauseHoldsUntilResume(t *testing.T) {
	p := Start(t, echo(t))
	c := dial(t, p)
	if err := roundTrip(t, c); err != nil {
		t.Fatal(err)
	}
	p.Pause()
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var ne net.Error
	if n, err := c.Read(make([]byte, 16)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read while paused: %d bytes, %v; want a timeout", n, err)
	}
	if p.Conns() != 1 {
		t.Fatalf("paused proxy holds %d connections, want 1", p.Conns())
	}
	p.Resume()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("after Resume: %q, %v; want the held line", line, err)
	}
	p.Pause() // Kill at the test's end resumes: nothing is left waiting
}
