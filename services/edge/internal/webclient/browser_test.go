package webclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/positions"
	"github.com/eventedge/eventedge/services/internal/browsertest"
)

// TestBrowserResume runs client.js in a real headless Chromium against a
// real edge node and NATS: the page receives 20 events, the network between
// browser and edge is cut, 20 more events are published while the client
// cannot reconnect, and once the network is back the page must hold all of
// them and a later one exactly once, in order. Then a new client of the
// same device resumes from the position the first one acknowledged.
func TestBrowserResume(t *testing.T) {
	skipWithoutChromium(t)
	nats := edgetest.StartNATS(t)
	_, js := nats.Connect(t)
	edge := edgetest.StartEdge(t, nats, allowPages)
	proxy := startProxy(t, edge.Addr().String())
	page := openPage(t, edge, proxy)

	page.track("a", map[string]any{"token": token(t, time.Hour), "deviceId": "browser-test"})
	page.waitFor("__t.a.sub.position !== null", "the subscribe reply")

	var want []int64
	publish := publisher(t, js, &want)
	publish(20)
	page.waitFor("__t.a.seqs.length >= 20", "the first 20 events")

	proxy.Cut()
	page.waitFor(`__t.a.states.at(-1) === "reconnecting"`, "the client to notice the cut")
	publish(20) // while the client cannot connect
	proxy.Restore()
	page.waitFor(`__t.a.states.at(-1) === "connected"`, "the client to reconnect")
	publish(1) // after the resume: delivered live, after the replayed ones
	page.waitFor(fmt.Sprintf("__t.a.seqs.length >= %d", len(want)), "all events")

	if got := eval[[]int64](page, "__t.a.seqs"); !slices.Equal(got, want) {
		t.Fatalf("page received seqs\n%v\nwant exactly\n%v", got, want)
	}
	if states := eval[[]string](page, "__t.a.states"); !inOrder(states, "connecting", "connected", "reconnecting", "connected") {
		t.Errorf("states %v: want connecting, connected, reconnecting, connected in that order", states)
	}
	// onSubscribed: once for the first subscribe (the reply's position, before
	// any event), once for the resume, with the position it resumed from.
	if got := eval[[]int64](page, "__t.a.subscribed"); len(got) != 2 || got[0] >= want[0] || got[1] != want[19] {
		t.Errorf("onSubscribed calls %v: want [<first seq %d, %d]", got, want[0], want[19])
	}
	// A second subscription to the joined room is told it is subscribed too.
	eval[any](page, `__t.a.client.subscribe("project:p1", {onSubscribed: (seq) => (__t.a.second = seq)}), null`)
	page.waitFor("__t.a.second !== undefined", "onSubscribed of a second subscription")
	if got := eval[int64](page, "__t.a.second"); got != want[len(want)-1] {
		t.Errorf("second subscription's onSubscribed(%d), want the room's position %d", got, want[len(want)-1])
	}
	// The 20 events published during the cut came from the stream (resume
	// with since).
	if n := testutil.ToFloat64(edge.Metrics().Replayed); n < 20 {
		t.Errorf("replayed %v events, want at least 20", n)
	}

	// The client acked its position for its device: once it is stored, a
	// new client of the same device (a reloaded page) that subscribes
	// without position gets exactly what was published since.
	kv, err := js.KeyValue(context.Background(), positions.Bucket)
	if err != nil {
		t.Fatalf("positions bucket: %v", err)
	}
	key := positions.Key("u1", "browser-test", room.Project("p1"))
	edgetest.Eventually(t, 10*time.Second, func() bool {
		e, err := kv.Get(context.Background(), key)
		return err == nil && string(e.Value()) == fmt.Sprint(want[len(want)-1])
	}, "the acked position to be stored")
	eval[any](page, "__t.a.client.close()")
	seen := len(want)
	publish(3)
	page.track("reloaded", map[string]any{"token": token(t, time.Hour), "deviceId": "browser-test"})
	page.waitFor("__t.reloaded.seqs.length >= 3", "the reloaded client's events")
	if got := eval[[]int64](page, "__t.reloaded.seqs"); !slices.Equal(got, want[seen:]) {
		t.Errorf("reloaded client received %v, want %v", got, want[seen:])
	}
	if n := eval[int](page, "__t.a.seqs.length"); n != seen {
		t.Errorf("the closed client received %d events, want %d", n, seen)
	}
	page.screenshot()
}

// TestBrowserCloseCodes checks the reactions to the server's close codes
// that a real node sends: 4001 when a token expires (a client with getToken
// reconnects with a fresh token and resumes; one without stops in
// "unauthorized") and 1012 when its node shuts down (reconnect at once, here
// to another node, and resume).
func TestBrowserCloseCodes(t *testing.T) {
	skipWithoutChromium(t)
	nats := edgetest.StartNATS(t)
	_, js := nats.Connect(t)
	noLeeway := func(o *node.Options) { allowPages(o); o.Auth.Leeway = -1 }
	edge1 := edgetest.StartEdge(t, nats, func(o *node.Options) { noLeeway(o); o.Name = "edge-1" })
	edge2 := edgetest.StartEdge(t, nats, func(o *node.Options) { noLeeway(o); o.Name = "edge-2" })
	proxy := startProxy(t, edge1.Addr().String())
	page := openPage(t, edge1, proxy)

	// JWT expiry has whole seconds: these tokens expire in 2 to 3 s.
	short := token(t, 3*time.Second)
	page.track("refreshing", map[string]any{"token": short, "getToken": true})
	page.track("stuck", map[string]any{"token": short})
	page.track("restarted", map[string]any{"token": token(t, time.Hour), "deviceId": "browser-restart"})
	for _, name := range []string{"refreshing", "stuck", "restarted"} {
		page.waitFor("__t."+name+".sub.position !== null", name+" subscribed")
	}
	var want []int64
	publish := publisher(t, js, &want)
	publish(3)

	// 4001 token expired.
	page.waitFor(`__t.stuck.states.at(-1) === "unauthorized"`, "the client without getToken to stop")
	page.waitFor(`__t.refreshing.errors.includes("4001 token expired") && __t.refreshing.states.at(-1) === "connected"`,
		"the client with getToken to reconnect")
	publish(3)
	page.waitFor(fmt.Sprintf("__t.refreshing.seqs.length >= %d", len(want)), "the refreshed client's events")
	if got := eval[[]int64](page, "__t.refreshing.seqs"); !slices.Equal(got, want) {
		t.Errorf("refreshed client received seqs %v, want %v", got, want)
	}
	if n := eval[int](page, "__t.refreshing.tokens"); n < 1 {
		t.Errorf("getToken called %d times, want at least once", n)
	}
	if errs := eval[[]string](page, "__t.stuck.errors"); !slices.Contains(errs, "4001 token expired") {
		t.Errorf("stuck client's errors %v, want 4001 token expired", errs)
	}

	// 1012 service restart: the node shuts down; the proxy now leads to
	// another node, as a load balancer would.
	proxy.SetTarget(edge2.Addr().String())
	if err := edge1.Shutdown(); err != nil {
		t.Fatalf("shutdown edge-1: %v", err)
	}
	publish(3)
	for _, name := range []string{"refreshing", "restarted"} {
		page.waitFor(fmt.Sprintf(`__t.%s.last.node === "edge-2" && __t.%s.last.state === "connected" && __t.%s.seqs.length >= %d`,
			name, name, name, len(want)), name+" on edge-2 with every event")
		if got := eval[[]int64](page, "__t."+name+".seqs"); !slices.Equal(got, want) {
			t.Errorf("%s received seqs %v, want %v", name, got, want)
		}
		if errs := eval[[]string](page, "__t."+name+".errors"); !slices.Contains(errs, "1012 service restart") {
			t.Errorf("%s errors %v, want 1012 service restart", name, errs)
		}
	}
	page.screenshot()
}

// TestBrowserReset keeps 5 events per room and the client away while 10
// are published: on resume the server sends reset (history_truncated), the
// page's onReset runs, and delivery continues after the reset's seq.
func TestBrowserReset(t *testing.T) {
	skipWithoutChromium(t)
	cfg := events.StreamConfig{MaxMsgsPerSubject: 5}
	nats := edgetest.StartNATS(t)
	_, js := nats.ConnectWith(t, cfg)
	edge := edgetest.StartEdge(t, nats, func(o *node.Options) { allowPages(o); o.Stream = cfg })
	proxy := startProxy(t, edge.Addr().String())
	page := openPage(t, edge, proxy)

	page.track("a", map[string]any{"token": token(t, time.Hour)})
	page.waitFor("__t.a.sub.position !== null", "the subscribe reply")
	var published []int64
	publish := publisher(t, js, &published)
	publish(3)
	page.waitFor("__t.a.seqs.length >= 3", "the first 3 events")

	proxy.Cut()
	page.waitFor(`__t.a.states.at(-1) === "reconnecting"`, "the client to notice the cut")
	publish(10) // the room keeps the last 5: events 4 to 8 are gone
	proxy.Restore()
	page.waitFor("__t.a.resets.length > 0", "a reset")
	page.waitFor("__t.a.sub.position === "+fmt.Sprint(published[12]), "the position to move to the reset's seq")
	publish(1)
	page.waitFor("__t.a.seqs.length >= 4", "the event after the reset")

	type reset struct {
		Room   string `json:"room"`
		Reason string `json:"reason"`
		Seq    int64  `json:"seq"`
	}
	want := reset{Room: "project:p1", Reason: "history_truncated", Seq: published[12]}
	if got := eval[[]reset](page, "__t.a.resets"); len(got) != 1 || got[0] != want {
		t.Errorf("resets %+v, want [%+v]", got, want)
	}
	// Before the reset: what was delivered; after it: only what follows
	// its seq (the page reloads the rest from the REST API).
	if got, want := eval[[]int64](page, "__t.a.seqs"), append(published[:3:3], published[13]); !slices.Equal(got, want) {
		t.Errorf("seqs %v, want %v", got, want)
	}
}

func skipWithoutChromium(t *testing.T) { browsertest.Skip(t) }

// allowPages lets the test pages (http://127.0.0.1:<port>) connect.
func allowPages(o *node.Options) { o.Server.AllowedOrigins = []string{"127.0.0.1:*"} }

func token(t *testing.T, ttl time.Duration) string {
	return edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, ttl)
}

// publisher returns a func that publishes n task_updated events to
// project:p1 and appends their seqs to want.
func publisher(t *testing.T, js jetstream.JetStream, want *[]int64) func(n int) {
	return func(n int) {
		for range n {
			ev := events.TaskUpdated(room.Project("p1"), "u9", fmt.Sprintf("t%d", len(*want)),
				&pb.Task{Status: pb.TaskStatus_TASK_STATUS_RUNNING}, "status")
			*want = append(*want, int64(edgetest.Publish(t, js, ev).Sequence))
		}
	}
}

type pageData struct{ ClientURL, WSURL string }

// pageTemplate is a page on another origin than the edge, as a dashboard
// would be: it imports the edge's /v1/client.js (CORS) and connects through
// the proxy. track(name, options) connects a client subscribed to
// project:p1 and records what it reports in __t[name]; the page shows it.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>eventedge browser client test</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 24px; }
  td, th { padding: 2px 12px; text-align: left; white-space: nowrap; }
  td:last-child { font-family: monospace; }
</style>
</head>
<body>
<h1>eventedge: project p1</h1>
<table><thead><tr><th>client</th><th>state</th><th>node</th><th>ping</th><th>events</th><th>seqs</th></tr></thead>
<tbody id="clients"></tbody></table>
<script type="module">
const { connect } = await import({{.ClientURL}});
window.__t = {};
const rows = document.getElementById("clients");

window.track = (name, options) => {
  const t = (window.__t[name] = { seqs: [], states: [], errors: [], resets: [], subscribed: [], tokens: 0, last: null });
  const row = rows.insertRow();
  const render = () => {
    const s = t.last ?? {};
    const cells = [name, s.state, s.node ?? "", s.latencyMs !== null ? s.latencyMs + " ms" : "", t.seqs.length, t.seqs.join(" ")];
    row.replaceChildren(...cells.map((c) => Object.assign(document.createElement("td"), { textContent: c })));
  };
  const getToken = options.getToken && (async () => {
    t.tokens++;
    return (await fetch("/token")).text();
  });
  const client = connect({
    url: {{.WSURL}}, clientVersion: "browser-test/1", baseDelayMs: 100, maxDelayMs: 1000, ...options, getToken,
  });
  client.onState((s) => {
    t.states.push(s.state);
    if (s.error && s.error !== t.last?.error) t.errors.push(s.error);
    t.last = s;
    render();
  });
  t.client = client;
  t.sub = client.subscribe("project:p1", {
    onEvent: (event, msg) => {
      t.seqs.push(msg.seq);
      render();
    },
    onReset: (msg) => t.resets.push(msg),
    onSubscribed: (seq) => t.subscribed.push(seq),
  });
};
</script>
</body>
</html>
`))

// openPage serves the test page, starts Chromium and loads the page. The
// page's clients connect through proxy; its getToken fetches a fresh token.
func openPage(t *testing.T, edge *edgetest.Edge, proxy *proxy) browserPage {
	d := pageData{
		ClientURL: "http://" + edge.Addr().String() + "/v1/client.js",
		WSURL:     "ws://" + proxy.Addr() + "/v1/ws",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pageTemplate.Execute(w, d); err != nil {
			t.Errorf("page: %v", err)
		}
	})
	mux.HandleFunc("GET /token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, token(t, time.Hour))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	tab := browsertest.Start(t, browsertest.Options{Width: 1000, Height: 700}).Tab()
	tab.Navigate(srv.URL)
	p := browserPage{t: t, ctx: tab.Ctx, tab: tab}
	p.waitFor(`typeof window.track === "function"`, "the page to load client.js")
	return p
}

// browserPage is the loaded page.
type browserPage struct {
	t   *testing.T
	ctx context.Context
	tab *browsertest.Tab
}

func eval[T any](p browserPage, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// track connects a client in the page; options are connect's, except
// getToken: true, which fetches fresh tokens from the test server.
func (p browserPage) track(name string, options map[string]any) {
	p.t.Helper()
	js, err := json.Marshal(options)
	if err != nil {
		p.t.Fatal(err)
	}
	eval[any](p, fmt.Sprintf("track(%q, %s)", name, js))
}

// waitFor polls the boolean expression cond in the page.
func (p browserPage) waitFor(cond, what string) {
	p.t.Helper()
	edgetest.Eventually(p.t, 15*time.Second, func() bool {
		return eval[bool](p, "Boolean("+cond+")")
	}, what)
}

// screenshot saves the page as a PNG in the test's temp dir: proof that it
// rendered, not a golden file.
func (p browserPage) screenshot() {
	p.t.Helper()
	p.tab.Screenshot(p.t.TempDir(), "page.png")
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
//
// edgetest.Proxy's Cut lets clients reconnect at once; this one keeps them
// out until Restore, so that events are published while they are away.
type proxy struct {
	ln net.Listener
	wg sync.WaitGroup // the accept loop and one per connection

	mu     sync.Mutex
	target string                // guarded by mu
	conns  map[net.Conn]struct{} // guarded by mu
	down   bool                  // guarded by mu
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

// SetTarget sends new connections to target.
func (p *proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
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
	p.mu.Lock()
	target := p.target
	p.mu.Unlock()
	upstream, err := net.Dial("tcp", target)
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
