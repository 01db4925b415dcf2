package revoke_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/internal/jstest"
	"github.com/eventedge/eventedge/proto/revoke"
)

func TestParse(t *testing.T) {
	manyRooms := `{"userId":"u1","rooms":[` + strings.TrimSuffix(strings.Repeat(`"global",`, revoke.MaxRooms+1), ",") + `]}`
	for _, tc := range []struct {
		name, in string
		rooms    int
		err      string // "" when valid
	}{
		{"user", `{"userId":"u1"}`, 0, ""},
		{"rooms", `{"userId":"u1","rooms":["project:p1","user:u1"]}`, 2, ""},
		{"unknown field ignored", `{"userId":"u1","why":"left"}`, 0, ""},
		{"not json", `userId=u1`, 0, "revocation: invalid character"},
		{"no user", `{"rooms":["project:p1"]}`, 0, `userId "": want 1-64 characters`},
		{"user with a dot", `{"userId":"u1.>"}`, 0, `userId "u1.>"`},
		{"bad room", `{"userId":"u1","rooms":["project:p1.*"]}`, 0, "revocation: "},
		{"too many rooms", manyRooms, 0, "257 rooms, at most 256"},
		{"too large", `{"userId":"u1","pad":"` + strings.Repeat("x", revoke.MaxBytes) + `"}`, 0, "at most 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rooms, err := revoke.Parse([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || m.UserID != "u1" || len(rooms) != tc.rooms {
				t.Fatalf("got %+v, %d rooms, %v", m, len(rooms), err)
			}
		})
	}
}

func TestMarshalValidates(t *testing.T) {
	b, err := revoke.Marshal(revoke.Message{UserID: "u7", Rooms: []string{"project:p1"}})
	if err != nil || string(b) != `{"userId":"u7","rooms":["project:p1"]}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	if _, err := revoke.Marshal(revoke.Message{UserID: "u7", Rooms: []string{"nope"}}); err == nil {
		t.Fatal("an invalid room was encoded")
	}
}

func TestStreamConfig(t *testing.T) {
	cfg := revoke.StreamConfig{}.JetStreamConfig()
	if cfg.Name != revoke.StreamName || len(cfg.Subjects) != 1 || cfg.Subjects[0] != revoke.Subject ||
		cfg.MaxAge != revoke.DefaultMaxAge || cfg.Replicas != 1 || cfg.Storage != jetstream.FileStorage ||
		cfg.Discard != jetstream.DiscardOld || cfg.MaxMsgSize != revoke.MaxBytes {
		t.Fatalf("default config %+v", cfg)
	}
	if d := (revoke.StreamConfig{MaxAge: 30 * time.Second}).JetStreamConfig().Duplicates; d != 30*time.Second {
		t.Fatalf("duplicate window %s with a 30s max age, want 30s", d)
	}
	for _, tc := range []struct {
		cfg  revoke.StreamConfig
		want string
	}{
		{revoke.StreamConfig{MaxAge: time.Millisecond}, "max age 1ms: must be at least 1s"},
		{revoke.StreamConfig{MaxAge: -time.Hour}, "must be at least 1s"},
		{revoke.StreamConfig{Replicas: 2}, "replicas 2: must be 1, 3 or 5"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestPublish: without the stream a publish fails (it would be stored
// nowhere); EnsureStreamExists creates it, leaves an existing one's
// settings alone, and a published revocation is stored once and parses
// back; an invalid one is refused before it is sent.
func TestPublish(t *testing.T) {
	nc, js := runJetStream(t)
	ctx := testContext(t)
	if _, err := revoke.Publish(ctx, js, revoke.Message{UserID: "u1"}, jetstream.WithRetryAttempts(0)); err == nil {
		t.Fatal("published with no REVOCATIONS stream")
	}
	if created, err := revoke.EnsureStreamExists(ctx, js, revoke.StreamConfig{MaxAge: time.Hour}); err != nil || !created {
		t.Fatalf("EnsureStreamExists = %v, %v; want created", created, err)
	}
	if created, err := revoke.EnsureStreamExists(ctx, js, revoke.StreamConfig{MaxAge: 2 * time.Hour}); err != nil || created {
		t.Fatalf("second EnsureStreamExists = %v, %v; want left alone", created, err)
	}
	st, err := js.Stream(ctx, revoke.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if st.CachedInfo().Config.MaxAge != time.Hour {
		t.Fatalf("max age %s: EnsureStreamExists changed an existing stream", st.CachedInfo().Config.MaxAge)
	}

	if _, err := revoke.Publish(ctx, js, revoke.Message{UserID: "bad user"}); err == nil {
		t.Fatal("an invalid revocation was published")
	}
	// A core publish (as `nats pub ctl.revoke`) is stored too.
	if err := nc.Publish(revoke.Subject, []byte(`{"userId":"u0"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ack, err := revoke.Publish(ctx, js, revoke.Message{UserID: "u1", Rooms: []string{"project:p1"}})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Stream != revoke.StreamName || ack.Sequence != 2 {
		t.Fatalf("ack %+v, want %s sequence 2 (after the core publish)", ack, revoke.StreamName)
	}
	msg, err := st.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	m, rooms, err := revoke.Parse(msg.Data)
	if err != nil || m.UserID != "u1" || len(rooms) != 1 || rooms[0].String() != "project:p1" {
		t.Fatalf("stored %s: %+v %v %v", msg.Data, m, rooms, err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %v messages (%v), want 2: the invalid one must not be stored", info.State.Msgs, err)
	}
	if _, err := revoke.EnsureStream(ctx, js, revoke.StreamConfig{Replicas: 2}); err == nil {
		t.Fatal("EnsureStream took an invalid config")
	}
}

func runJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) { return jstest.Run(t) }

func testContext(t *testing.T) context.Context { return jstest.Context(t) }
