// Package browsertest runs headless Chromium for tests with chromedp: a
// browser that resolves no host name but 127.0.0.1 (so a page can reach
// nothing but this machine), its console and exceptions kept and printed
// when the test fails, helpers to evaluate, wait and take screenshots.
//
// Chromium is Debian's, at /usr/bin/chromium (`make tools` installs it).
// Tests call Skip when it is missing, so that `go test` on a machine
// without it still runs the rest.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium is the browser's path.
const Chromium = "/usr/bin/chromium"

// Skip skips the test when Chromium is not installed.
func Skip(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Skipf("%s not installed (make tools installs Debian's chromium)", Chromium)
	}
}

// Options configure Start.
type Options struct {
	// Width and Height of the window. Default 1280×900.
	Width, Height int
	// Timeout bounds the browser's whole life. Default 2m.
	Timeout time.Duration
}

// Browser is a running headless Chromium with one tab; more tabs come from
// NewTab. It is stopped when the test ends.
type Browser struct {
	t    testing.TB
	logs *Console
	ctx  context.Context // the first tab
}

// Start starts Chromium and opens its first tab.
func Start(t testing.TB, o Options) *Browser {
	t.Helper()
	Skip(t)
	if o.Width == 0 {
		o.Width, o.Height = 1280, 900
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Minute
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(o.Width, o.Height),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), o.Timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, logs: &Console{}, ctx: ctx}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit
		cancelTimeout()
		if t.Failed() {
			for _, l := range b.logs.All() {
				t.Log("browser:", l)
			}
		}
	})
	// Listen starts the browser.
	if err := b.listen(ctx, "tab 1"); err != nil {
		t.Fatalf("start %s: %v", Chromium, err)
	}
	return b
}

func (b *Browser) listen(ctx context.Context, tab string) error {
	return chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.logs.add(tab + " " + string(ev.Type) + ": " + strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			if d.Exception != nil {
				b.logs.add(tab + " exception: " + d.Text + " " + d.Exception.Description)
			} else {
				b.logs.add(tab + " exception: " + d.Text)
			}
		}
	})
}

// Console is what the browser's pages logged.
func (b *Browser) Console() *Console { return b.logs }

// Tab is the browser's first tab.
func (b *Browser) Tab() *Tab { return &Tab{t: b.t, Ctx: b.ctx} }

// NewTab opens another tab (its own sessionStorage, same cookies).
func (b *Browser) NewTab(name string) *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := b.listen(ctx, name); err != nil {
		b.t.Fatalf("new tab: %v", err)
	}
	return &Tab{t: b.t, Ctx: ctx}
}

// Tab is one page of the browser.
type Tab struct {
	t   testing.TB
	Ctx context.Context
}

// Run runs chromedp actions, failing the test on error.
func (p *Tab) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.Ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// OnNewDocument makes the tab run the script js in every page it loads
// from now on, before the page's own scripts: a place to install
// observers and listeners a test reads later.
func (p *Tab) OnNewDocument(js string) {
	p.t.Helper()
	p.Run(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	}))
}

// Navigate loads url.
func (p *Tab) Navigate(url string) {
	p.t.Helper()
	p.Run(chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](p *Tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls the JavaScript condition cond every 20 ms until it is true,
// failing the test after timeout. It returns how long it waited.
func (p *Tab) WaitFor(cond string, timeout time.Duration, what string) time.Duration {
	p.t.Helper()
	d, err := p.Poll(cond, timeout)
	if err != nil {
		p.t.Fatalf("waiting %s for %s (%s): %v", timeout, what, cond, err)
	}
	return d
}

// Poll is WaitFor returning an error instead of failing.
func (p *Tab) Poll(cond string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, err := chromedp.Run(p.Ctx, chromedp.Evaluate[bool]("Boolean("+cond+")"))
		if err == nil && ok {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return time.Since(start), err
			}
			return time.Since(start), fmt.Errorf("still false")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Screenshot saves the page as a PNG named name in dir and returns its
// path.
func (p *Tab) Screenshot(dir, name string) string {
	p.t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s (%d bytes)", path, len(png))
	return path
}

// Console collects pages' console output and exceptions.
type Console struct {
	mu    sync.Mutex
	lines []string // guarded by mu
}

func (l *Console) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

// All returns every line so far.
func (l *Console) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}
