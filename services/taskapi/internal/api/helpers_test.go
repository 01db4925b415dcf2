package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/revoke"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/taskapi/docs"
	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

const (
	secret = "api-test-secret-0123456789abcdef-0123456"
	wait   = 5 * time.Second
)

// env is a real API over loopback HTTP, backed by a real NATS server.
type env struct {
	t     *testing.T
	srv   *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *taskstore.Store
	url   string
}

func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := jobs.EnsureStream(ctx, js, jobs.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := revoke.EnsureStream(ctx, js, revoke.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	st, err := taskstore.Open(ctx, js, taskstore.Options{MemoryStorage: true, PublishTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{HMACSecret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Store: st, NC: nc, Verifier: v, OpenAPI: docs.OpenAPI}
	if mod != nil {
		mod(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	return &env{t: t, srv: srv, nc: nc, js: js, store: st, url: hs.URL}
}

// token signs a token for sub with perms and projects.
func token(t *testing.T, sub string, perms, projects []string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "permissions": perms, "projects": projects,
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writer is a token with tasks:read and tasks:write on p1.
func writer(t *testing.T) string {
	return token(t, "u1", []string{"tasks:read", "tasks:write"}, []string{"p1"})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) task(t *testing.T) *pb.Task {
	t.Helper()
	tk := &pb.Task{}
	if err := protojson.Unmarshal(r.body, tk); err != nil {
		t.Fatalf("response %d %s: %v", r.status, r.body, err)
	}
	return tk
}

// apiError decodes an error body.
func (r response) apiError(t *testing.T) Error {
	t.Helper()
	var b struct{ Error Error }
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return b.Error
}

// do sends a request; headers are "Name: value" strings.
func (e *env) do(method, path, tok, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: bytes.TrimSpace(b)}
}

// create creates a task through the API and returns it.
func (e *env) create(body string) *pb.Task {
	e.t.Helper()
	r := e.do("POST", "/v1/projects/p1/tasks", writer(e.t), body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create %s: %d %s", body, r.status, r.body)
	}
	return r.task(e.t)
}

type natsMsg = nats.Msg

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// signWith signs arbitrary claims with the test secret.
func signWith(t *testing.T, claims map[string]any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
