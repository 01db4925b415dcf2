package webclient_test

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

const chromium = "/usr/bin/chromium"

// TestBrowserResume runs client.js in a real headless Chromium against a
// real edge node and NATS: the page receives 20 events, the network between
// browser and edge is cut, 20 more events are published while the client
// is away, and after the network returns the page must hold all 40 (and a
// final one) exactly once, in order.
func TestBrowserResume(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not installed: make test installs it")
	}
	nats := edgetest.StartNATS(t)
	_, js := nats.Connect(t)
	edge := edgetest.StartEdge(t, nats, func(o *node.Options) {
		o.Server.AllowedOrigins = []string{"127.0.0.1:*"}
	})
	proxy := startProxy(t, edge.Addr().String())

	// The page comes from another origin than the edge, as a dashboard
	// would: it imports the edge's /v1/client.js (CORS) and connects
	// through the proxy (an allowed origin).
	pageSrv := httptest.NewServer(pageHandler(t, pageData{
		ClientURL: "http://" + edge.Addr().String() + "/v1/client.js",
		WSURL:     "ws://" + proxy.Addr() + "/v1/ws",
		Token:     edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour),
	}))
	defer pageSrv.Close()

	ctx, logs := startBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(pageSrv.URL)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	defer func() {
		if t.Failed() {
			for _, l := range logs.all() {
				t.Log("browser:", l)
			}
		}
	}()
	page := browserPage{t: t, ctx: ctx}
	page.waitFor("window.__sub && window.__sub.position !== null", "the subscribe reply")

	var want []int64
	publish := func(n int) {
		for range n {
			ev := events.TaskUpdated(room.Project("p1"), "u9", fmt.Sprintf("t%d", len(want)),
				&pb.Task{Status: pb.TaskStatus_TASK_STATUS_RUNNING}, "status")
			want = append(want, int64(edgetest.Publish(t, js, ev).Sequence))
		}
	}

	publish(20)
	page.waitFor("window.__seqs.length >= 20", "the first 20 events")

	proxy.Cut()
	page.waitFor(`window.__states.at(-1) === "reconnecting"`, "the client to notice the cut")
	publish(20) // while the client cannot connect
	proxy.Restore()
	page.waitFor(`window.__states.at(-1) === "connected"`, "the client to reconnect")
	publish(1) // after the resume: delivered live, after the replayed ones
	page.waitFor(fmt.Sprintf("window.__seqs.length >= %d", len(want)), "all events")

	got := eval[[]int64](page, "window.__seqs")
	if !slices.Equal(got, want) {
		t.Fatalf("page received seqs\n%v\nwant exactly\n%v", got, want)
	}
	states := eval[[]string](page, "window.__states")
	if !inOrder(states, "connecting", "connected", "reconnecting", "connected") {
		t.Errorf("states %v: want connecting, connected, reconnecting, connected in that order", states)
	}
	// The 20 events published during the cut came from the stream (resume
	// with since), and the client acknowledged its position (deviceId).
	if n := testutil.ToFloat64(edge.Metrics().Replayed); n < 20 {
		t.Errorf("replayed %v events, want at least 20", n)
	}
	edgetest.Eventually(t, 5*time.Second, func() bool { return testutil.ToFloat64(edge.Metrics().Acks) > 0 }, "an ack")

	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	shot := filepath.Join(t.TempDir(), "client.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
	_ = os.WriteFile("/tmp/client-shot.png", png, 0o644) // TEMP
}

type pageData struct{ ClientURL, WSURL, Token string }

// pageTemplate is a minimal dashboard: it records what the client reports
// in window.__seqs and window.__states for the test, and shows it.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>eventedge browser client test</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 24px; }
  #state { font-weight: bold; }
  ol { columns: 4; font-family: monospace; }
</style>
</head>
<body>
<h1>eventedge: project p1</h1>
<p>state: <span id="state">loading</span></p>
<ol id="log"></ol>
<script type="module">
window.__seqs = [];
window.__states = [];
const { connect } = await import({{.ClientURL}});
const client = connect({
  url: {{.WSURL}},
  token: {{.Token}},
  deviceId: "browser-test",
  clientVersion: "browser-test/1",
  baseDelayMs: 100,
  maxDelayMs: 1000,
});
client.onState((s) => {
  window.__states.push(s.state);
  document.getElementById("state").textContent =
    s.state + (s.node ? " · node " + s.node : "") + (s.latencyMs !== null ? " · " + s.latencyMs + " ms" : "");
});
window.__sub = client.subscribe("project:p1", {
  onEvent: (event, msg) => {
    window.__seqs.push(msg.seq);
    const li = document.createElement("li");
    li.textContent = msg.seq + " " + event.type + " " + event.data.taskId;
    document.getElementById("log").append(li);
  },
});
</script>
</body>
</html>
`))

func pageHandler(t *testing.T, d pageData) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTemplate.Execute(w, d); err != nil {
			t.Errorf("page: %v", err)
		}
	})
}

// startBrowser starts headless Chromium, stopped when the test ends. Host
// names other than 127.0.0.1 do not resolve, so the browser cannot reach
// anything but this machine.
func startBrowser(t *testing.T) (context.Context, *consoleLog) {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 700),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 60*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
	})
	logs := &consoleLog{}
	// Listen starts the browser.
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			logs.add(string(ev.Type) + ": " + strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			if d.Exception != nil {
				logs.add("exception: " + d.Text + " " + d.Exception.Description)
			} else {
				logs.add("exception: " + d.Text)
			}
		}
	})
	if err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return ctx, logs
}

// consoleLog collects the page's console output and exceptions.
type consoleLog struct {
	mu    sync.Mutex
	lines []string // guarded by mu
}

func (l *consoleLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *consoleLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// browserPage is the loaded page, for eval and waitFor.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

func eval[T any](p browserPage, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls the boolean expression cond in the page.
func (p browserPage) waitFor(cond, what string) {
	p.t.Helper()
	edgetest.Eventually(p.t, 15*time.Second, func() bool {
		return eval[bool](p, "Boolean("+cond+")")
	}, what)
}

// inOrder reports whether want occurs in got as a subsequence.
func inOrder(got []string, want ...string) bool {
	for _, s := range got {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

// proxy is a TCP proxy to the edge that the test cuts as a network failure
// would: Cut closes every connection and refuses new ones until Restore.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and one per connection

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	down  bool                  // guarded by mu
}

func startProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every proxied connection and refuses new ones.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Restore lets connections through again.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.pipe(c)
	}
}

// track records c, or closes it while the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

// pipe copies both ways until either side ends, then closes both.
func (p *proxy) pipe(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer upstream.Close()
	if !p.track(upstream) {
		return
	}
	defer p.untrack(client, upstream)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(upstream, client)
		upstream.Close()
	}()
	_, _ = io.Copy(client, upstream)
	client.Close()
	<-done
}
