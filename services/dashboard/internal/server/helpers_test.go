package server_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// test server and client connection must be closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// secret is a development secret of the minimum length.
const secret = "test-secret-0123456789abcdef-0123"

// now is the fixed clock of the development tokens.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// files is a small app: what the server serves does not depend on the
// real app, which another part of the project owns.
var files = fstest.MapFS{
	"index.html":   {Data: []byte("<!doctype html><title>board</title>")},
	"login.html":   {Data: []byte("<!doctype html><title>login</title>")},
	"app.css":      {Data: []byte("body { margin: 0 }")},
	"favicon.svg":  {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	"js/main.js":   {Data: []byte("export const x = 1;")},
	"js/view.js":   {Data: []byte("export const y = 2;")},
	"img/logo.png": {Data: []byte("\x89PNG\r\n\x1a\n")},
	"help.html":    {Data: []byte("<!doctype html><title>help</title>")},
	"blob.bin":     {Data: []byte{0, 1, 2}},
}

// fixture is a Server on a real loopback listener.
type fixture struct {
	url  string
	reg  *prometheus.Registry
	logs *syncBuffer
}

// devOptions are development-mode options over files; mutate adjusts them.
func devOptions(mutate func(*server.Options)) server.Options {
	o := server.Options{Dev: true, DevSecret: []byte(secret), Files: files, Now: func() time.Time { return now }}
	if mutate != nil {
		mutate(&o)
	}
	return o
}

// start serves a Server with opts (a fresh registry and a captured log are
// added) on 127.0.0.1 until the test ends.
func start(t *testing.T, opts server.Options) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	opts.Registerer = f.reg
	opts.Logger = zerolog.New(f.logs)
	s, err := server.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.url = serve(t, s)
	return f
}

// serve runs h on a loopback listener until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// client keeps no idle connections, so nothing outlives a test.
var client = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   10 * time.Second,
}

// response is an answer read in full.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with the headers given as name, value pairs.
func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

func get(t *testing.T, url string, header ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, "", header...)
}

// counter reads the value of the counter name with exactly labels from
// reg; 0 when there is no such series.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
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
