package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
	"github.com/eventedge/eventedge/services/dashboard/internal/service"
)

// TestMain fails the package if a test leaves a goroutine behind: Shutdown
// must stop both listeners and every connection.
// net/http keeps a connection's goroutine for up to 500 ms after a
// "Connection: close" response (rstAvoidanceDelay in closeWriteAndWait),
// past Shutdown: that bounded linger is not a leak, here and in every
// package's TestMain.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const secret = "service-test-secret-0123456789abcdef"

// options are loopback listeners on free ports in development mode;
// mutate adjusts them.
func options(mutate func(*service.Options)) service.Options {
	o := service.Options{
		Addr:      "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0",
		Server:    server.Options{Dev: true, DevSecret: []byte(secret)},
	}
	if mutate != nil {
		mutate(&o)
	}
	return o
}

// start starts a service with opts; it is shut down when the test ends.
func start(t *testing.T, opts service.Options) (*service.Service, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	s, err := service.New(opts, zerolog.New(logs))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s, logs
}

// client keeps no idle connections, so nothing outlives a test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, string(b)
}

// eventually polls ok until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServes checks both listeners of a running service: the app and the
// development login on the public one, health, readiness and metrics on
// the admin one, and an access log line per request without the query.
func TestServes(t *testing.T) {
	s, logs := start(t, options(nil))
	pub, admin := "http://"+s.Addr().String(), "http://"+s.AdminAddr().String()

	if code, body := get(t, pub+"/?token=secret-in-query"); code != http.StatusOK || !strings.Contains(body, "<title>") {
		t.Errorf("GET / = %d %q", code, body)
	}
	code, body := get(t, pub+"/config.json")
	var cfg struct {
		Dev       bool
		ClientURL string
	}
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || code != http.StatusOK || !cfg.Dev || cfg.ClientURL != "http://localhost:8080/v1/client.js" {
		t.Errorf("GET /config.json = %d %q", code, body)
	}
	res, err := client.Post(pub+"/dev/token", "application/json", strings.NewReader(`{"user":"member","project":"demo"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST /dev/token = %d", res.StatusCode)
	}
	if code, _ := get(t, pub+"/nope"); code != http.StatusNotFound {
		t.Errorf("GET /nope = %d, want 404", code)
	}

	if code, body := get(t, admin+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	if code, body := get(t, admin+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("GET /readyz = %d %q", code, body)
	}
	_, metrics := get(t, admin+"/metrics")
	for _, want := range []string{
		`eventedge_dashboard_http_requests_total{code="200",route="/"} 1`,
		`eventedge_dashboard_http_requests_total{code="404",route="not_found"} 1`,
		`eventedge_dashboard_dev_tokens_total{user="member"} 1`,
		`eventedge_dashboard_dev_tokens_total{user="viewer"} 0`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The access log: one line per public request, the path without its
	// query. The admin listener is not logged (probes and scrapes).
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["message"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 4 {
		t.Fatalf("%d access log lines, want 4:\n%s", len(lines), logs)
	}
	first := lines[0]
	if first["method"] != "GET" || first["path"] != "/" || first["status"] != float64(200) || first["bytes"].(float64) <= 0 || first["duration_ms"] == nil {
		t.Errorf("access log line %v: want method GET, path /, status 200, bytes and duration_ms", first)
	}
	if l := lines[3]; l["path"] != "/nope" || l["status"] != float64(404) {
		t.Errorf("access log line %v: want /nope 404", l)
	}
	if strings.Contains(logs.String(), "secret-in-query") {
		t.Errorf("the log holds the query:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "development login enabled: anyone can mint tokens") {
		t.Errorf("no development-mode warning in the log:\n%s", logs)
	}
}

// TestProductionHasNoDevLogin: without Dev there is no warning and no login.
func TestProductionHasNoDevLogin(t *testing.T) {
	s, logs := start(t, options(func(o *service.Options) { o.Server = server.Options{} }))
	if code, _ := get(t, "http://"+s.Addr().String()+"/login"); code != http.StatusNotFound {
		t.Errorf("GET /login = %d, want 404", code)
	}
	if strings.Contains(logs.String(), "development login") {
		t.Errorf("development warning without Dev:\n%s", logs)
	}
}

const tokenBody = `{"user":"member","project":"demo"}`

// requestInFlight starts a POST /dev/token on a new connection to addr and
// returns once its handler runs: the request asks "Expect: 100-continue",
// which the server answers when the handler starts reading the body. The
// body is not sent: the handler waits for it until finish is called.
func requestInFlight(t *testing.T, addr string) (conn net.Conn, br *bufio.Reader, finish func()) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(c, "POST /dev/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(tokenBody))
	if err != nil {
		t.Fatal(err)
	}
	br = bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	if blank, err := br.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q, %v", blank, err)
	}
	return c, br, func() {
		if _, err := io.WriteString(c, tokenBody); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGracefulShutdown: Shutdown turns /readyz to 503 at once, lets a
// request in flight finish, and only then returns.
func TestGracefulShutdown(t *testing.T) {
	logs := &syncBuffer{}
	s, err := service.New(options(nil), zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + s.AdminAddr().String()
	_, br, finish := requestInFlight(t, s.Addr().String())

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	eventually(t, 5*time.Second, func() bool {
		code, _ := get(t, admin+"/readyz")
		return code == http.StatusServiceUnavailable
	}, "/readyz to answer 503 during shutdown")
	eventually(t, 5*time.Second, func() bool {
		c, err := net.Dial("tcp", s.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the public listener to stop accepting")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}

	// Finish the request: it is answered, then Shutdown completes.
	finish()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"token"`)) {
		t.Errorf("the request in flight: %d %q", res.StatusCode, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
	if !strings.Contains(logs.String(), `"message":"stopped"`) {
		t.Errorf("no stopped line:\n%s", logs)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
}

// TestShutdownTimeout: a request that does not finish within
// ShutdownTimeout is cut off, and Shutdown says so.
func TestShutdownTimeout(t *testing.T) {
	s, err := service.New(options(func(o *service.Options) { o.ShutdownTimeout = 200 * time.Millisecond }), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, _, _ := requestInFlight(t, s.Addr().String())
	began := time.Now()
	err = s.Shutdown(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the deadline exceeded", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Shutdown took %s with a 200ms timeout", d)
	}
	if n, err := conn.Read(make([]byte, 1)); err == nil {
		t.Errorf("the cut-off connection is still open (read %d bytes)", n)
	}
	if err2 := s.Shutdown(context.Background()); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("a second Shutdown = %v, want the first one's %v", err2, err)
	}
}

func TestStartErrors(t *testing.T) {
	// A busy port: Start fails and leaves nothing listening.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := free.Addr().String()
	free.Close()
	s, err := service.New(options(func(o *service.Options) { o.Addr, o.AdminAddr = busy.Addr().String(), adminAddr }), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "public listener") {
		t.Fatalf("Start on a busy port = %v, want a public listener error", err)
	}
	ln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		t.Errorf("the admin address is still taken after a failed Start: %v", err)
	} else {
		ln.Close()
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed Start: %v", err)
	}

	// Bad handler options fail New.
	_, err = service.New(options(func(o *service.Options) { o.Server.EdgeURL = "http://x/v1/ws" }), zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "edge URL") {
		t.Errorf("New with a bad edge URL = %v", err)
	}
}

func TestLifecycleWithoutStart(t *testing.T) {
	s, err := service.New(options(nil), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err == nil {
		t.Error("ready before Start")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown before Start: %v", err)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
