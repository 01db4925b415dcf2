package service

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/taskapi/jobs"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/worker/internal/worker"
)

// TestMain fails the package if Shutdown leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

func get(url string) (int, string) {
	res, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestStartServeShutdown(t *testing.T) {
	srv := natstest.Start(t)
	s, err := New(Options{
		AdminAddr: "127.0.0.1:0",
		NATSURL:   srv.URL(),
		Worker:    worker.Options{Name: "w1", StatsInterval: 100 * time.Millisecond},
		Store:     taskstore.Options{MemoryStorage: true},
		Events:    events.StreamConfig{MemoryStorage: true},
		Jobs:      jobs.StreamConfig{MemoryStorage: true},
	}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + s.AdminAddr().String()
	natstest.CheckFor(t, 5*time.Second, func() error {
		if code, body := get(admin + "/readyz"); code != 200 {
			return errString(body)
		}
		return nil
	})
	if code, _ := get(admin + "/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	_, metrics := get(admin + "/metrics")
	for _, m := range []string{"eventedge_worker_jobs_running", "eventedge_worker_nats_connected 1", "go_goroutines"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	// It created what it needs.
	_, js := srv.Connect(t)
	if _, err := js.Consumer(t.Context(), jobs.StreamName, jobs.ConsumerName); err != nil {
		t.Errorf("consumer: %v", err)
	}
	if _, err := js.KeyValue(t.Context(), taskstore.DefaultBucket); err != nil {
		t.Errorf("bucket: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	if _, err := New(Options{Worker: worker.Options{Name: "has space"}}, zerolog.New(io.Discard)); err == nil {
		t.Error("bad name accepted")
	}
	s, err := New(Options{AdminAddr: "127.0.0.1:0", NATSURL: "nats://127.0.0.1:1", StartTimeout: 300 * time.Millisecond,
		Worker: worker.Options{Name: "w"}}, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err == nil {
		t.Error("Start without NATS: nil")
	}
}

type errString string

func (e errString) Error() string { return string(e) }
