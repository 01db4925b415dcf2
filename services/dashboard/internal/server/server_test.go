package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
	"github.com/eventedge/eventedge/services/dashboard/web"
)

func etagOf(body string) string {
	sum := sha256.Sum256([]byte(body))
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// defaultCSP is the policy with the default edge and API URLs.
const defaultCSP = "default-src 'self'; script-src 'self' http://localhost:8080; " +
	"connect-src 'self' ws://localhost:8080 http://localhost:8081 http://localhost:8080; " +
	"img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"

// TestFiles checks every file of the test app: its Content-Type, a strong
// ETag of its content, revalidation on every use, and the headers every
// answer carries; the CSP on HTML only.
func TestFiles(t *testing.T) {
	f := start(t, devOptions(nil))
	for _, tc := range []struct {
		path, file, contentType string
	}{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/login", "login.html", "text/html; charset=utf-8"},
		{"/app.css", "app.css", "text/css; charset=utf-8"},
		{"/favicon.svg", "favicon.svg", "image/svg+xml"},
		{"/js/main.js", "js/main.js", "text/javascript; charset=utf-8"},
		{"/js/view.js", "js/view.js", "text/javascript; charset=utf-8"},
		{"/img/logo.png", "img/logo.png", "image/png"},
		{"/help.html", "help.html", "text/html; charset=utf-8"},
		{"/blob.bin", "blob.bin", "application/octet-stream"},
		{"/?token=not-logged", "index.html", "text/html; charset=utf-8"},
	} {
		r := get(t, f.url+tc.path)
		want := string(files[tc.file].Data)
		if r.code != http.StatusOK || r.body != want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, r.code, r.body, want)
			continue
		}
		h := r.header
		for name, want := range map[string]string{
			"Content-Type":           tc.contentType,
			"Cache-Control":          "no-cache",
			"ETag":                   etagOf(want),
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("GET %s: %s %q, want %q", tc.path, name, got, want)
			}
		}
		wantCSP := ""
		if strings.HasPrefix(tc.contentType, "text/html") {
			wantCSP = defaultCSP
		}
		if got := h.Get("Content-Security-Policy"); got != wantCSP {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", tc.path, got, wantCSP)
		}

		// Revalidation: the same ETag is 304 without a body; another is
		// the file.
		nm := get(t, f.url+tc.path, "If-None-Match", etagOf(want))
		if nm.code != http.StatusNotModified || nm.body != "" || nm.header.Get("ETag") != etagOf(want) {
			t.Errorf("GET %s If-None-Match: %d %q ETag %q, want 304 without a body", tc.path, nm.code, nm.body, nm.header.Get("ETag"))
		}
		if nm.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s If-None-Match: 304 without nosniff", tc.path)
		}
		if old := get(t, f.url+tc.path, "If-None-Match", `"stale"`); old.code != http.StatusOK || old.body != want {
			t.Errorf("GET %s with a stale ETag: %d, want 200 with the file", tc.path, old.code)
		}
	}
}

// TestNotFound: only the routes and the app's files exist; each page has
// one URL, and development routes do not exist in production.
func TestNotFound(t *testing.T) {
	dev := start(t, devOptions(nil))
	prod := start(t, server.Options{Files: files})
	paths := []string{"/index.html", "/login.html", "/js", "/js/", "/img/", "/nope", "/app.css/", "/js/../app.css",
		"/login/", "/config.json/", "/dev", "/dev/", "/dev/user", "/JS/main.js", "//app.css"}
	for _, p := range paths {
		for name, f := range map[string]*fixture{"dev": dev, "prod": prod} {
			r := get(t, f.url+p)
			if r.code != http.StatusNotFound {
				t.Errorf("%s: GET %s = %d, want 404", name, p, r.code)
			}
			if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: GET %s: 404 without the common headers: %v", name, p, r.header)
			}
		}
	}
	for _, p := range []string{"/login", "/dev/users"} {
		if r := get(t, prod.url+p); r.code != http.StatusNotFound {
			t.Errorf("production: GET %s = %d %q, want 404", p, r.code, r.body)
		}
	}
	r := do(t, http.MethodPost, prod.url+"/dev/token", `{"user":"admin","project":"demo"}`, "Content-Type", "application/json")
	if r.code != http.StatusNotFound || strings.Contains(r.body, "token") {
		t.Errorf("production: POST /dev/token = %d %q, want 404", r.code, r.body)
	}
	if n := counter(t, prod.reg, "eventedge_dashboard_http_requests_total", map[string]string{"route": "not_found", "code": "404"}); n != float64(len(paths)+3) {
		t.Errorf("not_found/404 counted %v times, want %d", n, len(paths)+3)
	}
}

func TestMethods(t *testing.T) {
	f := start(t, devOptions(nil))
	for _, p := range []string{"/", "/login", "/js/main.js", "/config.json", "/dev/users"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions} {
			r := do(t, m, f.url+p, "")
			if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s = %d Allow %q, want 405 Allow \"GET, HEAD\"", m, p, r.code, r.header.Get("Allow"))
			}
		}
		head := do(t, http.MethodHead, f.url+p, "")
		if head.code != http.StatusOK || head.body != "" {
			t.Errorf("HEAD %s = %d %q, want 200 without a body", p, head.code, head.body)
		}
	}
	// The JSON endpoints answer errors in JSON.
	r := do(t, http.MethodPost, f.url+"/config.json", "")
	var doc struct{ Error string }
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil || !strings.Contains(doc.Error, "POST not allowed") {
		t.Errorf("POST /config.json: %q (%v), want a JSON error", r.body, err)
	}
	if r := do(t, http.MethodHead, f.url+"/", ""); r.header.Get("Content-Length") != "35" {
		t.Errorf("HEAD / Content-Length %q, want 35", r.header.Get("Content-Length"))
	}
}

// configDoc is /config.json as the app reads it.
type configDoc struct {
	EdgeURL   string `json:"edgeUrl"`
	ClientURL string `json:"clientUrl"`
	APIURL    string `json:"apiUrl"`
	Dev       bool   `json:"dev"`
	LoginURL  string `json:"loginUrl"`
	Version   string `json:"version"`
}

// TestConfigAndCSP checks /config.json and the policy for URL settings:
// defaults, absolute URLs of other origins, and paths (the dashboard's
// own origin, covered by 'self').
func TestConfigAndCSP(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts server.Options
		doc  configDoc
		csp  string // the script-src and connect-src directives
	}{
		{
			name: "defaults (production)",
			opts: server.Options{Files: files},
			doc:  configDoc{"ws://localhost:8080/v1/ws", "http://localhost:8080/v1/client.js", "http://localhost:8081", false, "", "dev"},
			csp:  "script-src 'self' http://localhost:8080; connect-src 'self' ws://localhost:8080 http://localhost:8081 http://localhost:8080",
		},
		{
			name: "absolute",
			opts: server.Options{Files: files, EdgeURL: "wss://edge.example.com/rt/v1/ws", APIURL: "https://api.example.com/tasks/",
				LoginURL: "https://app.example.com/login?next=dash", Version: "1.2.3"},
			doc: configDoc{"wss://edge.example.com/rt/v1/ws", "https://edge.example.com/rt/v1/client.js", "https://api.example.com/tasks", false,
				"https://app.example.com/login?next=dash", "1.2.3"},
			csp: "script-src 'self' https://edge.example.com; connect-src 'self' wss://edge.example.com https://api.example.com https://edge.example.com",
		},
		{
			name: "paths (one ingress)",
			opts: devOptions(func(o *server.Options) { o.EdgeURL, o.APIURL, o.LoginURL = "/edge/v1/ws", "/api/", "/sso" }),
			doc:  configDoc{"/edge/v1/ws", "/edge/v1/client.js", "/api", true, "/sso", "dev"},
			csp:  "script-src 'self'; connect-src 'self'",
		},
		{
			name: "API on the edge's origin is listed once",
			opts: server.Options{Files: files, EdgeURL: "wss://x.example.com/v1/ws", APIURL: "https://x.example.com/api"},
			doc:  configDoc{"wss://x.example.com/v1/ws", "https://x.example.com/v1/client.js", "https://x.example.com/api", false, "", "dev"},
			csp:  "script-src 'self' https://x.example.com; connect-src 'self' wss://x.example.com https://x.example.com",
		},
		{
			name: "edge a path, API absolute",
			opts: server.Options{Files: files, EdgeURL: "/v1/ws", APIURL: "http://127.0.0.1:8081"},
			doc:  configDoc{"/v1/ws", "/v1/client.js", "http://127.0.0.1:8081", false, "", "dev"},
			csp:  "script-src 'self'; connect-src 'self' http://127.0.0.1:8081",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, tc.opts)
			r := get(t, f.url+"/config.json")
			if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("GET /config.json = %d %s, Cache-Control %q", r.code, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
			}
			var doc configDoc
			dec := json.NewDecoder(strings.NewReader(r.body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("config %q: %v", r.body, err)
			}
			if doc != tc.doc {
				t.Errorf("config\n got %+v\nwant %+v", doc, tc.doc)
			}
			for _, key := range []string{`"edgeUrl"`, `"clientUrl"`, `"apiUrl"`, `"dev"`, `"loginUrl"`, `"version"`} {
				if !strings.Contains(r.body, key) {
					t.Errorf("config %s lacks %s (zero values are sent too)", r.body, key)
				}
			}
			want := "default-src 'self'; " + tc.csp + "; img-src 'self' data:; style-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'"
			if got := get(t, f.url+"/").header.Get("Content-Security-Policy"); got != want {
				t.Errorf("CSP\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	noIndex := fstest.MapFS{"login.html": files["login.html"]}
	noLogin := fstest.MapFS{"index.html": files["index.html"]}
	for _, tc := range []struct {
		name string
		opts server.Options
		want string
	}{
		{"edge URL", server.Options{Files: files, EdgeURL: "http://x/v1/ws"}, "edge URL: "},
		{"edge path", server.Options{Files: files, EdgeURL: "ws://x/ws"}, "path must end in /v1/ws"},
		{"API URL", server.Options{Files: files, APIURL: "ftp://x"}, "API URL: "},
		{"login URL", server.Options{Files: files, LoginURL: "javascript:alert(1)"}, "login URL: "},
		{"dev without secret", server.Options{Files: files, Dev: true}, "at least 32 bytes"},
		{"short secret", devOptions(func(o *server.Options) { o.DevSecret = []byte(secret[:31]) }), "at least 32 bytes"},
		{"secret without dev", server.Options{Files: files, DevSecret: []byte(secret)}, "development mode is off"},
		{"TTL short", devOptions(func(o *server.Options) { o.DevTokenTTL = 59 * time.Second }), "1m-24h"},
		{"TTL long", devOptions(func(o *server.Options) { o.DevTokenTTL = 24*time.Hour + time.Second }), "1m-24h"},
		{"TTL negative", devOptions(func(o *server.Options) { o.DevTokenTTL = -time.Hour }), "1m-24h"},
		{"no index.html", server.Options{Files: noIndex}, "index.html missing"},
		{"dev without login.html", devOptions(func(o *server.Options) { o.Files = noLogin }), "login.html missing"},
		{"unreadable files", server.Options{Files: brokenFS{}}, "app files: "},
	} {
		if _, err := server.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	// Production needs no login page; the edges of the TTL range are fine.
	for _, o := range []server.Options{
		{Files: noLogin},
		devOptions(func(o *server.Options) { o.DevTokenTTL = time.Minute }),
		devOptions(func(o *server.Options) { o.DevTokenTTL = 24 * time.Hour }),
	} {
		if _, err := server.New(o); err != nil {
			t.Errorf("New(%+v) = %v", o, err)
		}
	}
	// One Server per registry: the second one's counters would collide.
	reg := prometheus.NewRegistry()
	if _, err := server.New(server.Options{Files: files, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.New(server.Options{Files: files, Registerer: reg}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("a second Server on one registry: %v, want already registered", err)
	}
}

// brokenFS fails every open.
type brokenFS struct{}

func (brokenFS) Open(string) (fs.File, error) { return nil, errors.New("disk on fire") }

// TestRequestsCounted: every answer is counted by route and status code.
func TestRequestsCounted(t *testing.T) {
	f := start(t, devOptions(nil))
	get(t, f.url+"/")
	get(t, f.url+"/", "If-None-Match", etagOf(string(files["index.html"].Data)))
	get(t, f.url+"/js/main.js")
	get(t, f.url+"/app.css")
	get(t, f.url+"/config.json")
	get(t, f.url+"/dev/token")
	for _, tc := range []struct {
		route, code string
		want        float64
	}{
		{"/", "200", 1}, {"/", "304", 1}, {"asset", "200", 2}, {"/config.json", "200", 1}, {"/dev/token", "405", 1},
	} {
		if n := counter(t, f.reg, "eventedge_dashboard_http_requests_total", map[string]string{"route": tc.route, "code": tc.code}); n != tc.want {
			t.Errorf("requests{route=%q,code=%q} = %v, want %v", tc.route, tc.code, n, tc.want)
		}
	}
}

// TestEmbeddedApp serves the real app: every file of web/static is
// reachable at its path (the two pages at / and /login) with the right
// Content-Type and ETag.
func TestEmbeddedApp(t *testing.T) {
	f := start(t, server.Options{Dev: true, DevSecret: []byte(secret)})
	app := web.Files()
	n := 0
	err := fs.WalkDir(app, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		body, err := fs.ReadFile(app, name)
		if err != nil {
			return err
		}
		path := "/" + name
		switch name {
		case "index.html":
			path = "/"
		case "login.html":
			path = "/login"
		}
		r := get(t, f.url+path)
		if r.code != http.StatusOK || r.body != string(body) || r.header.Get("ETag") != etagOf(string(body)) {
			t.Errorf("GET %s = %d, ETag %s: not the embedded %s", path, r.code, r.header.Get("ETag"), name)
		}
		ct := r.header.Get("Content-Type")
		switch {
		case strings.HasSuffix(name, ".js") && ct != "text/javascript; charset=utf-8",
			strings.HasSuffix(name, ".css") && ct != "text/css; charset=utf-8",
			strings.HasSuffix(name, ".svg") && ct != "image/svg+xml",
			strings.HasSuffix(name, ".html") && ct != "text/html; charset=utf-8":
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("the embedded app has %d files, want index.html and login.html at least", n)
	}
}
