package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// sampleEvents returns one fully populated, valid event of every type, built
// with the package's builders. Each call returns new events, so a test may
// modify them.
func sampleEvents() map[string]*pb.Event {
	ts := timestamppb.New(time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC))
	created := events.TaskCreated(room.Project("p1"), "u7", &pb.Task{
		Id: "t1", ProjectId: "p1", Title: "Write tests", Description: "all of them",
		Status: pb.TaskStatus_TASK_STATUS_TODO, Assignee: "u8", Labels: []string{"qa", "go"},
		Progress: 0.25, ExecutionId: "x1", CreatedAt: ts, UpdatedAt: ts, CreatedBy: "u7", Revision: 3,
	})
	created.RequiredPermission = "tasks:read"
	created.Priority = pb.Priority_PRIORITY_LOW
	created.Metadata = map[string]string{"trace": "abc", "source": "api"}

	progress := events.TaskProgress(room.Project("p1"), &pb.TaskProgress{
		TaskId: "t1", ExecutionId: "x1", Progress: 0.5, Stage: "build", Message: "compiling",
		Logs: []*pb.LogEntry{{Timestamp: ts, Stream: pb.LogStream_LOG_STREAM_STDOUT, Line: "ok"}},
	})
	progress.RequiredPermission = "logs:read"

	return map[string]*pb.Event{
		events.TypeTaskCreated: created,
		events.TypeTaskUpdated: events.TaskUpdated(room.User("u8"), "u7", "t1",
			&pb.Task{Title: "new", Assignee: ""}, "title", "assignee"),
		events.TypeTaskDeleted:  events.TaskDeleted(room.Project("p1"), "u7", "t1"),
		events.TypeTaskProgress: progress,
		events.TypeSystemStatus: events.SystemStatus(&pb.SystemStatus{
			Status:  pb.HealthStatus_HEALTH_STATUS_DEGRADED,
			Metrics: &pb.SystemMetrics{EdgeNodes: 2, Connections: 1000, EventsInPerSecond: 12.5, P99DeliveryLatencyMs: 40},
			Alerts:  []*pb.Alert{{Id: "a1", Severity: pb.Severity_SEVERITY_WARNING, Message: "slow", Since: ts}},
		}),
	}
}

func validEvent() *pb.Event { return sampleEvents()[events.TypeTaskCreated] }

func TestBuildersProduceValidEvents(t *testing.T) {
	for typ, ev := range sampleEvents() {
		if err := events.Validate(ev); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if ev.Type != typ || events.TypeOf(ev) != typ {
			t.Errorf("%s: Type %q, TypeOf %q", typ, ev.Type, events.TypeOf(ev))
		}
		if _, err := ulid.ParseStrict(ev.Id); err != nil {
			t.Errorf("%s: id %q is not a ULID: %v", typ, ev.Id, err)
		}
	}
	if got := events.SystemStatus(&pb.SystemStatus{}).Room; got != "global" {
		t.Errorf("SystemStatus room = %q, want global", got)
	}
	ev := events.TaskUpdated(room.Project("p1"), "u7", "t1", nil, "title")
	if got := ev.GetTaskUpdated().GetUpdatedBy(); got != "u7" || ev.UserId != "u7" {
		t.Errorf("TaskUpdated actor: updatedBy %q, userId %q; want u7", got, ev.UserId)
	}
}

func TestValidate(t *testing.T) {
	metadata := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	tests := []struct {
		name   string
		mutate func(ev *pb.Event)
		// wantErr is a substring of the error, or "" when ev is valid.
		wantErr string
	}{
		{"valid", func(*pb.Event) {}, ""},

		{"id empty", func(ev *pb.Event) { ev.Id = "" }, "id"},
		{"id uuid", func(ev *pb.Event) { ev.Id = "0b6f3a1e-4a5b-4c1d-9e2f-0123456789ab" }, ""},
		{"id with . and :", func(ev *pb.Event) { ev.Id = "svc:run.42_a-b" }, ""},
		{"id 128 chars", func(ev *pb.Event) { ev.Id = strings.Repeat("a", events.MaxIDLen) }, ""},
		{"id 129 chars", func(ev *pb.Event) { ev.Id = strings.Repeat("a", events.MaxIDLen+1) }, "id"},
		{"id space", func(ev *pb.Event) { ev.Id = "a b" }, "id"},
		{"id star", func(ev *pb.Event) { ev.Id = "a*" }, "id"},
		{"id gt", func(ev *pb.Event) { ev.Id = "a>" }, "id"},
		{"id slash", func(ev *pb.Event) { ev.Id = "a/b" }, "id"},
		{"id newline", func(ev *pb.Event) { ev.Id = "a\nb" }, "id"},
		{"id unicode", func(ev *pb.Event) { ev.Id = "é1" }, "id"},

		{"payload missing", func(ev *pb.Event) { ev.Payload = nil }, "payload: none set"},
		{"type empty", func(ev *pb.Event) { ev.Type = "" }, "does not match payload"},
		{"type mismatch", func(ev *pb.Event) { ev.Type = events.TypeTaskDeleted }, "does not match payload"},
		{"type unknown", func(ev *pb.Event) { ev.Type = "taskCreated" }, "does not match payload"},

		{"timestamp missing", func(ev *pb.Event) { ev.Timestamp = nil }, "timestamp: missing"},
		{"timestamp nanos out of range", func(ev *pb.Event) { ev.Timestamp = &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9} }, "timestamp"},
		{"timestamp after year 9999", func(ev *pb.Event) { ev.Timestamp = &timestamppb.Timestamp{Seconds: 253402300800} }, "timestamp"},

		{"room empty", func(ev *pb.Event) { ev.Room = "" }, "room"},
		{"room global", func(ev *pb.Event) { ev.Room = "global" }, ""},
		{"room user", func(ev *pb.Event) { ev.Room = "user:u1" }, ""},
		{"room dot", func(ev *pb.Event) { ev.Room = "project:p.1" }, "room"},
		{"room wildcard", func(ev *pb.Event) { ev.Room = "project:>" }, "room"},
		{"room unknown kind", func(ev *pb.Event) { ev.Room = "team:t1" }, "room"},
		{"room global with id", func(ev *pb.Event) { ev.Room = "global:x" }, "room"},

		{"userId empty", func(ev *pb.Event) { ev.UserId = "" }, ""},
		{"userId dot", func(ev *pb.Event) { ev.UserId = "u.7" }, "userId"},
		{"userId space", func(ev *pb.Event) { ev.UserId = "u 7" }, "userId"},
		{"userId 65 chars", func(ev *pb.Event) { ev.UserId = strings.Repeat("u", room.MaxIDLen+1) }, "userId"},

		{"requiredPermission empty", func(ev *pb.Event) { ev.RequiredPermission = "" }, ""},
		{"requiredPermission 64 chars", func(ev *pb.Event) { ev.RequiredPermission = strings.Repeat("p", events.MaxPermLen) }, ""},
		{"requiredPermission 65 chars", func(ev *pb.Event) { ev.RequiredPermission = strings.Repeat("p", events.MaxPermLen+1) }, "requiredPermission"},
		{"requiredPermission upper case", func(ev *pb.Event) { ev.RequiredPermission = "Logs:read" }, "requiredPermission"},
		{"requiredPermission space", func(ev *pb.Event) { ev.RequiredPermission = "logs read" }, "requiredPermission"},
		{"requiredPermission wildcard", func(ev *pb.Event) { ev.RequiredPermission = "logs:*" }, "requiredPermission"},

		{"priority unspecified", func(ev *pb.Event) { ev.Priority = pb.Priority_PRIORITY_UNSPECIFIED }, ""},
		{"priority high", func(ev *pb.Event) { ev.Priority = pb.Priority_PRIORITY_HIGH }, ""},
		{"priority 4", func(ev *pb.Event) { ev.Priority = 4 }, "priority 4: unknown"},
		{"priority -1", func(ev *pb.Event) { ev.Priority = -1 }, "priority -1: unknown"},

		{"metadata 32 entries", func(ev *pb.Event) { ev.Metadata = metadata(events.MaxMetadata) }, ""},
		{"metadata 33 entries", func(ev *pb.Event) { ev.Metadata = metadata(events.MaxMetadata + 1) }, "metadata: 33 entries"},
		{"metadata empty key", func(ev *pb.Event) { ev.Metadata = map[string]string{"": "v"} }, "metadata key"},
		{"metadata key 64 bytes", func(ev *pb.Event) { ev.Metadata = map[string]string{strings.Repeat("k", events.MaxMetaKeyLen): "v"} }, ""},
		{"metadata key 65 bytes", func(ev *pb.Event) { ev.Metadata = map[string]string{strings.Repeat("k", events.MaxMetaKeyLen+1): "v"} }, "metadata key"},
		{"metadata value 1024 bytes", func(ev *pb.Event) { ev.Metadata = map[string]string{"k": strings.Repeat("v", events.MaxMetaValLen)} }, ""},
		{"metadata value 1025 bytes", func(ev *pb.Event) { ev.Metadata = map[string]string{"k": strings.Repeat("v", events.MaxMetaValLen+1)} }, "value longer than"},
		{"metadata empty value", func(ev *pb.Event) { ev.Metadata = map[string]string{"k": ""} }, ""},

		{"taskCreated task missing", func(ev *pb.Event) { ev.GetTaskCreated().Task = nil }, "taskCreated.task: missing"},
		{"taskCreated task id empty", func(ev *pb.Event) { ev.GetTaskCreated().Task.Id = "" }, "taskCreated.task.id"},
		{"taskCreated task id dot", func(ev *pb.Event) { ev.GetTaskCreated().Task.Id = "t.1" }, "taskCreated.task.id"},

		{"taskUpdated taskId empty", func(ev *pb.Event) {
			*ev = *events.TaskUpdated(room.Project("p1"), "u7", "", nil)
		}, "taskUpdated.taskId"},
		{"taskUpdated without changes", func(ev *pb.Event) {
			*ev = *events.TaskUpdated(room.Project("p1"), "u7", "t1", nil)
		}, ""},
		{"taskDeleted taskId wildcard", func(ev *pb.Event) {
			*ev = *events.TaskDeleted(room.Project("p1"), "u7", "*")
		}, "taskDeleted.taskId"},
		{"taskDeleted nil payload message", func(ev *pb.Event) {
			ev.Payload, ev.Type = &pb.Event_TaskDeleted{}, events.TypeTaskDeleted
		}, "taskDeleted.taskId"},

		{"taskProgress 0", progressEvent(0), ""},
		{"taskProgress 1", progressEvent(1), ""},
		{"taskProgress NaN", progressEvent(math.NaN()), "taskProgress.progress NaN"},
		{"taskProgress -0.1", progressEvent(-0.1), "taskProgress.progress -0.1"},
		{"taskProgress 1.1", progressEvent(1.1), "taskProgress.progress 1.1"},
		{"taskProgress +Inf", progressEvent(math.Inf(1)), "taskProgress.progress"},
		{"taskProgress -Inf", progressEvent(math.Inf(-1)), "taskProgress.progress"},
		{"taskProgress taskId empty", func(ev *pb.Event) {
			*ev = *events.TaskProgress(room.Project("p1"), &pb.TaskProgress{Progress: 0.5})
		}, "taskProgress.taskId"},

		{"systemStatus unspecified", func(ev *pb.Event) {
			*ev = *events.SystemStatus(&pb.SystemStatus{})
		}, "systemStatus.status: missing"},
		{"systemStatus nil", func(ev *pb.Event) { *ev = *events.SystemStatus(nil) }, "systemStatus.status: missing"},
		{"systemStatus error", func(ev *pb.Event) {
			*ev = *events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_ERROR})
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := validEvent()
			tc.mutate(ev)
			before := proto.Clone(ev)
			err := events.Validate(ev)
			if !proto.Equal(ev, before) {
				t.Errorf("Validate modified the event")
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the event, want an error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate: %q, want it to contain %q", err, tc.wantErr)
			}
			if !errors.Is(err, events.ErrInvalid) || !events.IsInvalid(err) {
				t.Errorf("Validate: %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func progressEvent(p float64) func(*pb.Event) {
	return func(ev *pb.Event) {
		*ev = *events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Progress: p})
	}
}

func TestValidateNil(t *testing.T) {
	if err := events.Validate(nil); !events.IsInvalid(err) {
		t.Fatalf("Validate(nil) = %v, want ErrInvalid", err)
	}
}

func TestValidateClipsEchoedInput(t *testing.T) {
	ev := validEvent()
	ev.UserId = strings.Repeat("x", 1<<16) + "."
	err := events.Validate(ev)
	if err == nil {
		t.Fatal("Validate accepted a 64 KiB userId")
	}
	if len(err.Error()) > 300 {
		t.Fatalf("error is %d bytes, want the echoed userId clipped", len(err.Error()))
	}
}

func TestNormalizeFillsMissingFields(t *testing.T) {
	ev := &pb.Event{
		Room:    "project:p1",
		Payload: &pb.Event_TaskDeleted{TaskDeleted: &pb.TaskDeleted{TaskId: "t1"}},
	}
	before := time.Now()
	events.Normalize(ev)
	after := time.Now()

	if _, err := ulid.ParseStrict(ev.Id); err != nil {
		t.Errorf("id %q is not a ULID: %v", ev.Id, err)
	}
	if ev.Type != events.TypeTaskDeleted {
		t.Errorf("type = %q, want %q", ev.Type, events.TypeTaskDeleted)
	}
	if ts := ev.Timestamp.AsTime(); ts.Before(before.Truncate(time.Microsecond)) || ts.After(after) {
		t.Errorf("timestamp %v, want between %v and %v", ts, before, after)
	}
	if err := events.Validate(ev); err != nil {
		t.Errorf("normalized event: %v", err)
	}

	other := &pb.Event{}
	events.Normalize(other)
	if other.Id == ev.Id {
		t.Errorf("two Normalize calls gave the same id %q", ev.Id)
	}
	if other.Type != "" {
		t.Errorf("Normalize of an event without payload set type %q, want empty", other.Type)
	}
}

func TestNormalizeNeverOverwrites(t *testing.T) {
	ts := timestamppb.New(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	ev := &pb.Event{
		Id:        "my-id",
		Type:      events.TypeSystemStatus, // deliberately wrong: Normalize must keep it
		Timestamp: ts,
		Room:      "project:p1",
		Payload:   &pb.Event_TaskDeleted{TaskDeleted: &pb.TaskDeleted{TaskId: "t1"}},
	}
	want := proto.Clone(ev)
	events.Normalize(ev)
	if !proto.Equal(ev, want) {
		t.Fatalf("Normalize changed a set field:\n got %v\nwant %v", ev, want)
	}
	if ev.Timestamp != ts {
		t.Fatalf("Normalize replaced the timestamp message")
	}
}

func TestPriority(t *testing.T) {
	s := sampleEvents()
	withAlerts := s[events.TypeSystemStatus]
	noAlerts := events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY})
	tests := []struct {
		name string
		ev   *pb.Event
		want pb.Priority
	}{
		{"task_created", s[events.TypeTaskCreated], pb.Priority_PRIORITY_HIGH},
		{"task_updated", s[events.TypeTaskUpdated], pb.Priority_PRIORITY_NORMAL},
		{"task_deleted", s[events.TypeTaskDeleted], pb.Priority_PRIORITY_HIGH},
		{"task_progress", s[events.TypeTaskProgress], pb.Priority_PRIORITY_LOW},
		{"system_status with alerts", withAlerts, pb.Priority_PRIORITY_HIGH},
		{"system_status without alerts", noAlerts, pb.Priority_PRIORITY_NORMAL},
		{"no payload", &pb.Event{}, pb.Priority_PRIORITY_NORMAL},
		{"nil event", nil, pb.Priority_PRIORITY_NORMAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := events.DefaultPriority(tc.ev); got != tc.want {
				t.Errorf("DefaultPriority = %v, want %v", got, tc.want)
			}
			if tc.ev == nil {
				return
			}
			ev := proto.Clone(tc.ev).(*pb.Event)
			ev.Priority = pb.Priority_PRIORITY_UNSPECIFIED
			if got := events.Priority(ev); got != tc.want {
				t.Errorf("Priority (unspecified) = %v, want the default %v", got, tc.want)
			}
			for _, p := range []pb.Priority{pb.Priority_PRIORITY_LOW, pb.Priority_PRIORITY_NORMAL, pb.Priority_PRIORITY_HIGH} {
				ev.Priority = p
				if got := events.Priority(ev); got != p {
					t.Errorf("Priority (set to %v) = %v", p, got)
				}
			}
		})
	}
}

func TestKnownType(t *testing.T) {
	for _, typ := range events.Types {
		if !events.KnownType(typ) {
			t.Errorf("KnownType(%q) = false", typ)
		}
	}
	for _, typ := range []string{"", "taskCreated", "TASK_CREATED", "task_created "} {
		if events.KnownType(typ) {
			t.Errorf("KnownType(%q) = true", typ)
		}
	}
	// Types is in schema order: the oneof's field order.
	fields := (&pb.Event{}).ProtoReflect().Descriptor().Oneofs().ByName("payload").Fields()
	var names []string
	for i := range fields.Len() {
		names = append(names, string(fields.Get(i).Name()))
	}
	if !slices.Equal(names, events.Types) {
		t.Errorf("Types = %v, want the payload fields %v", events.Types, names)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for typ, ev := range sampleEvents() {
		t.Run(typ, func(t *testing.T) {
			bin, err := events.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, ct := range []string{events.ContentTypeProtobuf, ""} {
				got, err := events.Decode(bin, ct)
				if err != nil {
					t.Fatalf("Decode(protobuf, %q): %v", ct, err)
				}
				if !proto.Equal(got, ev) {
					t.Fatalf("Decode(protobuf, %q):\n got %v\nwant %v", ct, got, ev)
				}
			}

			js, err := events.MarshalJSON(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Decode(js, events.ContentTypeJSON)
			if err != nil {
				t.Fatalf("Decode(JSON): %v\n%s", err, js)
			}
			if !proto.Equal(got, ev) {
				t.Fatalf("Decode(JSON):\n got %v\nwant %v", got, ev)
			}
		})
	}
}

func TestDecodeNormalizes(t *testing.T) {
	body := `{"room":"project:p1","taskDeleted":{"taskId":"t1"}}`
	ev, err := events.Decode([]byte(body), events.ContentTypeJSON)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if ev.Id == "" || ev.Timestamp == nil || ev.Type != events.TypeTaskDeleted {
		t.Fatalf("Decode did not fill defaults: %v", ev)
	}
}

func TestDecodeErrors(t *testing.T) {
	validJSON, err := events.MarshalJSON(validEvent())
	if err != nil {
		t.Fatal(err)
	}
	withField := func(field string) []byte {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(validJSON, &m); err != nil {
			t.Fatal(err)
		}
		m[field] = json.RawMessage(`"x"`)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	validBin, err := events.Marshal(validEvent())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		body        []byte
		contentType string
		wantErr     string
		wantInvalid bool // errors.Is(err, ErrInvalid): the body decoded but is not a valid event
	}{
		{"unknown JSON field", withField("usrId"), events.ContentTypeJSON, "unknown field", false},
		{"unknown nested JSON field", []byte(`{"room":"global","systemStatus":{"status":"HEALTH_STATUS_HEALTHY","colour":"red"}}`), events.ContentTypeJSON, "unknown field", false},
		{"JSON body as protobuf", validJSON, events.ContentTypeProtobuf, "decode protobuf event", false},
		{"protobuf body as JSON", validBin, events.ContentTypeJSON, "decode JSON event", false},
		{"truncated protobuf", validBin[:len(validBin)-1], events.ContentTypeProtobuf, "decode protobuf event", false},
		{"JSON null", []byte(`null`), events.ContentTypeJSON, "decode JSON event", false},
		{"empty JSON body", nil, events.ContentTypeJSON, "decode JSON event", false},
		{"unsupported content type", validBin, "application/octet-stream", "unsupported Content-Type", false},
		{"content type with parameters", validJSON, "application/json; charset=utf-8", "unsupported Content-Type", false},
		{"upper-case content type", validJSON, "Application/JSON", "unsupported Content-Type", false},
		{"empty protobuf body", nil, events.ContentTypeProtobuf, "payload: none set", true},
		{"empty JSON object", []byte(`{}`), events.ContentTypeJSON, "payload: none set", true},
		{"invalid event", []byte(`{"room":"project:p.1","taskDeleted":{"taskId":"t1"}}`), events.ContentTypeJSON, "room", true},
		{"unknown priority number", []byte(`{"room":"global","priority":7,"systemStatus":{"status":"HEALTH_STATUS_HEALTHY"}}`), events.ContentTypeJSON, "priority 7", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := events.Decode(tc.body, tc.contentType)
			if err == nil {
				t.Fatalf("Decode = %v, want error", ev)
			}
			if ev != nil {
				t.Errorf("Decode returned an event with its error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Decode: %q, want it to contain %q", err, tc.wantErr)
			}
			if got := errors.Is(err, events.ErrInvalid); got != tc.wantInvalid {
				t.Errorf("errors.Is(%v, ErrInvalid) = %v, want %v", err, got, tc.wantInvalid)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	for _, ct := range []string{events.ContentTypeProtobuf, events.ContentTypeJSON} {
		_, err := events.Decode(make([]byte, events.MaxEventBytes+1), ct)
		if !errors.Is(err, events.ErrTooLarge) || !events.IsInvalid(err) {
			t.Errorf("Decode(%d bytes, %s) = %v, want ErrTooLarge", events.MaxEventBytes+1, ct, err)
		}
	}

	// A valid event of exactly MaxEventBytes is accepted.
	ev := maxSizeEvent(t, events.MaxEventBytes)
	body, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(body, events.ContentTypeProtobuf)
	if err != nil {
		t.Fatalf("Decode(%d bytes): %v", len(body), err)
	}
	if !proto.Equal(got, ev) {
		t.Fatal("Decode of the largest event changed it")
	}
}

// maxSizeEvent returns a valid task_created event whose protobuf encoding is
// exactly size bytes, padded with the task's description.
func maxSizeEvent(t testing.TB, size int) *pb.Event {
	t.Helper()
	ev := validEvent()
	task := ev.GetTaskCreated().Task
	// Each round fixes the size up to a change in the width of a length
	// prefix, so a few rounds are enough.
	for range 5 {
		switch n := proto.Size(ev); {
		case n == size:
			return ev
		case n < size:
			task.Description += strings.Repeat("d", size-n)
		default:
			task.Description = task.Description[:len(task.Description)-(n-size)]
		}
	}
	t.Fatalf("could not build an event of %d bytes (got %d)", size, proto.Size(ev))
	return nil
}

// TestDecodedEventsMarshalJSON checks that every event Decode accepts can be
// re-encoded in the public JSON form, which is what clients receive.
func TestDecodedEventsMarshalJSON(t *testing.T) {
	t.Skip("known bug: Validate does not check nested timestamps (task.createdAt, task.updatedAt, " +
		"taskProgress.logs[].timestamp, systemStatus.alerts[].since), so Decode accepts events " +
		"that MarshalJSON cannot encode")
	bad := &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9}
	evs := []*pb.Event{
		events.TaskCreated(room.Project("p1"), "u7", &pb.Task{Id: "t1", CreatedAt: bad}),
		events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Logs: []*pb.LogEntry{{Timestamp: bad}}}),
		events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_ERROR, Alerts: []*pb.Alert{{Since: bad}}}),
	}
	for _, ev := range evs {
		body, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := events.Decode(body, events.ContentTypeProtobuf)
		if err != nil {
			continue // rejected: fine
		}
		if _, err := events.MarshalJSON(got); err != nil {
			t.Errorf("Decode accepted a %s event that MarshalJSON rejects: %v", events.TypeOf(got), err)
		}
	}
}

// TestJSONFieldNames pins the public JSON contract: protojson with
// lowerCamelCase names.
func TestJSONFieldNames(t *testing.T) {
	envelope := []string{"id", "type", "timestamp", "userId", "room", "requiredPermission", "priority", "metadata"}
	payloads := map[string]string{
		events.TypeTaskCreated:  "taskCreated",
		events.TypeTaskUpdated:  "taskUpdated",
		events.TypeTaskDeleted:  "taskDeleted",
		events.TypeTaskProgress: "taskProgress",
		events.TypeSystemStatus: "systemStatus",
	}
	nested := map[string][]string{
		events.TypeTaskCreated:  {"task", "createdBy"},
		events.TypeTaskUpdated:  {"taskId", "changes", "updatedBy", "changedFields"},
		events.TypeTaskDeleted:  {"taskId", "deletedBy"},
		events.TypeTaskProgress: {"taskId", "executionId", "progress", "stage", "message", "logs"},
		events.TypeSystemStatus: {"status", "metrics", "alerts"},
	}
	for typ, ev := range sampleEvents() {
		t.Run(typ, func(t *testing.T) {
			ev.UserId = "u7"
			ev.RequiredPermission = "tasks:read"
			ev.Priority = pb.Priority_PRIORITY_HIGH
			ev.Metadata = map[string]string{"k": "v"}
			if p := ev.GetTaskDeleted(); p != nil {
				p.DeletedBy = "u7"
			}
			b, err := events.MarshalJSON(ev)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, b)
			}
			want := append(slices.Clone(envelope), payloads[typ])
			if got := sortedKeys(m); !slices.Equal(got, sortedStrings(want)) {
				t.Errorf("keys = %v, want %v\n%s", got, sortedStrings(want), b)
			}
			var payload map[string]json.RawMessage
			if err := json.Unmarshal(m[payloads[typ]], &payload); err != nil {
				t.Fatalf("payload %s: %v", payloads[typ], err)
			}
			if got := sortedKeys(payload); !slices.Equal(got, sortedStrings(nested[typ])) {
				t.Errorf("%s keys = %v, want %v", payloads[typ], got, sortedStrings(nested[typ]))
			}
			if got := string(m["type"]); got != `"`+typ+`"` {
				t.Errorf("type = %s, want %q", got, typ)
			}
			if got := string(m["priority"]); got != `"PRIORITY_HIGH"` {
				t.Errorf("priority = %s, want \"PRIORITY_HIGH\"", got)
			}
			var ts string
			if err := json.Unmarshal(m["timestamp"], &ts); err != nil {
				t.Errorf("timestamp %s is not a string: %v", m["timestamp"], err)
			} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				t.Errorf("timestamp %q is not RFC 3339: %v", ts, err)
			}
		})
	}

	// Task's own names, as they appear in taskCreated.task.
	b, err := events.MarshalJSON(sampleEvents()[events.TypeTaskCreated])
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TaskCreated struct {
			Task map[string]json.RawMessage `json:"task"`
		} `json:"taskCreated"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	wantTask := sortedStrings([]string{"id", "projectId", "title", "description", "status", "assignee", "labels",
		"progress", "executionId", "createdAt", "updatedAt", "createdBy", "revision"})
	if got := sortedKeys(doc.TaskCreated.Task); !slices.Equal(got, wantTask) {
		t.Errorf("task keys = %v, want %v", got, wantTask)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// FuzzDecode checks that Decode never panics, that every event it returns is
// valid, and that a decoded event survives a protobuf round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, ev := range sampleEvents() {
		bin, err := events.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		js, err := events.MarshalJSON(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bin, false)
		f.Add(js, true)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"room":"global"}`,
		`{"room":"project:p1","taskDeleted":{"taskId":"t1"}}`,
		`{"room":"global","priority":7,"systemStatus":{"status":"HEALTH_STATUS_HEALTHY"}}`,
		`{"room":"project:p1","taskProgress":{"taskId":"t1","progress":"NaN"}}`,
		`{"id":"","type":"task_deleted","room":"user:u","taskDeleted":{"taskId":"t"},"metadata":{"":""}}`,
		`{"room":"global","timestamp":"9999-12-31T23:59:59Z","systemStatus":{"status":1}}`,
	} {
		f.Add([]byte(s), true)
	}
	f.Add([]byte{0x0a, 0x01}, false)
	f.Add([]byte{0xa2, 0x01, 0x00}, false)

	f.Fuzz(func(t *testing.T, body []byte, isJSON bool) {
		ct := events.ContentTypeProtobuf
		if isJSON {
			ct = events.ContentTypeJSON
		}
		ev, err := events.Decode(body, ct)
		if err != nil {
			if ev != nil {
				t.Fatalf("Decode returned an event with error %v", err)
			}
			return
		}
		if err := events.Validate(ev); err != nil {
			t.Fatalf("Decode returned an invalid event: %v\n%v", err, ev)
		}
		bin, err := events.Marshal(ev)
		if err != nil {
			t.Fatalf("Marshal of a decoded event: %v", err)
		}
		again, err := events.Decode(bin, events.ContentTypeProtobuf)
		if err != nil {
			t.Fatalf("re-decoding a decoded event: %v", err)
		}
		if !proto.Equal(again, ev) {
			t.Fatalf("protobuf round trip changed the event:\n got %v\nwant %v", again, ev)
		}
	})
}
