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
		{"systemStatus 4", statusEvent(4), "systemStatus.status 4: unknown"},
		{"systemStatus -1", statusEvent(-1), "systemStatus.status -1: unknown"},

		// A task, whether created or the changes of an update: known status,
		// progress 0..1, timestamps in range when set.
		{"taskCreated task status unspecified", createdTask(func(t *pb.Task) { t.Status = pb.TaskStatus_TASK_STATUS_UNSPECIFIED }), ""},
		{"taskCreated task status cancelled", createdTask(func(t *pb.Task) { t.Status = pb.TaskStatus_TASK_STATUS_CANCELLED }), ""},
		{"taskCreated task status 7", createdTask(func(t *pb.Task) { t.Status = 7 }), "taskCreated.task.status 7: unknown"},
		{"taskCreated task status -1", createdTask(func(t *pb.Task) { t.Status = -1 }), "taskCreated.task.status -1: unknown"},
		{"taskCreated task progress 0", createdTask(func(t *pb.Task) { t.Progress = 0 }), ""},
		{"taskCreated task progress 1", createdTask(func(t *pb.Task) { t.Progress = 1 }), ""},
		{"taskCreated task progress -0.1", createdTask(func(t *pb.Task) { t.Progress = -0.1 }), "taskCreated.task.progress -0.1: want 0..1"},
		{"taskCreated task progress 1.1", createdTask(func(t *pb.Task) { t.Progress = 1.1 }), "taskCreated.task.progress 1.1: want 0..1"},
		{"taskCreated task progress NaN", createdTask(func(t *pb.Task) { t.Progress = math.NaN() }), "taskCreated.task.progress NaN"},
		{"taskCreated task progress +Inf", createdTask(func(t *pb.Task) { t.Progress = math.Inf(1) }), "taskCreated.task.progress +Inf"},
		{"taskCreated task without timestamps", createdTask(func(t *pb.Task) { t.CreatedAt, t.UpdatedAt = nil, nil }), ""},
		{"taskCreated task createdAt nanos out of range", createdTask(func(t *pb.Task) { t.CreatedAt = badNanos() }), "taskCreated.task timestamps"},
		{"taskCreated task createdAt after year 9999", createdTask(func(t *pb.Task) { t.CreatedAt = afterYear9999() }), "taskCreated.task timestamps"},
		{"taskCreated task updatedAt nanos out of range", createdTask(func(t *pb.Task) { t.UpdatedAt = badNanos() }), "taskCreated.task timestamps"},
		{"taskCreated task updatedAt before year 1", createdTask(func(t *pb.Task) { t.UpdatedAt = beforeYear1() }), "taskCreated.task timestamps"},

		{"taskUpdated changes empty", updatedEvent(&pb.Task{}), ""},
		{"taskUpdated changes status running", updatedEvent(&pb.Task{Status: pb.TaskStatus_TASK_STATUS_RUNNING}), ""},
		{"taskUpdated changes status 7", updatedEvent(&pb.Task{Status: 7}), "taskUpdated.changes.status 7: unknown"},
		{"taskUpdated changes progress 1", updatedEvent(&pb.Task{Progress: 1}), ""},
		{"taskUpdated changes progress -0.1", updatedEvent(&pb.Task{Progress: -0.1}), "taskUpdated.changes.progress -0.1: want 0..1"},
		{"taskUpdated changes progress 1.1", updatedEvent(&pb.Task{Progress: 1.1}), "taskUpdated.changes.progress 1.1: want 0..1"},
		{"taskUpdated changes progress NaN", updatedEvent(&pb.Task{Progress: math.NaN()}), "taskUpdated.changes.progress NaN"},
		{"taskUpdated changes updatedAt", updatedEvent(&pb.Task{UpdatedAt: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))}), ""},
		{"taskUpdated changes createdAt nanos out of range", updatedEvent(&pb.Task{CreatedAt: badNanos()}), "taskUpdated.changes timestamps"},
		{"taskUpdated changes updatedAt after year 9999", updatedEvent(&pb.Task{UpdatedAt: afterYear9999()}), "taskUpdated.changes timestamps"},

		// Every log line is checked, not only the first.
		{"taskProgress log stream unspecified", logsEvent(&pb.LogEntry{Line: "x"}), ""},
		{"taskProgress log stream system", logsEvent(&pb.LogEntry{Stream: pb.LogStream_LOG_STREAM_SYSTEM}), ""},
		{"taskProgress log stream 4", logsEvent(okLog(), &pb.LogEntry{Stream: 4}), "taskProgress.logs.stream 4: unknown"},
		{"taskProgress log stream -1", logsEvent(okLog(), &pb.LogEntry{Stream: -1}), "taskProgress.logs.stream -1: unknown"},
		{"taskProgress log without timestamp", logsEvent(&pb.LogEntry{Stream: pb.LogStream_LOG_STREAM_STDERR, Line: "x"}), ""},
		{"taskProgress log timestamp nanos out of range", logsEvent(okLog(), &pb.LogEntry{Timestamp: badNanos()}), "taskProgress.logs.timestamp"},
		{"taskProgress log timestamp after year 9999", logsEvent(okLog(), &pb.LogEntry{Timestamp: afterYear9999()}), "taskProgress.logs.timestamp"},

		// Every alert is checked, not only the first.
		{"systemStatus alert severity unspecified", alertsEvent(&pb.Alert{Id: "a1"}), ""},
		{"systemStatus alert severity critical", alertsEvent(&pb.Alert{Severity: pb.Severity_SEVERITY_CRITICAL}), ""},
		{"systemStatus alert severity 4", alertsEvent(okAlert(), &pb.Alert{Severity: 4}), "systemStatus.alerts.severity 4: unknown"},
		{"systemStatus alert severity -1", alertsEvent(okAlert(), &pb.Alert{Severity: -1}), "systemStatus.alerts.severity -1: unknown"},
		{"systemStatus alert without since", alertsEvent(&pb.Alert{Severity: pb.Severity_SEVERITY_INFO}), ""},
		{"systemStatus alert since nanos out of range", alertsEvent(okAlert(), &pb.Alert{Since: badNanos()}), "systemStatus.alerts.since"},
		{"systemStatus alert since before year 1", alertsEvent(okAlert(), &pb.Alert{Since: beforeYear1()}), "systemStatus.alerts.since"},
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

// Timestamps that timestamppb.CheckValid refuses, and so protojson cannot
// encode. Each call returns a new message.
func badNanos() *timestamppb.Timestamp      { return &timestamppb.Timestamp{Seconds: 1, Nanos: 1e9} }
func afterYear9999() *timestamppb.Timestamp { return &timestamppb.Timestamp{Seconds: 253402300800} }
func beforeYear1() *timestamppb.Timestamp   { return &timestamppb.Timestamp{Seconds: -62135596801} }

// createdTask modifies the task of the valid task_created event.
func createdTask(mutate func(*pb.Task)) func(*pb.Event) {
	return func(ev *pb.Event) { mutate(ev.GetTaskCreated().GetTask()) }
}

func updatedEvent(changes *pb.Task) func(*pb.Event) {
	return func(ev *pb.Event) {
		*ev = *events.TaskUpdated(room.Project("p1"), "u7", "t1", changes, "status")
	}
}

func okLog() *pb.LogEntry {
	return &pb.LogEntry{Timestamp: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), Stream: pb.LogStream_LOG_STREAM_STDOUT, Line: "ok"}
}

func logsEvent(logs ...*pb.LogEntry) func(*pb.Event) {
	return func(ev *pb.Event) {
		*ev = *events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Progress: 0.5, Logs: logs})
	}
}

func okAlert() *pb.Alert {
	return &pb.Alert{Id: "a1", Severity: pb.Severity_SEVERITY_WARNING, Message: "slow", Since: timestamppb.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))}
}

func alertsEvent(alerts ...*pb.Alert) func(*pb.Event) {
	return func(ev *pb.Event) {
		*ev = *events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_DEGRADED, Alerts: alerts})
	}
}

func statusEvent(s pb.HealthStatus) func(*pb.Event) {
	return func(ev *pb.Event) { *ev = *events.SystemStatus(&pb.SystemStatus{Status: s}) }
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

// TestDecodeDerivesTypeOnly checks that Decode fills the type from the
// payload when it is left out, and nothing else: an id or timestamp made up
// by one reader would differ from the next reader's.
func TestDecodeDerivesTypeOnly(t *testing.T) {
	const ts = `"timestamp":"2025-03-04T05:06:07Z"`
	tests := []struct {
		name    string
		body    string
		wantErr string // "" when the body decodes
	}{
		{"type left out", `{"id":"e1",` + ts + `,"room":"project:p1","taskDeleted":{"taskId":"t1"}}`, ""},
		{"type empty", `{"id":"e1","type":"",` + ts + `,"room":"project:p1","taskDeleted":{"taskId":"t1"}}`, ""},
		{"type set wrong", `{"id":"e1","type":"task_created",` + ts + `,"room":"project:p1","taskDeleted":{"taskId":"t1"}}`, "does not match payload"},
		{"id left out", `{` + ts + `,"room":"project:p1","taskDeleted":{"taskId":"t1"}}`, `id ""`},
		{"timestamp left out", `{"id":"e1","room":"project:p1","taskDeleted":{"taskId":"t1"}}`, "timestamp: missing"},
		{"id and timestamp left out", `{"room":"project:p1","taskDeleted":{"taskId":"t1"}}`, `id ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := events.Decode([]byte(tc.body), events.ContentTypeJSON)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Decode accepted %s: %v", tc.body, ev)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !events.IsInvalid(err) {
					t.Fatalf("Decode: %v, want an invalid-event error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := &pb.Event{
				Id:        "e1",
				Type:      events.TypeTaskDeleted,
				Timestamp: timestamppb.New(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)),
				Room:      "project:p1",
				Payload:   &pb.Event_TaskDeleted{TaskDeleted: &pb.TaskDeleted{TaskId: "t1"}},
			}
			if !proto.Equal(ev, want) {
				t.Fatalf("Decode:\n got %v\nwant %v", ev, want)
			}
		})
	}

	// The same holds for protobuf bodies.
	ev := validEvent()
	ev.Id = ""
	body, err := events.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Decode(body, events.ContentTypeProtobuf); err == nil || !strings.Contains(err.Error(), `id ""`) {
		t.Errorf("Decode of a protobuf event without id: %v, want an id error", err)
	}
}

// TestDecodeContentTypes checks that the Content-Type is matched as a media
// type: parameters are ignored and case does not matter.
func TestDecodeContentTypes(t *testing.T) {
	want := validEvent()
	bin, err := events.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	js, err := events.MarshalJSON(want)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		contentType string
		body        []byte
	}{
		{"", bin},
		{"application/protobuf", bin},
		{"Application/Protobuf", bin},
		{"APPLICATION/PROTOBUF", bin},
		{"application/protobuf; proto=eventedge.v1.Event", bin},
		{"application/json", js},
		{"Application/JSON", js},
		{"application/json; charset=utf-8", js},
		{"application/json;charset=UTF-8", js},
		{"application/json ; charset=utf-8", js},
	}
	for _, tc := range tests {
		t.Run(tc.contentType, func(t *testing.T) {
			got, err := events.Decode(tc.body, tc.contentType)
			if err != nil {
				t.Fatalf("Decode(%q): %v", tc.contentType, err)
			}
			if !proto.Equal(got, want) {
				t.Fatalf("Decode(%q):\n got %v\nwant %v", tc.contentType, got, want)
			}
		})
	}
}

// TestDecodeErrors checks that every error of Decode is one IsInvalid
// reports: a body that does not decode now will not decode on a retry.
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
	// binWithout returns the protobuf encoding of the valid event with one
	// envelope field cleared.
	binWithout := func(clear func(*pb.Event)) []byte {
		ev := validEvent()
		clear(ev)
		b, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A valid id and timestamp, so that a JSON case fails on what it names.
	const envelope = `"id":"e1","timestamp":"2025-03-04T05:06:07Z"`

	tests := []struct {
		name        string
		body        []byte
		contentType string
		wantErr     string
	}{
		{"unknown JSON field", withField("usrId"), events.ContentTypeJSON, `unknown field "usrId"`},
		{"unknown nested JSON field", []byte(`{` + envelope + `,"room":"global","systemStatus":{"status":"HEALTH_STATUS_HEALTHY","colour":"red"}}`), events.ContentTypeJSON, `unknown field "colour"`},
		{"JSON body as protobuf", validJSON, events.ContentTypeProtobuf, "protobuf body: "},
		{"protobuf body as JSON", validBin, events.ContentTypeJSON, "JSON body: "},
		{"truncated protobuf", validBin[:len(validBin)-1], events.ContentTypeProtobuf, "protobuf body: "},
		{"JSON null", []byte(`null`), events.ContentTypeJSON, "JSON body: "},
		{"JSON array", []byte(`[]`), events.ContentTypeJSON, "JSON body: "},
		{"empty JSON body", nil, events.ContentTypeJSON, "JSON body: "},
		{"unsupported content type", validBin, "application/octet-stream", "unsupported Content-Type"},
		{"text/plain content type", validJSON, "text/plain", "unsupported Content-Type"},
		{"content type prefix", validJSON, "application/jsonx", "unsupported Content-Type"},
		{"malformed content type parameter", validJSON, "application/json; =x", "unsupported Content-Type"},

		// An empty body decodes to an event with nothing set; the id is
		// the first field Validate checks.
		{"empty protobuf body", nil, events.ContentTypeProtobuf, `id ""`},
		{"empty JSON object", []byte(`{}`), events.ContentTypeJSON, `id ""`},
		{"protobuf without id", binWithout(func(ev *pb.Event) { ev.Id = "" }), events.ContentTypeProtobuf, `id ""`},
		{"protobuf without timestamp", binWithout(func(ev *pb.Event) { ev.Timestamp = nil }), events.ContentTypeProtobuf, "timestamp: missing"},
		{"protobuf without payload", binWithout(func(ev *pb.Event) { ev.Payload, ev.Type = nil, "" }), events.ContentTypeProtobuf, "payload: none set"},
		{"JSON without id", []byte(`{"timestamp":"2025-03-04T05:06:07Z","room":"project:p1","taskDeleted":{"taskId":"t1"}}`), events.ContentTypeJSON, `id ""`},
		{"JSON without timestamp", []byte(`{"id":"e1","room":"project:p1","taskDeleted":{"taskId":"t1"}}`), events.ContentTypeJSON, "timestamp: missing"},
		{"JSON without payload", []byte(`{` + envelope + `,"room":"global"}`), events.ContentTypeJSON, "payload: none set"},
		{"invalid room", []byte(`{` + envelope + `,"room":"project:p.1","taskDeleted":{"taskId":"t1"}}`), events.ContentTypeJSON, "room"},
		{"unknown priority number", []byte(`{` + envelope + `,"room":"global","priority":7,"systemStatus":{"status":"HEALTH_STATUS_HEALTHY"}}`), events.ContentTypeJSON, "priority 7: unknown"},
		// protojson refuses such a timestamp while parsing; only a protobuf
		// body reaches Validate's check (see TestDecodedEventsMarshalJSON).
		{"JSON nested timestamp before year 1", []byte(`{` + envelope + `,"room":"global","systemStatus":{"status":"HEALTH_STATUS_HEALTHY","alerts":[{"since":"0000-12-31T23:59:59Z"}]}}`), events.ContentTypeJSON, "JSON body: "},
		{"unknown task status number", []byte(`{` + envelope + `,"room":"project:p1","taskCreated":{"task":{"id":"t1","status":9}}}`), events.ContentTypeJSON, "taskCreated.task.status 9: unknown"},
		{"task progress above 1", []byte(`{` + envelope + `,"room":"project:p1","taskUpdated":{"taskId":"t1","changes":{"progress":1.5}}}`), events.ContentTypeJSON, "taskUpdated.changes.progress 1.5"},
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
			if !errors.Is(err, events.ErrInvalid) || !events.IsInvalid(err) {
				t.Errorf("Decode: %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	// 1 MiB is NATS' default max_payload, which counts the headers too; 4 KiB
	// of it is left for them.
	if events.MaxEventBytes != 1<<20-4<<10 {
		t.Errorf("MaxEventBytes = %d, want 1 MiB - 4 KiB (%d)", events.MaxEventBytes, 1<<20-4<<10)
	}
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
// re-encoded in the public JSON form, which is what clients receive: a nested
// timestamp protojson cannot encode makes the event invalid.
func TestDecodedEventsMarshalJSON(t *testing.T) {
	evs := map[string]*pb.Event{
		"task createdAt":    events.TaskCreated(room.Project("p1"), "u7", &pb.Task{Id: "t1", CreatedAt: badNanos()}),
		"task updatedAt":    events.TaskCreated(room.Project("p1"), "u7", &pb.Task{Id: "t1", UpdatedAt: afterYear9999()}),
		"changes createdAt": events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{CreatedAt: beforeYear1()}),
		"changes updatedAt": events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{UpdatedAt: badNanos()}),
		"log timestamp":     events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Logs: []*pb.LogEntry{okLog(), {Timestamp: badNanos()}}}),
		"alert since":       events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_ERROR, Alerts: []*pb.Alert{okAlert(), {Since: afterYear9999()}}}),
	}
	for name, ev := range evs {
		t.Run(name, func(t *testing.T) {
			if _, err := events.MarshalJSON(ev); err == nil {
				t.Fatal("MarshalJSON accepted the event: the case tests nothing")
			}
			body, err := events.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Decode(body, events.ContentTypeProtobuf)
			if err == nil {
				_, jsonErr := events.MarshalJSON(got)
				t.Fatalf("Decode accepted a %s event that MarshalJSON rejects: %v", events.TypeOf(got), jsonErr)
			}
			if !events.IsInvalid(err) {
				t.Errorf("Decode: IsInvalid(%v) = false", err)
			}
		})
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
		`{"id":"e1","timestamp":"2025-03-04T05:06:07Z","room":"global","systemStatus":{"status":1,"alerts":[{"severity":9,"since":"2025-03-04T05:06:07Z"}]}}`,
		`{"id":"e1","timestamp":"2025-03-04T05:06:07Z","room":"project:p1","taskUpdated":{"taskId":"t1","changes":{"status":9,"progress":1.5}}}`,
		`{"id":"e1","timestamp":"2025-03-04T05:06:07Z","room":"project:p1","taskProgress":{"taskId":"t1","logs":[{"stream":7,"timestamp":"2025-03-04T05:06:07Z"}]}}`,
	} {
		f.Add([]byte(s), true)
	}
	// Protobuf can carry nested timestamps that protojson cannot encode.
	for _, ev := range []*pb.Event{
		events.TaskCreated(room.Project("p1"), "u7", &pb.Task{Id: "t1", CreatedAt: badNanos()}),
		events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_ERROR, Alerts: []*pb.Alert{{Since: afterYear9999()}}}),
	} {
		bin, err := events.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bin, false)
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
			if !events.IsInvalid(err) {
				t.Fatalf("Decode: IsInvalid(%v) = false", err)
			}
			return
		}
		if err := events.Validate(ev); err != nil {
			t.Fatalf("Decode returned an invalid event: %v\n%v", err, ev)
		}
		if _, err := events.MarshalJSON(ev); err != nil {
			t.Fatalf("MarshalJSON of a decoded event: %v\n%v", err, ev)
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
