package session

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
)

// TestLogEvent checks that a session's log lines carry the session, the
// remote address and, once authenticated, the user, and that a level
// below the node's builds nothing.
func TestLogEvent(t *testing.T) {
	var buf bytes.Buffer
	env := &Env{Metrics: metrics.New(prometheus.NewRegistry()), Log: zerolog.New(&buf).Level(zerolog.InfoLevel)}
	s := New(env, nil, Info{ID: "s-1", RemoteAddr: "127.0.0.1:5000"})

	s.logEvent(env.Log.Info()).Msg("before auth")
	s.setClaims(&auth.Claims{Subject: "u-7"})
	s.logEvent(env.Log.Info()).Msg("after auth")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2: %q", len(lines), buf.String())
	}
	for _, want := range []string{`"session":"s-1"`, `"remote":"127.0.0.1:5000"`} {
		for i, l := range lines {
			if !strings.Contains(l, want) {
				t.Errorf("line %d %s: no %s", i, l, want)
			}
		}
	}
	if strings.Contains(lines[0], `"user"`) {
		t.Errorf("line before auth names a user: %s", lines[0])
	}
	if !strings.Contains(lines[1], `"user":"u-7"`) {
		t.Errorf("line after auth: no user: %s", lines[1])
	}

	buf.Reset()
	if e := s.logEvent(env.Log.Debug()); e != nil {
		t.Fatalf("debug event below the info level: got %v, want nil", e)
	}
	if allocs := testing.AllocsPerRun(100, func() { s.logEvent(env.Log.Debug()).Msg("x") }); allocs != 0 {
		t.Errorf("disabled level: %v allocations, want 0", allocs)
	}
	if buf.Len() != 0 {
		t.Errorf("disabled level wrote %q", buf.String())
	}
}
