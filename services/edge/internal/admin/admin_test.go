package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/hub"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

func TestParseListParams(t *testing.T) {
	ok := []struct {
		query string
		want  listParams
	}{
		{"", listParams{limit: DefaultLimit}},
		{"limit=1", listParams{limit: 1}},
		{"limit=1000&cursor=abc234&user=u1&room=project:p1", listParams{limit: 1000, cursor: "abc234", user: "u1", room: "project:p1"}},
		{"room=global", listParams{limit: DefaultLimit, room: "global"}},
		{"user=alice%40example.com", listParams{limit: DefaultLimit, user: "alice@example.com"}},
	}
	for _, tc := range ok {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseListParams(q)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.query, got, err, tc.want)
		}
	}
	bad := []struct{ query, mention string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"limit=", "limit"},
		{"limit=1&limit=2", "limit"},
		{"cursor=ABC", "cursor"},
		{"cursor=", "cursor"},
		{"cursor=" + strings.Repeat("a", 65), "cursor"},
		{"user=", "user"},
		{"user=a%00b", "user"},
		{"room=bogus", "room"},
		{"room=project:", "room"},
		{"room=", "room"},
		{"rooms=project:p1", "unknown parameter"},
	}
	for _, tc := range bad {
		q, _ := url.ParseQuery(tc.query)
		_, err := parseListParams(q)
		if err == nil || err.Status != http.StatusBadRequest || err.Code != CodeBadRequest || !strings.Contains(err.Message, tc.mention) {
			t.Errorf("%q: error %v, want 400 mentioning %q", tc.query, err, tc.mention)
		}
	}
}

func TestParseCloseRequest(t *testing.T) {
	ok := []struct {
		body string
		want closeRequest
	}{
		{"", closeRequest{Code: 1012, Reason: defaultCloseReason}},
		{"  \n", closeRequest{Code: 1012, Reason: defaultCloseReason}},
		{`{}`, closeRequest{Code: 1012, Reason: defaultCloseReason}},
		{`{"code":4003,"reason":"abuse"}`, closeRequest{Code: 4003, Reason: "abuse"}},
		{`{"code":1012,"reason":"moving you – sorry"}`, closeRequest{Code: 1012, Reason: "moving you – sorry"}},
		{`{"reason":"` + strings.Repeat("x", 123) + `"}`, closeRequest{Code: 1012, Reason: strings.Repeat("x", 123)}},
	}
	for _, tc := range ok {
		got, err := parseCloseRequest(strings.NewReader(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
	bad := []struct{ body, mention string }{
		{`{"code":1000}`, "code 1000"},
		{`{"code":4001}`, "code 4001"},
		{`{"code":"4003"}`, "body"},
		{`{"reason":"` + strings.Repeat("x", 124) + `"}`, "at most 123"},
		{`{"reason":"line\nbreak"}`, "printable"},
		{`{"cod":4003}`, "unknown field"},
		{`{"code":4003} {}`, "one JSON object"},
		{`[`, "body"},
		{strings.Repeat(" ", maxCloseBody+1), "larger than"},
	}
	for _, tc := range bad {
		_, err := parseCloseRequest(strings.NewReader(tc.body))
		if err == nil || err.Status != http.StatusBadRequest || !strings.Contains(err.Message, tc.mention) {
			t.Errorf("%.40q: error %v, want 400 mentioning %q", tc.body, err, tc.mention)
		}
	}
}

func TestCloseReason(t *testing.T) {
	r := closeRequest{Code: 4003, Reason: "abuse"}.closeReason()
	if r.Code != protocol.CloseForbidden || r.Text != "abuse" || r.Label != "forbidden" {
		t.Errorf("4003: %+v", r)
	}
	r = closeRequest{Code: 1012, Reason: "moving"}.closeReason()
	if r.Code != protocol.CloseServiceRestart || r.Text != "moving" || r.Label != "service_restart" {
		t.Errorf("1012: %+v", r)
	}
}

// none is an empty node: no sessions, no rooms.
type none struct{}

func (none) List() []*session.Session                { return nil }
func (none) Find(string) *session.Session            { return nil }
func (none) RoomSnapshots(string) []hub.RoomSnapshot { return nil }

const secret = "admin-test-secret-0123456789abcdef-0123"

func token(t *testing.T, perms ...string) string {
	t.Helper()
	s, err := auth.NewHMACSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(auth.TokenSpec{Subject: "ops", Permissions: perms, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAuthAndErrors: the checks before any endpoint runs, and that every
// error is JSON.
func TestAuthAndErrors(t *testing.T) {
	v, err := auth.NewVerifier(auth.Options{HMACSecret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	drains := 0
	h := New(Options{Verifier: v, Sessions: none{}, Rooms: none{}, Drain: func(string) bool { drains++; return drains == 1 }})
	admin := "Bearer " + token(t, "admin")
	cases := []struct {
		name, method, path, authz string
		status                    int
		code                      string
	}{
		{"no token", "GET", "/v1/admin/connections", "", 401, CodeUnauthorized},
		{"not bearer", "GET", "/v1/admin/connections", "Basic b3BzOnB3", 401, CodeUnauthorized},
		{"bad token", "GET", "/v1/admin/rooms", "Bearer not.a.jwt", 401, CodeUnauthorized},
		{"other key", "POST", "/v1/admin/drain", "Bearer " + otherToken(t), 401, CodeUnauthorized},
		{"no token, unknown path", "GET", "/v1/admin/secret", "", 401, CodeUnauthorized},
		{"not admin", "GET", "/v1/admin/connections", "Bearer " + token(t, "tasks:read", "logs:read", "system:read"), 403, CodeForbidden},
		{"not admin drain", "POST", "/v1/admin/drain", "Bearer " + token(t, "system:read"), 403, CodeForbidden},
		{"admin", "GET", "/v1/admin/connections", admin, 200, ""},
		{"admin lower-case scheme", "GET", "/v1/admin/rooms", "bearer " + token(t, "admin"), 200, ""},
		{"unknown path", "GET", "/v1/admin/secret", admin, 404, CodeNotFound},
		{"wrong method", "POST", "/v1/admin/connections", admin, 405, CodeMethodNotAllowed},
		{"close wrong method", "GET", "/v1/admin/connections/abc/close", admin, 405, CodeMethodNotAllowed},
		{"close unknown", "POST", "/v1/admin/connections/abc/close", admin, 404, CodeNotFound},
		{"close malformed", "POST", "/v1/admin/connections/ABC/close", admin, 400, CodeBadRequest},
		{"bad parameter", "GET", "/v1/admin/rooms?room=nope", admin, 400, CodeBadRequest},
		{"drain", "POST", "/v1/admin/drain", admin, 202, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.authz != "" {
				req.Header.Set("Authorization", tc.authz)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if (tc.status == 401) != (rec.Header().Get("WWW-Authenticate") != "") {
				t.Errorf("WWW-Authenticate %q with status %d", rec.Header().Get("WWW-Authenticate"), tc.status)
			}
			if tc.code == "" {
				return
			}
			var body struct {
				Error *Error `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == nil || body.Error.Code != tc.code || body.Error.Message == "" {
				t.Fatalf("body %s (%v), want error code %s with a message", rec.Body, err, tc.code)
			}
		})
	}
	if drains != 1 {
		t.Errorf("drain called %d times, want 1 (only with an admin token)", drains)
	}
}

func otherToken(t *testing.T) string {
	t.Helper()
	s, err := auth.NewHMACSigner([]byte("another-secret-0123456789abcdef-0123456"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign(auth.TokenSpec{Subject: "ops", Permissions: []string{"admin"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
