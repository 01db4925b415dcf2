package load

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The tests below dial real httptest servers running websocket.Accept
// through an upgradeTransport (as httpClients builds it).

// leanHTTPClient is an http.Client over a new upgradeTransport, as
// httpClients makes them.
func leanHTTPClient() *http.Client {
	return &http.Client{Transport: newUpgradeTransport(&net.Dialer{Timeout: 10 * time.Second})}
}

// echoServer accepts WebSocket connections with opts and echoes every
// message; first, when set, is sent right after the handshake.
func echoServer(t *testing.T, opts *websocket.AcceptOptions, first string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, opts)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		if first != "" {
			if err := ws.Write(ctx, websocket.MessageText, []byte(first)); err != nil {
				return
			}
		}
		for {
			typ, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if err := ws.Write(ctx, typ, b); err != nil {
				return
			}
		}
	}
}

// coalescingListener holds each accepted connection's first write and
// sends it together with the second, so the server's 101 and the frame it
// writes next reach the client in one segment: the client's response
// reader then holds the frame.
type coalescingListener struct{ net.Listener }

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coalescingConn{Conn: c}, nil
}

type coalescingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	held   []byte
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	switch c.writes {
	case 1:
		c.held = append([]byte(nil), p...)
		return len(p), nil
	case 2:
		if _, err := c.Conn.Write(append(c.held, p...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// bufferedAfter101 records how many bytes the handshake's reader held
// beyond a 101 response.
type bufferedAfter101 struct {
	rt       *upgradeTransport
	buffered atomic.Int64
}

func (b *bufferedAfter101) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(req)
	if err == nil {
		if ub, ok := resp.Body.(*upgradedBody); ok && ub.br != nil {
			b.buffered.Store(int64(ub.br.Buffered()))
		}
	}
	return resp, err
}

func TestUpgradeTransportFrameWith101(t *testing.T) {
	srv := httptest.NewUnstartedServer(echoServer(t, nil, "hello right after the 101"))
	srv.Listener = coalescingListener{srv.Listener}
	srv.Start()
	defer srv.Close()

	rec := &bufferedAfter101{rt: newUpgradeTransport(&net.Dialer{Timeout: 10 * time.Second})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if rec.buffered.Load() == 0 {
		t.Fatal("the server's frame did not come with the 101: the test does not test the drain")
	}
	typ, b, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(b) != "hello right after the 101" {
		t.Fatalf("first frame: %v %q %v", typ, b, err)
	}
	// and the connection goes on past the buffered bytes
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

func TestUpgradeTransportSubprotocol(t *testing.T) {
	srv := httptest.NewServer(echoServer(t, &websocket.AcceptOptions{Subprotocols: []string{subprotocolProtobuf}}, ""))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: leanHTTPClient(), Subprotocols: []string{subprotocolProtobuf}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if got := ws.Subprotocol(); got != subprotocolProtobuf {
		t.Fatalf("subprotocol %q, want %q", got, subprotocolProtobuf)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if typ, b, err := ws.Read(ctx); err != nil || typ != websocket.MessageBinary || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("echo: %v %v %v", typ, b, err)
	}
}

// countingListener counts the bytes its connections read.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestUpgradeTransportCompression(t *testing.T) {
	var read atomic.Int64
	srv := httptest.NewUnstartedServer(echoServer(t, &websocket.AcceptOptions{CompressionMode: websocket.CompressionNoContextTakeover}, ""))
	srv.Listener = countingListener{srv.Listener, &read}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: leanHTTPClient(), CompressionMode: websocket.CompressionNoContextTakeover})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("not negotiated: Sec-WebSocket-Extensions %q", ext)
	}
	handshake := read.Load()
	msg := []byte(strings.Repeat(`{"op":"event","room":"task:1","data":{"status":"running"}}`+"\n", 400)) // under the default read limit (32 KiB)
	if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil || !bytes.Equal(b, msg) {
		t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(b), err)
	}
	if wire := read.Load() - handshake; wire >= int64(len(msg))/4 {
		t.Errorf("the server read %d bytes for a %d-byte message: not compressed", wire, len(msg))
	}
}

// authServer refuses a handshake without an Authorization header with 401
// and a text, and records what a request carried.
type authServer struct {
	echo http.HandlerFunc

	mu                   sync.Mutex
	host, auth, extra    string
	remote               string
	closed, opened, seen int
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen++
	s.host, s.auth, s.extra, s.remote = r.Host, r.Header.Get("Authorization"), r.Header.Get("X-Loadgen-Test"), r.RemoteAddr
	s.mu.Unlock()
	if r.Header.Get("Authorization") == "" {
		http.Error(w, "token missing: send Authorization", http.StatusUnauthorized)
		return
	}
	s.echo(w, r)
}

func (s *authServer) connState(_ net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.opened++
	case http.StateClosed, http.StateHijacked:
		s.closed++
	}
}

func TestUpgradeTransportRefused(t *testing.T) {
	as := &authServer{echo: echoServer(t, nil, "")}
	srv := httptest.NewUnstartedServer(as)
	srv.Config.ConnState = as.connState
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, resp, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: leanHTTPClient()})
	if err == nil {
		t.Fatal("dial without a token succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("response %+v, err %v: want status 401", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "token missing: send Authorization") {
		t.Errorf("body %q", body)
	}

	// the lean dial's error is classified by its status
	_, _, err = dialLean(ctx, wsURL(srv), leanHTTPClient(), "", []string{"r"}, leanOptions{})
	if err == nil || classify(err) != "dial: HTTP 401" {
		t.Errorf("dialLean: %v, classified %q", err, classify(err))
	}

	// the refused connections are closed (by the body's Close in Dial)
	deadline := time.Now().Add(5 * time.Second)
	for {
		as.mu.Lock()
		opened, closed := as.opened, as.closed
		as.mu.Unlock()
		if opened == 2 && closed == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections opened, %d closed", opened, closed)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUpgradeTransportHeaders(t *testing.T) {
	as := &authServer{echo: echoServer(t, nil, "")}
	srv := httptest.NewServer(as)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", "Bearer abc.def.ghi")
	h.Set("X-Loadgen-Test", "yes")
	ws, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: leanHTTPClient(), HTTPHeader: h, Host: "edge.example:8443"})
	if err != nil {
		t.Fatal(err)
	}
	ws.CloseNow()
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.host != "edge.example:8443" || as.auth != "Bearer abc.def.ghi" || as.extra != "yes" {
		t.Errorf("the server saw Host %q, Authorization %q, X-Loadgen-Test %q", as.host, as.auth, as.extra)
	}
}

func TestUpgradeTransportSourceAddr(t *testing.T) {
	as := &authServer{echo: echoServer(t, nil, "")}
	srv := httptest.NewServer(as)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hcs := httpClients(3, true)
	h := http.Header{"Authorization": {"Bearer x"}}
	ws, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: hcs[2], HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	ws.CloseNow()
	as.mu.Lock()
	defer as.mu.Unlock()
	if host, _, _ := net.SplitHostPort(as.remote); host != "127.0.0.3" {
		t.Errorf("client 2 dialed from %q, want 127.0.0.3", as.remote)
	}
}

func TestUpgradeTransportContextCanceled(t *testing.T) {
	// a server that accepts and never answers
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() { // ends with ln.Close
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, _, err = websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/v1/ws", &websocket.DialOptions{HTTPClient: leanHTTPClient()})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("dial returned %s after the cancel", took)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err %v: want context.Canceled", err)
	}

	// a deadline ends it alike, classified as a timeout
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err = dialLean(ctx, "ws://"+ln.Addr().String()+"/v1/ws", leanHTTPClient(), "t", []string{"r"}, leanOptions{})
	if got := classify(err); got != "dial: timeout" {
		t.Errorf("dialLean past its deadline: %v, classified %q", err, got)
	}
}

// goroutinesCreated is the process's count of goroutines created so far,
// ok false when the runtime has no such metric.
func goroutinesCreated() (n uint64, ok bool) {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return s[0].Value.Uint64(), true
}

// TestUpgradeTransportNoConnGoroutines counts the goroutines created per
// dial, the connections kept open: the httptest server creates 2 per
// connection (conn.serve and its background read); http.Transport would
// add 3 (dialConnFor, readLoop, writeLoop), the upgradeTransport none.
func TestUpgradeTransportNoConnGoroutines(t *testing.T) {
	if _, ok := goroutinesCreated(); !ok {
		t.Skip("no /sched/goroutines-created metric in this runtime")
	}
	srv := httptest.NewServer(echoServer(t, nil, ""))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := leanHTTPClient()
	var conns []*websocket.Conn
	defer func() {
		for _, ws := range conns {
			ws.CloseNow()
		}
	}()
	const n = 50
	before, _ := goroutinesCreated()
	for range n {
		ws, _, err := websocket.Dial(ctx, wsURL(srv), &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
	}
	after, _ := goroutinesCreated()
	if per := float64(after-before) / n; per >= 3 {
		t.Errorf("%.2f goroutines created per dial, want the server's 2", per)
	}
}

// TestUpgradeTransportTLSFallback dials wss:// (an https request), which
// goes to the fallback http.Transport.
func TestUpgradeTransportTLSFallback(t *testing.T) {
	srv := httptest.NewTLSServer(echoServer(t, nil, "over tls"))
	defer srv.Close()
	rt := newUpgradeTransport(&net.Dialer{Timeout: 10 * time.Second})
	rt.fallback.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer rt.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "wss"+srv.URL[len("https"):], &websocket.DialOptions{HTTPClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if resp.TLS == nil {
		t.Error("the response has no TLS state")
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "over tls" {
		t.Fatalf("read %q %v", b, err)
	}
}
