package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

var eventTime = time.Date(2030, time.January, 2, 3, 4, 5, 123456000, time.UTC)

// fixed gives ev a known id and timestamp, so the output is deterministic.
func fixed(ev *pb.Event) *pb.Event {
	ev.Id = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
	ev.Timestamp = timestamppb.New(eventTime)
	return ev
}

func testTask() *pb.Task {
	return &pb.Task{
		Id: "t1", ProjectId: "p1", Title: "Build", Status: pb.TaskStatus(1),
		Labels: []string{"ci"}, Progress: 0.25, CreatedAt: timestamppb.New(eventTime), Revision: 3,
	}
}

func TestEncodeEvent(t *testing.T) {
	p1 := room.Project("p1")
	alert := &pb.Alert{Id: "a1", Severity: pb.Severity_SEVERITY_CRITICAL, Message: "disk full", Since: timestamppb.New(eventTime)}
	cases := []struct {
		name       string
		ev         *pb.Event
		payload    proto.Message
		wantType   string
		wantUser   string // "" means the userId field is absent
		wantPrio   string
		wantPerm   string // "" means the requiredPermission field is absent
		wantMeta   map[string]any
		roomName   string
		roomInJSON string
	}{
		{name: "task_created", ev: events.TaskCreated(p1, "alice", testTask()), wantType: events.TypeTaskCreated, wantUser: "alice", wantPrio: "high"},
		{name: "task_updated", ev: events.TaskUpdated(p1, "bob", "t1", &pb.Task{Title: "Rebuild"}, "title"), wantType: events.TypeTaskUpdated, wantUser: "bob", wantPrio: "normal"},
		{name: "task_deleted", ev: events.TaskDeleted(p1, "carol", "t1"), wantType: events.TypeTaskDeleted, wantUser: "carol", wantPrio: "high"},
		{name: "task_progress", ev: events.TaskProgress(p1, &pb.TaskProgress{
			TaskId: "t1", Progress: 0.5, Stage: "test",
			Logs: []*pb.LogEntry{{Timestamp: timestamppb.New(eventTime), Stream: pb.LogStream(1), Line: "ok <done> & \"quoted\""}},
		}), wantType: events.TypeTaskProgress, wantPrio: "low"},
		{name: "system_status", ev: events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY,
			Metrics: &pb.SystemMetrics{EdgeNodes: 3, Connections: 1 << 40, EventsInPerSecond: 12.5}}),
			wantType: events.TypeSystemStatus, wantPrio: "normal"},
		{name: "system_status with alerts", ev: events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			Alerts: []*pb.Alert{alert}}), wantType: events.TypeSystemStatus, wantPrio: "high"},
		{name: "explicit priority beats the default", ev: func() *pb.Event {
			ev := events.TaskCreated(p1, "alice", testTask())
			ev.Priority = pb.Priority_PRIORITY_LOW
			return ev
		}(), wantType: events.TypeTaskCreated, wantUser: "alice", wantPrio: "low"},
		{name: "metadata and required permission", ev: func() *pb.Event {
			ev := events.TaskProgress(p1, &pb.TaskProgress{TaskId: "t1", Progress: 1})
			ev.Metadata = map[string]string{"trace": "abc", "source": "ci"}
			ev.RequiredPermission = "logs:read"
			ev.Priority = pb.Priority_PRIORITY_HIGH
			return ev
		}(), wantType: events.TypeTaskProgress, wantPrio: "high", wantPerm: "logs:read", wantMeta: map[string]any{"trace": "abc", "source": "ci"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := fixed(tc.ev)
			roomName := ev.Room
			const seq = uint64(1)<<63 + 7 // beyond float64 precision: must be exact
			out, err := EncodeEvent(roomName, seq, ev)
			if err != nil {
				t.Fatalf("EncodeEvent: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("output is not valid JSON: %s", out)
			}
			if bytes.IndexByte(out, '\n') >= 0 {
				t.Errorf("output holds a newline (it would split the frame): %s", out)
			}

			var msg struct {
				Op    string         `json:"op"`
				Room  string         `json:"room"`
				Seq   json.Number    `json:"seq"`
				Event map[string]any `json:"event"`
			}
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			dec.DisallowUnknownFields()
			if err := dec.Decode(&msg); err != nil {
				t.Fatalf("decode %s: %v", out, err)
			}
			if msg.Op != OpEvent || msg.Room != roomName || msg.Seq.String() != "9223372036854775815" {
				t.Errorf("envelope op=%q room=%q seq=%s, want event %q 9223372036854775815", msg.Op, msg.Room, msg.Seq, roomName)
			}

			e := msg.Event
			wantKeys := []string{"id", "type", "timestamp", "priority", "metadata", "data"}
			if tc.wantUser != "" {
				wantKeys = append(wantKeys, "userId")
			}
			if tc.wantPerm != "" {
				wantKeys = append(wantKeys, "requiredPermission")
			}
			if len(e) != len(wantKeys) {
				t.Errorf("event has keys %v, want exactly %v", keysOf(e), wantKeys)
			}
			for _, k := range wantKeys {
				if _, ok := e[k]; !ok {
					t.Errorf("event lacks %q: %s", k, out)
				}
			}
			check := func(key string, want any) {
				t.Helper()
				if got := e[key]; !reflect.DeepEqual(got, want) {
					t.Errorf("event.%s = %#v, want %#v", key, got, want)
				}
			}
			check("id", ev.Id)
			check("type", tc.wantType)
			check("timestamp", "2030-01-02T03:04:05.123456Z")
			check("priority", tc.wantPrio)
			if tc.wantUser != "" {
				check("userId", tc.wantUser)
			}
			if tc.wantPerm != "" {
				check("requiredPermission", tc.wantPerm)
			}
			wantMeta := tc.wantMeta
			if wantMeta == nil {
				wantMeta = map[string]any{}
			}
			check("metadata", wantMeta)

			// data is the payload's protojson form, whatever its formatting.
			pj, err := protojson.Marshal(payloadOf(t, ev))
			if err != nil {
				t.Fatal(err)
			}
			var wantData any
			d := json.NewDecoder(bytes.NewReader(pj))
			d.UseNumber()
			if err := d.Decode(&wantData); err != nil {
				t.Fatal(err)
			}
			check("data", wantData)
		})
	}
}

// payloadOf returns the message in ev's payload oneof, found through
// reflection so the test does not restate EncodeEvent's switch.
func payloadOf(t *testing.T, ev *pb.Event) proto.Message {
	t.Helper()
	oneof := ev.ProtoReflect().Descriptor().Oneofs().ByName("payload")
	fd := ev.ProtoReflect().WhichOneof(oneof)
	if fd == nil {
		t.Fatal("event has no payload")
	}
	return ev.ProtoReflect().Get(fd).Message().Interface()
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestEncodeEventStable(t *testing.T) {
	// Encoded once per room and shared: the same event encodes to the same
	// bytes every time, metadata order included.
	ev := fixed(events.TaskDeleted(room.User("alice"), "alice", "t1"))
	ev.Metadata = map[string]string{"z": "1", "a": "2", "m": "3", "b": "4"}
	first, err := EncodeEvent("user:alice", 5, ev)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := EncodeEvent("user:alice", 5, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("encodings differ:\n%s\n%s", first, again)
		}
	}
}

func TestPriorityName(t *testing.T) {
	cases := []struct {
		p    pb.Priority
		want string
	}{
		{pb.Priority_PRIORITY_HIGH, "high"},
		{pb.Priority_PRIORITY_NORMAL, "normal"},
		{pb.Priority_PRIORITY_LOW, "low"},
		{pb.Priority_PRIORITY_UNSPECIFIED, "normal"},
		{pb.Priority(99), "normal"},
	}
	for _, tc := range cases {
		if got := PriorityName(tc.p); got != tc.want {
			t.Errorf("PriorityName(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestEncodeReplies(t *testing.T) {
	// A non-UTC time is sent in UTC, to the second.
	exp := time.Date(2030, time.January, 2, 5, 4, 5, 999_000_000, time.FixedZone("CET+2", 2*3600))
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"welcome", EncodeWelcome("s-1", "edge-a", "alice", exp),
			`{"op":"welcome","session":"s-1","node":"edge-a","user":"alice","expiresAt":"2030-01-02T03:04:05Z"}`},
		{"ok", EncodeOK(id(7)), `{"op":"reply","id":7,"ok":true}`},
		{"ok id 0", EncodeOK(id(0)), `{"op":"reply","id":0,"ok":true}`},
		{"ok without id", EncodeOK(nil), `{"op":"reply","ok":true}`},
		{"refreshed", EncodeRefreshed(id(8), exp), `{"op":"reply","id":8,"ok":true,"expiresAt":"2030-01-02T03:04:05Z"}`},
		{"refreshed without id", EncodeRefreshed(nil, exp), `{"op":"reply","ok":true,"expiresAt":"2030-01-02T03:04:05Z"}`},
		{"error", EncodeError(id(9), CodeForbidden, "not a member of project p2"),
			`{"op":"reply","id":9,"ok":false,"error":{"code":"forbidden","message":"not a member of project p2"}}`},
		{"error without id", EncodeError(nil, CodeBadRequest, "bad"), `{"op":"reply","ok":false,"error":{"code":"bad_request","message":"bad"}}`},
		{"pong", EncodePong(id(10)), `{"op":"pong","id":10}`},
		{"pong without id", EncodePong(nil), `{"op":"pong"}`},
		{"unsubscribed", EncodeUnsubscribed("project:p1", "forbidden"), `{"op":"unsubscribed","room":"project:p1","reason":"forbidden"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
}

func TestEncodeErrorEscapes(t *testing.T) {
	// Messages may echo client input; they must stay one valid JSON line.
	msg := "room \"x\"\nsecond line \u2028 <script>"
	out := EncodeError(id(1), CodeBadRequest, msg)
	if !json.Valid(out) || bytes.IndexByte(out, '\n') >= 0 {
		t.Fatalf("EncodeError output is not one JSON line: %q", out)
	}
	var r Reply
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Message != msg {
		t.Errorf("message round-trip = %+v, want %q", r.Error, msg)
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	ev := fixed(events.TaskUpdated(room.Project("p1"), "alice", "t1", &pb.Task{Title: "Rebuild", Progress: 0.5}, "title", "progress"))
	ev.Metadata = map[string]string{"trace": "abc"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("project:p1", 42, ev); err != nil {
			b.Fatal(err)
		}
	}
}
