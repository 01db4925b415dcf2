package events_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/internal/jstest"
	"github.com/eventedge/eventedge/proto/room"
)

// waitTimeout bounds every wait on the embedded server.
const waitTimeout = jstest.WaitTimeout

// runJetStream starts a NATS server with JetStream for the test.
func runJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) { return jstest.Run(t) }

func testContext(t *testing.T) context.Context { return jstest.Context(t) }

// ensureStreams creates the EVENTS stream with its defaults.
func ensureStreams(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := events.EnsureStreams(testContext(t), js, events.StreamConfig{})
	if err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return s
}

func streamInfo(t *testing.T, s jetstream.Stream) *jetstream.StreamInfo {
	t.Helper()
	info, err := s.Info(testContext(t))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info
}

// nextMsg waits for the next message of sub.
func nextMsg(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	msg, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("waiting for a message on %s: %v", sub.Subject, err)
	}
	return msg
}

func TestEnsureStreamsDefaults(t *testing.T) {
	_, js := runJetStream(t)
	cfg := streamInfo(t, ensureStreams(t, js)).Config

	if cfg.Name != "EVENTS" {
		t.Errorf("name %q, want EVENTS", cfg.Name)
	}
	if !slices.Equal(cfg.Subjects, []string{"evt.>"}) {
		t.Errorf("subjects %v, want [evt.>]", cfg.Subjects)
	}
	if cfg.MaxAge != 24*time.Hour {
		t.Errorf("max age %s, want 24h", cfg.MaxAge)
	}
	if cfg.MaxMsgsPerSubject != 10000 {
		t.Errorf("max messages per subject %d, want 10000", cfg.MaxMsgsPerSubject)
	}
	if cfg.Duplicates != 2*time.Minute {
		t.Errorf("duplicate window %s, want 2m", cfg.Duplicates)
	}
	if cfg.Replicas != 1 {
		t.Errorf("replicas %d, want 1", cfg.Replicas)
	}
	if cfg.Storage != jetstream.FileStorage {
		t.Errorf("storage %v, want file", cfg.Storage)
	}
	if cfg.Retention != jetstream.LimitsPolicy || cfg.Discard != jetstream.DiscardOld {
		t.Errorf("retention %v, discard %v; want limits, old", cfg.Retention, cfg.Discard)
	}
	if cfg.MaxBytes != -1 || cfg.MaxMsgs != -1 {
		t.Errorf("max bytes %d, max messages %d; want -1 (unlimited)", cfg.MaxBytes, cfg.MaxMsgs)
	}
	// The stream's limit counts headers as NATS' max_payload does, so it is
	// the full 1 MiB, not the body limit MaxEventBytes.
	if cfg.MaxMsgSize != 1<<20 {
		t.Errorf("max message size %d, want %d (1 MiB)", cfg.MaxMsgSize, 1<<20)
	}
	if cfg.AllowDirect {
		t.Error("direct get allowed: a lagging replica could answer a replay")
	}
	if rp := cfg.RePublish; rp == nil || rp.Source != "evt.>" || rp.Destination != "live.>" || rp.HeadersOnly {
		t.Errorf("republish %+v, want evt.> -> live.> with bodies", rp)
	}
}

func TestEnsureStreamsIdempotent(t *testing.T) {
	_, js := runJetStream(t)
	ctx := testContext(t)

	for i := range 2 {
		if _, err := events.EnsureStreams(ctx, js, events.StreamConfig{}); err != nil {
			t.Fatalf("EnsureStreams #%d: %v", i+1, err)
		}
	}
	// A publish between the calls shows that updating keeps the stored events.
	if _, err := events.Publish(ctx, js, sampleEvents()[events.TypeTaskDeleted]); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	s, err := events.EnsureStreams(ctx, js, events.StreamConfig{MaxAge: time.Hour, MaxMsgsPerSubject: 50})
	if err != nil {
		t.Fatalf("EnsureStreams with a new max age: %v", err)
	}
	info := streamInfo(t, s)
	if info.Config.MaxAge != time.Hour || info.Config.MaxMsgsPerSubject != 50 {
		t.Errorf("after update: max age %s, per subject %d; want 1h, 50", info.Config.MaxAge, info.Config.MaxMsgsPerSubject)
	}
	if info.Config.Duplicates != events.DefaultDuplicates {
		t.Errorf("after update: duplicate window %s, want the default", info.Config.Duplicates)
	}
	if info.State.Msgs != 1 {
		t.Errorf("after update: %d messages, want the 1 published before", info.State.Msgs)
	}

	var names []string
	for name := range js.StreamNames(ctx).Name() {
		names = append(names, name)
	}
	if !slices.Equal(names, []string{events.StreamName}) {
		t.Errorf("streams %v, want only %s", names, events.StreamName)
	}
}

func TestEnsureStreamsRejectsInvalidConfig(t *testing.T) {
	_, js := runJetStream(t)
	ctx := testContext(t)
	for _, n := range []int{2, 7} {
		if _, err := events.EnsureStreams(ctx, js, events.StreamConfig{Replicas: n}); err == nil {
			t.Fatalf("EnsureStreams accepted %d replicas", n)
		}
	}
	if _, err := js.Stream(ctx, events.StreamName); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("after an invalid config: stream lookup = %v, want ErrStreamNotFound", err)
	}
}

func TestStreamConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     events.StreamConfig
		wantErr string // "" when valid
	}{
		{"zero", events.StreamConfig{}, ""},
		{"all set", events.StreamConfig{MaxAge: time.Hour, MaxMsgsPerSubject: 5, MaxBytes: 1 << 30, Duplicates: time.Minute, Replicas: 3, MemoryStorage: true}, ""},
		{"duplicates equal to max age", events.StreamConfig{MaxAge: time.Hour, Duplicates: time.Hour}, ""},
		{"1 replica", events.StreamConfig{Replicas: 1}, ""},
		{"3 replicas", events.StreamConfig{Replicas: 3}, ""},
		{"5 replicas", events.StreamConfig{Replicas: 5}, ""},
		{"negative max age", events.StreamConfig{MaxAge: -time.Second}, "max age"},
		{"negative max messages per subject", events.StreamConfig{MaxMsgsPerSubject: -1}, "max messages per subject"},
		{"negative max bytes", events.StreamConfig{MaxBytes: -1}, "max bytes"},
		{"negative duplicates", events.StreamConfig{Duplicates: -time.Second}, "duplicate window"},
		{"duplicates above max age", events.StreamConfig{MaxAge: time.Hour, Duplicates: time.Hour + time.Second}, "duplicate window"},
		{"negative replicas", events.StreamConfig{Replicas: -1}, "replicas -1"},
		// An even count tolerates no more failures than the odd count below
		// it, so it is refused.
		{"2 replicas", events.StreamConfig{Replicas: 2}, "replicas 2: must be 1, 3 or 5"},
		{"4 replicas", events.StreamConfig{Replicas: 4}, "replicas 4: must be 1, 3 or 5"},
		{"6 replicas", events.StreamConfig{Replicas: 6}, "replicas 6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("Validate accepted %+v", tc.cfg)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("Validate: %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestStreamConfigWithDefaults(t *testing.T) {
	got := events.StreamConfig{}.WithDefaults()
	want := events.StreamConfig{MaxAge: 24 * time.Hour, MaxMsgsPerSubject: 10000, Duplicates: 2 * time.Minute, Replicas: 1}
	if got != want {
		t.Errorf("WithDefaults() = %+v, want %+v", got, want)
	}
	set := events.StreamConfig{MaxAge: time.Hour, MaxMsgsPerSubject: 3, MaxBytes: 7, Duplicates: time.Second, Replicas: 3, MemoryStorage: true}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults() changed set fields: %+v, want %+v", got, set)
	}
	if got := set.JetStreamConfig(); got.Storage != jetstream.MemoryStorage || got.MaxBytes != 7 {
		t.Errorf("JetStreamConfig: storage %v, max bytes %d; want memory, 7", got.Storage, got.MaxBytes)
	}
}

func TestPublishStoresEvent(t *testing.T) {
	_, js := runJetStream(t)
	s := ensureStreams(t, js)
	ctx := testContext(t)

	ev := sampleEvents()[events.TypeTaskCreated]
	ack, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Stream != events.StreamName || ack.Sequence != 1 || ack.Duplicate {
		t.Fatalf("ack %+v, want EVENTS sequence 1, not a duplicate", ack)
	}

	msg, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("get message %d: %v", ack.Sequence, err)
	}
	if msg.Subject != "evt.project.p1" {
		t.Errorf("stored on %q, want evt.project.p1", msg.Subject)
	}
	if got := msg.Header.Get(events.HeaderContentType); got != events.ContentTypeProtobuf {
		t.Errorf("Content-Type %q, want %q", got, events.ContentTypeProtobuf)
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != ev.Id {
		t.Errorf("Nats-Msg-Id %q, want the event id %q", got, ev.Id)
	}
	got, err := events.Decode(msg.Data, msg.Header.Get(events.HeaderContentType))
	if err != nil {
		t.Fatalf("decode stored event: %v", err)
	}
	if !proto.Equal(got, ev) {
		t.Errorf("stored event:\n got %v\nwant %v", got, ev)
	}
}

func TestPublishNormalizes(t *testing.T) {
	_, js := runJetStream(t)
	s := ensureStreams(t, js)
	ctx := testContext(t)

	ev := &pb.Event{Room: "global", Payload: &pb.Event_SystemStatus{SystemStatus: &pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY}}}
	ack, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ev.Id == "" || ev.Timestamp == nil || ev.Type != events.TypeSystemStatus {
		t.Fatalf("Publish did not normalize the caller's event: %v", ev)
	}
	msg, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "evt.global" || msg.Header.Get(jetstream.MsgIDHeader) != ev.Id {
		t.Errorf("stored on %q with Nats-Msg-Id %q; want evt.global, %q", msg.Subject, msg.Header.Get(jetstream.MsgIDHeader), ev.Id)
	}
}

func TestPublishDuplicate(t *testing.T) {
	_, js := runJetStream(t)
	s := ensureStreams(t, js)
	ctx := testContext(t)

	ev := sampleEvents()[events.TypeTaskUpdated]
	first, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	second, err := events.Publish(ctx, js, ev)
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}
	if first.Duplicate || !second.Duplicate {
		t.Errorf("duplicate flags %v, %v; want false, true", first.Duplicate, second.Duplicate)
	}
	if second.Sequence != first.Sequence {
		t.Errorf("duplicate ack sequence %d, want the original %d", second.Sequence, first.Sequence)
	}
	if n := streamInfo(t, s).State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

// TestPublishRepublishesLive checks the headers the edge relies on for gap
// detection: Nats-Sequence is the stream sequence and Nats-Last-Sequence the
// previous sequence of the same subject, not of the stream.
func TestPublishRepublishesLive(t *testing.T) {
	nc, js := runJetStream(t)
	ensureStreams(t, js)
	ctx := testContext(t)

	p1, err := nc.SubscribeSync(room.Project("p1").LiveSubject())
	if err != nil {
		t.Fatal(err)
	}
	p2, err := nc.SubscribeSync(room.Project("p2").LiveSubject())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	type published struct {
		sub     *nats.Subscription
		ev      *pb.Event
		seq     uint64
		lastSeq uint64 // expected Nats-Last-Sequence
	}
	var pubs []published
	last := map[*nats.Subscription]uint64{}
	// Interleave the rooms, so that the stream's previous sequence differs
	// from the room's.
	for i, sub := range []*nats.Subscription{p1, p2, p1, p2, p2, p1} {
		r := room.Project("p1")
		if sub == p2 {
			r = room.Project("p2")
		}
		ev := events.TaskDeleted(r, "u7", "t"+strconv.Itoa(i))
		ack, err := events.Publish(ctx, js, ev)
		if err != nil {
			t.Fatalf("Publish #%d: %v", i, err)
		}
		pubs = append(pubs, published{sub, ev, ack.Sequence, last[sub]})
		last[sub] = ack.Sequence
	}

	for _, p := range pubs {
		msg := nextMsg(t, p.sub)
		if msg.Subject != p.sub.Subject {
			t.Errorf("received on %q, want %q", msg.Subject, p.sub.Subject)
		}
		if got := msg.Header.Get(events.HeaderSequence); got != strconv.FormatUint(p.seq, 10) {
			t.Errorf("%s: Nats-Sequence %q, want %d", msg.Subject, got, p.seq)
		}
		if got := msg.Header.Get(events.HeaderLastSequence); got != strconv.FormatUint(p.lastSeq, 10) {
			t.Errorf("%s seq %d: Nats-Last-Sequence %q, want %d", msg.Subject, p.seq, got, p.lastSeq)
		}
		if got := msg.Header.Get(events.HeaderContentType); got != events.ContentTypeProtobuf {
			t.Errorf("%s: Content-Type %q, want %q", msg.Subject, got, events.ContentTypeProtobuf)
		}
		ev, err := events.Decode(msg.Data, msg.Header.Get(events.HeaderContentType))
		if err != nil {
			t.Fatalf("decode live message: %v", err)
		}
		if !proto.Equal(ev, p.ev) {
			t.Errorf("live event:\n got %v\nwant %v", ev, p.ev)
		}
	}
	for _, sub := range []*nats.Subscription{p1, p2} {
		if n, _, _ := sub.Pending(); n != 0 {
			t.Errorf("%s: %d unexpected messages", sub.Subject, n)
		}
	}
}

func TestPublishInvalidSendsNothing(t *testing.T) {
	nc, js := runJetStream(t)
	s := ensureStreams(t, js)
	ctx := testContext(t)

	all, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	bad := []*pb.Event{
		events.TaskDeleted(room.Project("p.1"), "u7", "t1"), // the room would add a subject token
		events.TaskDeleted(room.Project(">"), "u7", "t1"),   // a wildcard room
		events.TaskDeleted(room.Project("p1"), "u7", ""),    // no task id
		{Room: "global"},                        // no payload
		events.SystemStatus(&pb.SystemStatus{}), // no status
		events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Progress: 2}),
	}
	for i, ev := range bad {
		ack, err := events.Publish(ctx, js, ev)
		if err == nil {
			t.Errorf("Publish #%d accepted %v (ack %+v)", i, ev, ack)
			continue
		}
		if !events.IsInvalid(err) {
			t.Errorf("Publish #%d: IsInvalid(%v) = false", i, err)
		}
	}

	// A round trip on the same connection: anything Publish had sent would
	// have been delivered to all before the PONG.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := all.Pending(); n != 0 {
		msg, _ := all.NextMsg(0)
		t.Errorf("%d messages reached NATS, the first on %q", n, msg.Subject)
	}
	if n := streamInfo(t, s).State.Msgs; n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestPublishWithoutStream(t *testing.T) {
	_, js := runJetStream(t)
	_, err := events.Publish(testContext(t), js, sampleEvents()[events.TypeTaskDeleted])
	if err == nil {
		t.Fatal("Publish succeeded without the EVENTS stream")
	}
	if events.IsInvalid(err) {
		t.Errorf("IsInvalid(%v) = true for a broker error", err)
	}
}

// TestPublishLargestEvent checks the size limit end to end: an event whose
// protobuf body is exactly MaxEventBytes fits NATS' max_payload and the
// stream's MaxMsgSize with the headers Publish and RePublish add, and is
// stored and delivered live; one byte more is refused with an error IsInvalid
// reports (callers retry every other error), before anything is sent.
func TestPublishLargestEvent(t *testing.T) {
	nc, js := runJetStream(t)
	s := ensureStreams(t, js)
	ctx := testContext(t)

	all, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	live, err := nc.SubscribeSync(room.Project("p1").LiveSubject())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	tooLarge := maxSizeEvent(t, events.MaxEventBytes+1)
	_, err = events.Publish(ctx, js, tooLarge)
	if !errors.Is(err, events.ErrTooLarge) || !events.IsInvalid(err) {
		t.Fatalf("Publish of a %d-byte event: %v, want ErrTooLarge", events.MaxEventBytes+1, err)
	}
	// A round trip on the same connection: anything Publish had sent would
	// have been delivered to all before the PONG.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The server's own advisories ($JS.EVENT.…, e.g. the stream's creation)
	// may arrive at any time: they are not Publish's.
	for {
		msg, err := all.NextMsg(time.Millisecond)
		if err != nil {
			break
		}
		if !strings.HasPrefix(msg.Subject, "$JS.EVENT.") {
			t.Fatalf("a message reached NATS on %q", msg.Subject)
		}
	}

	largest := maxSizeEvent(t, events.MaxEventBytes)
	ack, err := events.Publish(ctx, js, largest)
	if err != nil {
		t.Fatalf("Publish of a %d-byte event: %v", events.MaxEventBytes, err)
	}
	stored, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("get message %d: %v", ack.Sequence, err)
	}
	if len(stored.Data) != events.MaxEventBytes {
		t.Errorf("stored body is %d bytes, want %d", len(stored.Data), events.MaxEventBytes)
	}
	msg := nextMsg(t, live)
	got, err := events.Decode(msg.Data, msg.Header.Get(events.HeaderContentType))
	if err != nil {
		t.Fatalf("decode live message: %v", err)
	}
	if !proto.Equal(got, largest) {
		t.Error("the live copy of the largest event differs from the published one")
	}
	if n := streamInfo(t, s).State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages, want only the largest event", n)
	}
}

// TestEnsureStreamExistsKeepsSettings: an existing stream is left as it
// is (its owner's settings stay); a missing one is created.
func TestEnsureStreamExistsKeepsSettings(t *testing.T) {
	_, js := runJetStream(t)
	ctx := testContext(t)
	created, err := events.EnsureStreamExists(ctx, js, events.StreamConfig{MaxAge: time.Hour})
	if err != nil || !created {
		t.Fatalf("first call: created %v, %v", created, err)
	}
	created, err = events.EnsureStreamExists(ctx, js, events.StreamConfig{MaxAge: 2 * time.Hour})
	if err != nil || created {
		t.Fatalf("second call: created %v, %v", created, err)
	}
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.MaxAge; got != time.Hour {
		t.Fatalf("max age %s: the existing stream was changed", got)
	}
}
