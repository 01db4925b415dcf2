package service

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// TestMain fails the package if a test leaves a goroutine behind: Shutdown
// must stop the listeners, the sweeper and the NATS connection.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

const secret = "service-test-secret-0123456789abcdef-01"

func start(t *testing.T, srv *natstest.Server) *Service {
	t.Helper()
	s, err := New(Options{
		Addr:          "127.0.0.1:0",
		AdminAddr:     "127.0.0.1:0",
		NATSURL:       srv.URL(),
		Auth:          auth.Options{HMACSecret: []byte(secret)},
		SweepInterval: 100 * time.Millisecond,
		Store:         taskstore.Options{MemoryStorage: true, SweepMinAge: -1, PublishTimeout: 500 * time.Millisecond},
		Events:        events.StreamConfig{MemoryStorage: true},
	}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func tok(t *testing.T) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "permissions": []string{"tasks:read", "tasks:write"}, "projects": []string{"p1"},
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+tok(t))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func get(url string) (int, string, error) {
	res, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

func TestAdminEndpoints(t *testing.T) {
	srv := natstest.Start(t)
	s := start(t, srv)
	admin := "http://" + s.AdminAddr().String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		if code, body, err := get(admin + path); err != nil || code != want {
			t.Errorf("%s: %d %s %v", path, code, body, err)
		}
	}
	base := "http://" + s.Addr().String()
	if code, body := call(t, "POST", base+"/v1/projects/p1/tasks", `{"title":"x"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	_, metrics, _ := get(admin + "/metrics")
	for _, m := range []string{"eventedge_taskapi_requests_total", "eventedge_taskstore_outbox_published_total", "eventedge_taskapi_nats_connected 1", "go_goroutines"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	if code, _, _ := get(base + "/openapi.json"); code != 200 {
		t.Errorf("/openapi.json: %d", code)
	}

	// Without the bucket the service is not ready.
	nc, js := srv.Connect(t)
	_ = nc
	if err := js.DeleteKeyValue(t.Context(), taskstore.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := get(admin + "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without the bucket: %d %s", code, body)
	}
}

// TestPublishFailureIsRepairedExactlyOnce: while the EVENTS stream is gone
// a change is stored and answered, its event waits in the outbox; once the
// stream is back the service's sweeper publishes it, exactly once.
func TestPublishFailureIsRepairedExactlyOnce(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	s := start(t, srv)
	base := "http://" + s.Addr().String()
	if code, body := call(t, "POST", base+"/v1/projects/p1/tasks", `{"id":"t1","title":"before"}`); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	live := natstest.Events(t, nc, "live.project.p1")
	if err := js.DeleteStream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	}
	if code, body := call(t, "PATCH", base+"/v1/projects/p1/tasks/t1", `{"title":"after"}`); code != 200 {
		t.Fatalf("patch while EVENTS is missing: %d %s (the change is stored: 200)", code, body)
	}
	natstest.Quiet(t, live, 300*time.Millisecond) // several sweeps fail meanwhile

	if _, err := events.EnsureStreams(t.Context(), js, events.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	ev := natstest.Next(t, live, 5*time.Second)
	if u := ev.GetTaskUpdated(); u.GetChanges().GetTitle() != "after" || len(u.GetChangedFields()) != 1 {
		t.Errorf("repaired event = %v", ev)
	}
	natstest.Quiet(t, live, 500*time.Millisecond) // later sweeps find nothing to send
}

// TestStartWaitsForNATS: a service started before NATS comes up is ready
// once it does.
func TestStartWaitsForNATS(t *testing.T) {
	srv := natstest.Start(t)
	url := srv.URL()
	srv.Stop()
	s, err := New(Options{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSURL: url, Auth: auth.Options{HMACSecret: []byte(secret)},
		Store: taskstore.Options{MemoryStorage: true}, Events: events.StreamConfig{MemoryStorage: true}}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- s.Start(t.Context()) }()
	defer s.Shutdown(context.Background())
	time.Sleep(300 * time.Millisecond) // let Start find NATS missing
	srv.Restart()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(t.Context()); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Options{Addr: ln.Addr().String(), AdminAddr: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:1",
		Auth: auth.Options{HMACSecret: []byte(secret)}}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("Start on a used port: nil error")
	}
	s2, _ := New(Options{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:1", StartTimeout: 300 * time.Millisecond,
		Auth: auth.Options{HMACSecret: []byte(secret)}}, zerolog.New(io.Discard))
	if err := s2.Start(t.Context()); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Start without NATS: %v, want a deadline error", err)
	}
	if _, err := New(Options{}, zerolog.New(io.Discard)); err == nil {
		t.Error("New without a JWT key: nil error")
	}
}
