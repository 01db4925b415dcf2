package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
)

func TestDevUsers(t *testing.T) {
	f := start(t, devOptions(nil))
	r := get(t, f.url+"/dev/users")
	if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /dev/users = %d %s", r.code, r.header.Get("Content-Type"))
	}
	var users []struct {
		ID, Sub, Name, Description string
		Permissions                []string
	}
	if err := json.Unmarshal([]byte(r.body), &users); err != nil {
		t.Fatalf("users %s: %v", r.body, err)
	}
	want := []struct {
		id, sub string
		perms   []string
	}{
		{"viewer", "u2", []string{"tasks:read", "system:read"}},
		{"member", "u1", []string{"tasks:read", "tasks:write", "logs:read", "system:read"}},
		{"admin", "admin", []string{"admin"}},
	}
	if len(users) != len(want) {
		t.Fatalf("%d users, want %d: %s", len(users), len(want), r.body)
	}
	for i, w := range want {
		u := users[i]
		if u.ID != w.id || u.Sub != w.sub || !slices.Equal(u.Permissions, w.perms) || u.Name == "" || u.Description == "" {
			t.Errorf("user %d = %+v, want id %s sub %s permissions %v with a name and a description", i, u, w.id, w.sub, w.perms)
		}
	}
	if users[0].Name != "Vic Viewer" {
		t.Errorf("viewer's name %q, want Vic Viewer", users[0].Name)
	}
}

// tokenAnswer is the answer of POST /dev/token.
type tokenAnswer struct {
	Token, ExpiresAt, User, Sub, Project string
}

// claims are a development token's claims as the edge and the app read
// them.
type claims struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Projects    []string `json:"projects"`
	jwt.RegisteredClaims
}

func postToken(t *testing.T, f *fixture, body string) response {
	t.Helper()
	return do(t, http.MethodPost, f.url+"/dev/token", body, "Content-Type", "application/json")
}

// TestDevToken mints a token for each demo user and verifies it as the edge
// does: HS256 with the development secret, with sub, name, permissions,
// projects, iat and exp.
func TestDevToken(t *testing.T) {
	f := start(t, devOptions(func(o *server.Options) { o.DevTokenTTL = 30 * time.Minute }))
	for _, tc := range []struct {
		user, project, sub, name string
		perms, projects          []string
	}{
		{"viewer", "demo", "u2", "Vic Viewer", []string{"tasks:read", "system:read"}, []string{"demo"}},
		{"member", "e2e_1-x", "u1", "Mia Member", []string{"tasks:read", "tasks:write", "logs:read", "system:read"}, []string{"e2e_1-x"}},
		{"admin", "demo", "admin", "Ada Admin", []string{"admin"}, []string{"*"}},
	} {
		r := postToken(t, f, `{"user":"`+tc.user+`","project":"`+tc.project+`"}`)
		if r.code != http.StatusOK || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("POST /dev/token %s = %d %q (%s, %s)", tc.user, r.code, r.body, r.header.Get("Content-Type"), r.header.Get("Cache-Control"))
		}
		var ans tokenAnswer
		if err := json.Unmarshal([]byte(r.body), &ans); err != nil {
			t.Fatal(err)
		}
		exp := now.Add(30 * time.Minute)
		if ans.User != tc.user || ans.Sub != tc.sub || ans.Project != tc.project || ans.ExpiresAt != exp.Format(time.RFC3339) {
			t.Errorf("answer %+v, want user %s sub %s project %s expiresAt %s", ans, tc.user, tc.sub, tc.project, exp.Format(time.RFC3339))
		}
		var c claims
		_, err := jwt.ParseWithClaims(ans.Token, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithExpirationRequired())
		if err != nil {
			t.Fatalf("%s's token does not verify: %v", tc.user, err)
		}
		if c.Subject != tc.sub || c.Name != tc.name || !slices.Equal(c.Permissions, tc.perms) || !slices.Equal(c.Projects, tc.projects) {
			t.Errorf("%s's claims %+v", tc.user, c)
		}
		if !c.IssuedAt.Equal(now) || !c.ExpiresAt.Equal(exp) {
			t.Errorf("%s's token: iat %v exp %v, want %v and %v", tc.user, c.IssuedAt, c.ExpiresAt, now, exp)
		}
		if n := counter(t, f.reg, "eventedge_dashboard_dev_tokens_total", map[string]string{"user": tc.user}); n != 1 {
			t.Errorf("dev_tokens{user=%s} = %v, want 1", tc.user, n)
		}
		if strings.Contains(f.logs.String(), ans.Token) {
			t.Errorf("the log holds a token:\n%s", f.logs.String())
		}
	}
	logs := f.logs.String()
	if strings.Count(logs, "development token minted") != 3 || !strings.Contains(logs, `"user":"member"`) || !strings.Contains(logs, `"project":"e2e_1-x"`) {
		t.Errorf("want one log line per token with the user and project:\n%s", logs)
	}
}

// TestDevTokenErrors: every refusal is a JSON {"error": …} with the
// status that says why, and mints nothing.
func TestDevTokenErrors(t *testing.T) {
	f := start(t, devOptions(nil))
	for _, tc := range []struct {
		name, method, contentType, body string
		code                            int
		want                            string
	}{
		{"GET", http.MethodGet, "", "", 405, "GET not allowed; use POST"},
		{"PUT", http.MethodPut, "application/json", `{"user":"member","project":"demo"}`, 405, "use POST"},
		{"no content type", http.MethodPost, "", `{"user":"member","project":"demo"}`, 415, "Content-Type must be application/json"},
		{"form", http.MethodPost, "application/x-www-form-urlencoded", "user=member&project=demo", 415, "application/json"},
		{"text", http.MethodPost, "text/plain", `{"user":"member","project":"demo"}`, 415, "application/json"},
		{"empty", http.MethodPost, "application/json", "", 400, "empty body"},
		{"not JSON", http.MethodPost, "application/json", "user=member", 400, "bad JSON: invalid character"},
		{"truncated", http.MethodPost, "application/json", `{"user":"member"`, 400, "bad JSON: unexpected EOF"},
		{"array", http.MethodPost, "application/json", `["member"]`, 400, "bad JSON: cannot unmarshal array"},
		{"wrong type", http.MethodPost, "application/json", `{"user":1,"project":"demo"}`, 400, "bad JSON: cannot unmarshal number"},
		{"unknown field", http.MethodPost, "application/json", `{"user":"member","project":"demo","ttl":"99h"}`, 400, `unknown field "ttl"`},
		{"two values", http.MethodPost, "application/json", `{"user":"member","project":"demo"} {}`, 400, "more than one JSON value"},
		{"trailing garbage", http.MethodPost, "application/json", `{"user":"member","project":"demo"}x`, 400, "bad JSON: invalid character 'x'"},
		{"unknown user", http.MethodPost, "application/json", `{"user":"root","project":"demo"}`, 400, `unknown user "root"; want viewer, member or admin`},
		{"no user", http.MethodPost, "application/json", `{"project":"demo"}`, 400, `unknown user ""`},
		{"no project", http.MethodPost, "application/json", `{"user":"member"}`, 400, `project "": want 1-64 characters`},
		{"bad project", http.MethodPost, "application/json", `{"user":"member","project":"a b"}`, 400, `project "a b"`},
		{"project path", http.MethodPost, "application/json", `{"user":"admin","project":"../x"}`, 400, `project "../x"`},
		{"project *", http.MethodPost, "application/json", `{"user":"admin","project":"*"}`, 400, `project "*"`},
		{"long project", http.MethodPost, "application/json", `{"user":"member","project":"` + strings.Repeat("p", 65) + `"}`, 400, "1-64 characters"},
		{"too large", http.MethodPost, "application/json", `{"user":"member",` + strings.Repeat(" ", server.MaxTokenRequestBytes) + `"project":"demo"}`, 413, "body larger than 4096 bytes"},
	} {
		r := do(t, tc.method, f.url+"/dev/token", tc.body, "Content-Type", tc.contentType)
		var doc struct{ Error string }
		err := json.Unmarshal([]byte(r.body), &doc)
		if r.code != tc.code || err != nil || !strings.Contains(doc.Error, tc.want) || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q (%s), want %d with an error containing %q", tc.name, r.code, r.body, r.header.Get("Content-Type"), tc.code, tc.want)
		}
		if tc.code == 405 && r.header.Get("Allow") != http.MethodPost {
			t.Errorf("%s: Allow %q, want POST", tc.name, r.header.Get("Allow"))
		}
	}
	for _, u := range []string{"viewer", "member", "admin"} {
		if n := counter(t, f.reg, "eventedge_dashboard_dev_tokens_total", map[string]string{"user": u}); n != 0 {
			t.Errorf("dev_tokens{user=%s} = %v after refusals only, want 0", u, n)
		}
	}
}

// TestDevTokenBodyLimit: a body of exactly MaxTokenRequestBytes is read; a
// Content-Type with parameters is JSON.
func TestDevTokenBodyLimit(t *testing.T) {
	f := start(t, devOptions(nil))
	body := `{"user":"member","project":"demo"}`
	body = body[:len(body)-1] + strings.Repeat(" ", server.MaxTokenRequestBytes-len(body)) + "}"
	r := do(t, http.MethodPost, f.url+"/dev/token", body, "Content-Type", "application/json; charset=utf-8")
	if r.code != http.StatusOK {
		t.Errorf("a %d-byte body: %d %q, want 200", len(body), r.code, r.body)
	}
}

// TestDevLoginLoopbackOnly: the development login answers only requests
// whose Host names the loopback interface, so that neither another machine
// nor a page of another site rebinding its name to 127.0.0.1 can mint
// tokens. The board itself is served on any Host.
func TestDevLoginLoopbackOnly(t *testing.T) {
	f := start(t, devOptions(nil))
	send := func(method, path, host, body string) int {
		t.Helper()
		req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	const tok = `{"user":"admin","project":"p1"}`
	for _, host := range []string{"localhost:8082", "LOCALHOST", "127.0.0.1:8082", "127.1.2.3", "[::1]:8082"} {
		if code := send(http.MethodPost, "/dev/token", host, tok); code != http.StatusOK {
			t.Errorf("POST /dev/token with Host %s = %d, want 200", host, code)
		}
	}
	for _, host := range []string{"evil.example:8082", "192.168.1.20:8082", "localhost.evil.example", "[::2]:8082", "0.0.0.0:8082"} {
		for _, path := range []string{"/dev/token", "/dev/users", "/login"} {
			method := http.MethodGet
			if path == "/dev/token" {
				method = http.MethodPost
			}
			if code := send(method, path, host, tok); code != http.StatusForbidden {
				t.Errorf("%s %s with Host %q = %d, want 403", method, path, host, code)
			}
		}
		if code := send(http.MethodGet, "/", host, ""); code != http.StatusOK {
			t.Errorf("GET / with Host %q = %d, want 200", host, code)
		}
	}
	if n := counter(t, f.reg, "eventedge_dashboard_dev_tokens_total", map[string]string{"user": "admin"}); n != 5 {
		t.Errorf("%v admin tokens minted, want 5 (the loopback hosts only)", n)
	}
}
