package load

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxErrorBody bounds how much of a refused handshake's body can be read.
const maxErrorBody = 64 << 10

// upgradeBufSize is the size of the request's bufio.Writer and the
// response's bufio.Reader: a handshake's request and response headers are
// a few hundred bytes (longer lines still read whole).
const upgradeBufSize = 1024

// aLongTimeAgo is a deadline in the past: it fails a blocked read or write
// at once.
var aLongTimeAgo = time.Unix(1, 0)

var upgradeWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, upgradeBufSize) }}

// upgradeTransport is the load generator's http.RoundTripper for WebSocket
// handshakes: one TCP connection per request, the request written, the
// response read, and, for a 101, the connection handed to coder/websocket
// as the response body. Safe for concurrent use; static after
// construction.
//
// Why: the connect storms (preset L5: 5,000 clients, 200 dialers) measure
// the edge, and with http.Transport the load generator spent about as much
// CPU per connection as the edge did, in machinery that an upgraded
// connection never uses: dialConnFor, a persistConn with a readLoop and a
// writeLoop goroutine, their 4 KiB bufio buffers and channels, all for a
// connection that is hijacked right after the 101.
//
// What it does: RoundTrip dials with a net.Dialer (10 s timeout, the
// client's loopback source address), writes the request with
// http.Request.Write through a small pooled bufio.Writer (every header
// coder/websocket or the caller set: Upgrade, Connection,
// Sec-WebSocket-*, Authorization, …) and reads the response with
// http.ReadResponse through a small bufio.Reader. A 101's Body is an
// io.ReadWriteCloser over the connection whose reads first drain what the
// bufio.Reader holds beyond the response (a server may send its first
// frames with the 101). Any other status keeps its body readable (at most
// maxErrorBody bytes), and closing the body closes the connection, so a
// refused handshake still shows its status and text.
//
// What it does not do: keep-alive or connection reuse (every request gets
// its own connection, closed with its body), HTTP/2, proxies, gzip, 1xx
// other than 101 (returned as the response), following redirects (the
// http.Client does that, and a 3xx fails a WebSocket dial anyway), or TLS:
// a request that is not plain http (wss:// becomes https:// in
// coder/websocket) goes to fallback, an http.Transport on the same dialer.
//
// Goroutines: RoundTrip starts none that outlives it. The context is
// watched with context.AfterFunc, whose function (run only when the
// context ends first) just sets a past deadline on the connection; it is
// stopped before RoundTrip returns a 101, and when a non-101 body is
// closed. After a 101 the connection belongs to the body's owner.
type upgradeTransport struct {
	dialer   *net.Dialer
	fallback *http.Transport // for anything but plain http (TLS)
}

// newUpgradeTransport returns an upgradeTransport dialing with d.
func newUpgradeTransport(d *net.Dialer) *upgradeTransport {
	// Proxy is nil on purpose: a benchmark connects directly.
	return &upgradeTransport{dialer: d, fallback: &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: false}}
}

// CloseIdleConnections closes the fallback's idle connections (the lean
// path keeps none); http.Client.CloseIdleConnections calls it.
func (t *upgradeTransport) CloseIdleConnections() { t.fallback.CloseIdleConnections() }

// RoundTrip makes req on a new connection; see upgradeTransport.
func (t *upgradeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil || req.URL.Scheme != "http" {
		return t.fallback.RoundTrip(req)
	}
	if req.Body != nil {
		defer req.Body.Close() // a RoundTripper must close it, even on errors
	}
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		addr = net.JoinHostPort(req.URL.Hostname(), "80")
	}
	c, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The only way the context can end a blocked write or read below.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		c.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, err
	}

	bw := upgradeWriterPool.Get().(*bufio.Writer)
	bw.Reset(c)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	upgradeWriterPool.Put(bw)
	if err != nil {
		return fail(fmt.Errorf("write handshake request: %w", err))
	}

	br := bufio.NewReaderSize(c, upgradeBufSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fail(fmt.Errorf("read handshake response: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &errorBody{r: io.LimitReader(resp.Body, maxErrorBody), c: c, stop: stop}
		return resp, nil
	}
	if !stop() { // the context ended: its function may be setting a deadline
		return fail(errors.New("handshake response read as the context ended"))
	}
	resp.Body = &upgradedBody{Conn: c, br: br}
	return resp, nil
}

// upgradedBody is a 101 response's body: the connection, read first from
// what the handshake's bufio.Reader holds. Read is called by one goroutine
// at a time (coder/websocket's reader); Write and Close go to the
// connection.
type upgradedBody struct {
	net.Conn
	br *bufio.Reader // nil once drained
}

func (b *upgradedBody) Read(p []byte) (int, error) {
	if b.br != nil {
		if b.br.Buffered() > 0 {
			return b.br.Read(p) // only what is buffered: no read from the conn
		}
		b.br = nil // drained: let its buffer go
	}
	return b.Conn.Read(p)
}

// errorBody is the body of a response other than 101: at most
// maxErrorBody bytes; Close stops the context watch and closes the
// connection.
type errorBody struct {
	r    io.Reader
	c    net.Conn
	stop func() bool

	once sync.Once
	err  error
}

func (b *errorBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *errorBody) Close() error {
	b.once.Do(func() {
		b.stop()
		b.err = b.c.Close()
	})
	return b.err
}
