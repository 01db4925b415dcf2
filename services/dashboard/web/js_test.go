package web_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/dashboard/web"
	"github.com/eventedge/eventedge/services/internal/browsertest"
)

// jsResult is one case of a testdata/*.test.js file, as harness.js reports
// it.
type jsResult struct {
	File    string `json:"file"`
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// jsRun is what the runner page publishes as window.jsTests.
type jsRun struct {
	Done    bool       `json:"done"`
	Results []jsResult `json:"results"`
	Errors  []string   `json:"errors"` // window errors and unhandled rejections
}

// runnerPage imports harness.js and runs the files (%s: a JSON array of
// URLs). Errors the tests do not catch (a throw in a timer, a rejected
// promise nobody awaits) are collected as well: they fail the Go test.
const runnerPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dashboard JS unit tests</title></head>
<body>
<script>
  window.jsTests = { done: false, results: [], errors: [] };
  addEventListener("error", (e) => jsTests.errors.push("error: " + (e.error?.stack ?? e.message) + " (" + e.filename + ":" + e.lineno + ")"));
  addEventListener("unhandledrejection", (e) => jsTests.errors.push("unhandled rejection: " + (e.reason?.stack ?? e.reason)));
</script>
<script type="module">
  try {
    const { run } = await import("/testdata/harness.js");
    jsTests.results = await run(%s);
  } catch (err) {
    jsTests.errors.push("runner: " + (err?.stack ?? err));
  }
  await new Promise((resolve) => setTimeout(resolve)); // let a late rejection be reported
  jsTests.done = true;
</script>
</body></html>
`

// TestJS runs the unit tests of the app's pure modules (testdata/*.test.js,
// which import the modules from static/js by URL) in headless Chromium,
// since CI has no Node. Each JS case is a subtest named file/case.
func TestJS(t *testing.T) {
	browsertest.Skip(t)
	paths, err := filepath.Glob(filepath.Join("testdata", "*.test.js"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/*.test.js (err %v)", err)
	}
	var files []string
	for _, p := range paths {
		files = append(files, "/testdata/"+filepath.Base(p))
	}
	list, err := json.Marshal(files)
	if err != nil {
		t.Fatal(err)
	}
	page := fmt.Sprintf(runnerPage, list)

	mux := http.NewServeMux()
	mux.Handle("/testdata/", http.StripPrefix("/testdata/", http.FileServer(http.Dir("testdata"))))
	mux.Handle("/", http.FileServerFS(web.Files())) // the app as embedded in the binary
	mux.HandleFunc("/__jstest", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(noCache(mux))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	tab := browsertest.Start(t, browsertest.Options{}).Tab()
	tab.Navigate(srv.URL + "/__jstest")
	tab.WaitFor("window.jsTests && window.jsTests.done", 30*time.Second, "the JS tests to finish")
	got := browsertest.Eval[jsRun](tab, "window.jsTests")

	if len(got.Errors) > 0 {
		t.Errorf("the page threw:\n%s", strings.Join(got.Errors, "\n"))
	}
	if len(got.Results) == 0 {
		t.Fatal("no JS test ran")
	}
	byFile := map[string][]jsResult{}
	var order []string
	for _, r := range got.Results {
		if _, ok := byFile[r.File]; !ok {
			order = append(order, r.File)
		}
		byFile[r.File] = append(byFile[r.File], r)
	}
	for _, file := range order {
		t.Run(file, func(t *testing.T) {
			for _, r := range byFile[file] {
				t.Run(r.Name, func(t *testing.T) {
					if !r.OK {
						t.Error(r.Message)
					}
				})
			}
		})
	}
	for _, p := range paths {
		if _, ok := byFile[filepath.Base(p)]; !ok {
			t.Errorf("%s: no result", p)
		}
	}
	t.Logf("%d JS tests in %d files", len(got.Results), len(order))
}

// noCache makes the browser read every file again (its profile is new for
// each test anyway) and states the JavaScript type module scripts need,
// whatever the machine's MIME table says.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasSuffix(r.URL.Path, ".js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		h.ServeHTTP(w, r)
	})
}
