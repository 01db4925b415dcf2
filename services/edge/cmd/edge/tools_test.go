package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
)

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPublishAndListen: `edge listen` prints what `edge publish` sends,
// through a real edge and NATS.
func TestPublishAndListen(t *testing.T) {
	n := edgetest.StartNATS(t)
	n.Connect(t) // ensures the stream
	e := edgetest.StartEdge(t, n, nil)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	noEnv := func(string) string { return "" }

	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- runListen(ctx, []string{"--url", e.URL, "--token", tok, "--room", "project:p1"}, noEnv, &out)
	}()
	edgetest.Eventually(t, 10*time.Second, func() bool { return strings.Contains(out.String(), "subscribed to project:p1 after seq") }, "listen subscribed")

	var pubOut bytes.Buffer
	err := runPublish(context.Background(), []string{"--nats-url", n.URL(),
		`{"room":"project:p1","userId":"u7","taskUpdated":{"taskId":"t1","changes":{"title":"Hello"},"updatedBy":"u7"}}`}, noEnv, &pubOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pubOut.String(), "published task_updated") || !strings.Contains(pubOut.String(), "seq 1") {
		t.Fatalf("publish printed %q", pubOut.String())
	}
	edgetest.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(out.String(), `"type":"task_updated"`) && strings.Contains(out.String(), `"title":"Hello"`)
	}, "listen printed the event")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("listen: %v", err)
	}

	// Bad input is refused with a clear error and nothing is published.
	for _, bad := range []struct{ arg, want string }{
		{`{"room":"project:p1.x","taskDeleted":{"taskId":"t1"}}`, "room"},
		{`{"room":"project:p1"}`, "payload"},
		{`{"room":"project:p1","colour":"red"}`, "colour"},
	} {
		err := runPublish(context.Background(), []string{"--nats-url", n.URL(), bad.arg}, noEnv, &pubOut)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("publish %s: %v; want an error about %s", bad.arg, err, bad.want)
		}
	}
}
