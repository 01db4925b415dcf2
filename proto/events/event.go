package events

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"mime"
	"time"

	"github.com/oklog/ulid/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// Event types: the snake_case names of the payload fields of Event.
const (
	TypeTaskCreated  = "task_created"
	TypeTaskUpdated  = "task_updated"
	TypeTaskDeleted  = "task_deleted"
	TypeTaskProgress = "task_progress"
	TypeSystemStatus = "system_status"
)

// Types lists every event type, in schema order.
var Types = []string{TypeTaskCreated, TypeTaskUpdated, TypeTaskDeleted, TypeTaskProgress, TypeSystemStatus}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Content types of NATS message bodies (the Content-Type header).
const (
	HeaderContentType   = "Content-Type"
	ContentTypeProtobuf = "application/protobuf"
	ContentTypeJSON     = "application/json"
)

// Limits enforced by Validate.
const (
	// MaxEventBytes is the largest encoded event: NATS' default max_payload
	// (1 MiB, which counts headers too) less 4 KiB for the headers.
	MaxEventBytes = 1<<20 - 4<<10
	MaxIDLen      = 128
	MaxMetadata   = 32
	MaxMetaKeyLen = 64
	MaxMetaValLen = 1024
	MaxPermLen    = 64
)

// NewID returns a new ULID: unique, and sortable by creation time.
func NewID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// TypeOf returns the type named by ev's payload, or "" when no payload is set.
func TypeOf(ev *pb.Event) string {
	switch ev.GetPayload().(type) {
	case *pb.Event_TaskCreated:
		return TypeTaskCreated
	case *pb.Event_TaskUpdated:
		return TypeTaskUpdated
	case *pb.Event_TaskDeleted:
		return TypeTaskDeleted
	case *pb.Event_TaskProgress:
		return TypeTaskProgress
	case *pb.Event_SystemStatus:
		return TypeSystemStatus
	}
	return ""
}

// DefaultPriority is the priority of an event whose envelope leaves it
// unspecified: system_status with alerts, task_created and task_deleted are
// high; task_updated and system_status without alerts are normal;
// task_progress is low.
func DefaultPriority(ev *pb.Event) pb.Priority {
	switch p := ev.GetPayload().(type) {
	case *pb.Event_TaskCreated, *pb.Event_TaskDeleted:
		return pb.Priority_PRIORITY_HIGH
	case *pb.Event_SystemStatus:
		if len(p.SystemStatus.GetAlerts()) > 0 {
			return pb.Priority_PRIORITY_HIGH
		}
		return pb.Priority_PRIORITY_NORMAL
	case *pb.Event_TaskProgress:
		return pb.Priority_PRIORITY_LOW
	}
	return pb.Priority_PRIORITY_NORMAL
}

// Priority returns ev's priority, or its DefaultPriority when unspecified.
func Priority(ev *pb.Event) pb.Priority {
	if p := ev.GetPriority(); p != pb.Priority_PRIORITY_UNSPECIFIED {
		return p
	}
	return DefaultPriority(ev)
}

// Normalize fills what a publisher may leave out: a new id, the current time
// and the type derived from the payload. It never overwrites a set field.
func Normalize(ev *pb.Event) {
	if ev.Id == "" {
		ev.Id = NewID()
	}
	if ev.Timestamp == nil {
		ev.Timestamp = timestamppb.Now()
	}
	if ev.Type == "" {
		ev.Type = TypeOf(ev)
	}
}

// ErrInvalid is wrapped by every error Validate returns.
var ErrInvalid = errors.New("invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks ev against the contract and returns an error naming the
// first field that is wrong. It does not modify ev; call Normalize first to
// fill defaults.
func Validate(ev *pb.Event) error {
	if ev == nil {
		return invalid("nil event")
	}
	if ev.Id == "" || len(ev.Id) > MaxIDLen || !idChars(ev.Id) {
		return invalid("id %q: want 1-%d characters of A-Z a-z 0-9 _ - . :", clip(ev.Id), MaxIDLen)
	}
	t := TypeOf(ev)
	if t == "" {
		return invalid("payload: none set (want one of %v)", Types)
	}
	if ev.Type != t {
		return invalid("type %q does not match payload %s", clip(ev.Type), t)
	}
	if ev.Timestamp == nil {
		return invalid("timestamp: missing")
	}
	if err := ev.Timestamp.CheckValid(); err != nil {
		return invalid("timestamp: %v", err)
	}
	if _, err := room.Parse(ev.Room); err != nil {
		return invalid("room: %v", err)
	}
	if ev.UserId != "" && !room.ValidID(ev.UserId) {
		return invalid("userId %q: want 1-%d characters of A-Z a-z 0-9 _ -", clip(ev.UserId), room.MaxIDLen)
	}
	if p := ev.RequiredPermission; p != "" && (len(p) > MaxPermLen || !permChars(p)) {
		return invalid("requiredPermission %q: want 1-%d characters of a-z 0-9 _ - . :", clip(p), MaxPermLen)
	}
	if _, ok := pb.Priority_name[int32(ev.Priority)]; !ok {
		return invalid("priority %d: unknown", ev.Priority)
	}
	if len(ev.Metadata) > MaxMetadata {
		return invalid("metadata: %d entries, at most %d", len(ev.Metadata), MaxMetadata)
	}
	for k, v := range ev.Metadata {
		if k == "" || len(k) > MaxMetaKeyLen {
			return invalid("metadata key %q: want 1-%d bytes", clip(k), MaxMetaKeyLen)
		}
		if len(v) > MaxMetaValLen {
			return invalid("metadata[%q]: value longer than %d bytes", clip(k), MaxMetaValLen)
		}
	}
	return validatePayload(ev)
}

// checkTimes reports the first set timestamp that is out of range.
func checkTimes(field string, ts ...*timestamppb.Timestamp) error {
	for _, t := range ts {
		if t != nil {
			if err := t.CheckValid(); err != nil {
				return invalid("%s: %v", field, err)
			}
		}
	}
	return nil
}

func validateTask(field string, t *pb.Task) error {
	if t == nil {
		return nil
	}
	if _, ok := pb.TaskStatus_name[int32(t.Status)]; !ok {
		return invalid("%s.status %d: unknown", field, t.Status)
	}
	if p := t.Progress; math.IsNaN(p) || p < 0 || p > 1 {
		return invalid("%s.progress %v: want 0..1", field, p)
	}
	return checkTimes(field+" timestamps", t.CreatedAt, t.UpdatedAt)
}

func validatePayload(ev *pb.Event) error {
	switch p := ev.Payload.(type) {
	case *pb.Event_TaskCreated:
		if p.TaskCreated.GetTask() == nil {
			return invalid("taskCreated.task: missing")
		}
		if err := validateTask("taskCreated.task", p.TaskCreated.Task); err != nil {
			return err
		}
		if !room.ValidID(p.TaskCreated.Task.GetId()) {
			return invalid("taskCreated.task.id %q: want 1-%d characters of A-Z a-z 0-9 _ -", clip(p.TaskCreated.Task.GetId()), room.MaxIDLen)
		}
	case *pb.Event_TaskUpdated:
		if !room.ValidID(p.TaskUpdated.GetTaskId()) {
			return invalid("taskUpdated.taskId %q: want 1-%d characters of A-Z a-z 0-9 _ -", clip(p.TaskUpdated.GetTaskId()), room.MaxIDLen)
		}
		if err := validateTask("taskUpdated.changes", p.TaskUpdated.Changes); err != nil {
			return err
		}
	case *pb.Event_TaskDeleted:
		if !room.ValidID(p.TaskDeleted.GetTaskId()) {
			return invalid("taskDeleted.taskId %q: want 1-%d characters of A-Z a-z 0-9 _ -", clip(p.TaskDeleted.GetTaskId()), room.MaxIDLen)
		}
	case *pb.Event_TaskProgress:
		tp := p.TaskProgress
		if !room.ValidID(tp.GetTaskId()) {
			return invalid("taskProgress.taskId %q: want 1-%d characters of A-Z a-z 0-9 _ -", clip(tp.GetTaskId()), room.MaxIDLen)
		}
		if pr := tp.GetProgress(); math.IsNaN(pr) || pr < 0 || pr > 1 {
			return invalid("taskProgress.progress %v: want 0..1", pr)
		}
		for _, l := range tp.GetLogs() {
			if _, ok := pb.LogStream_name[int32(l.GetStream())]; !ok {
				return invalid("taskProgress.logs.stream %d: unknown", l.GetStream())
			}
			if err := checkTimes("taskProgress.logs.timestamp", l.GetTimestamp()); err != nil {
				return err
			}
		}
	case *pb.Event_SystemStatus:
		st := p.SystemStatus.GetStatus()
		if st == pb.HealthStatus_HEALTH_STATUS_UNSPECIFIED {
			return invalid("systemStatus.status: missing")
		}
		if _, ok := pb.HealthStatus_name[int32(st)]; !ok {
			return invalid("systemStatus.status %d: unknown", st)
		}
		for _, a := range p.SystemStatus.GetAlerts() {
			if _, ok := pb.Severity_name[int32(a.GetSeverity())]; !ok {
				return invalid("systemStatus.alerts.severity %d: unknown", a.GetSeverity())
			}
			if err := checkTimes("systemStatus.alerts.since", a.GetSince()); err != nil {
				return err
			}
		}
	}
	return nil
}

func idChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func permChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// Marshal encodes ev as protobuf, the default NATS body.
func Marshal(ev *pb.Event) ([]byte, error) { return proto.Marshal(ev) }

// MarshalJSON encodes ev in its public JSON form (protojson, lowerCamelCase).
func MarshalJSON(ev *pb.Event) ([]byte, error) { return protojson.Marshal(ev) }

// ErrTooLarge is returned by Decode for a body over MaxEventBytes.
var ErrTooLarge = errors.New("event too large")

// Decode decodes a NATS message body by its Content-Type header value
// (application/json: protojson; empty or application/protobuf: protobuf)
// and validates it. Only the type may be left out (it is derived from the
// payload): a stored event without an id or timestamp is invalid, since
// every reader must see the same event. Unknown JSON fields are an error, so
// a typo in a publisher's JSON is not silently dropped. Every error wraps
// ErrInvalid or ErrTooLarge: retrying cannot fix it.
func Decode(body []byte, contentType string) (*pb.Event, error) {
	if len(body) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(body), MaxEventBytes)
	}
	ev := &pb.Event{}
	switch mediaType(contentType) {
	case "", ContentTypeProtobuf:
		if err := proto.Unmarshal(body, ev); err != nil {
			return nil, invalid("protobuf body: %v", err)
		}
	case ContentTypeJSON:
		if err := protojson.Unmarshal(body, ev); err != nil {
			return nil, invalid("JSON body: %v", err)
		}
	default:
		return nil, invalid("unsupported Content-Type %q (want %s or %s)", clip(contentType), ContentTypeProtobuf, ContentTypeJSON)
	}
	if ev.Type == "" {
		ev.Type = TypeOf(ev)
	}
	if err := Validate(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// mediaType returns the media type of a Content-Type value without
// parameters ("application/json; charset=utf-8" → "application/json").
func mediaType(ct string) string {
	switch ct {
	case "", ContentTypeProtobuf, ContentTypeJSON:
		return ct
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ct
	}
	return mt
}

func newEvent(r room.Room, actor string) *pb.Event {
	return &pb.Event{Id: NewID(), Timestamp: timestamppb.New(time.Now()), Room: r.String(), UserId: actor}
}

// TaskCreated returns a task_created event for room r.
func TaskCreated(r room.Room, actor string, task *pb.Task) *pb.Event {
	ev := newEvent(r, actor)
	ev.Payload = &pb.Event_TaskCreated{TaskCreated: &pb.TaskCreated{Task: task, CreatedBy: actor}}
	ev.Type = TypeTaskCreated
	return ev
}

// TaskUpdated returns a task_updated event for room r; changes holds only
// the changed fields, named (lowerCamelCase) in fields.
func TaskUpdated(r room.Room, actor, taskID string, changes *pb.Task, fields ...string) *pb.Event {
	ev := newEvent(r, actor)
	ev.Payload = &pb.Event_TaskUpdated{TaskUpdated: &pb.TaskUpdated{TaskId: taskID, Changes: changes, UpdatedBy: actor, ChangedFields: fields}}
	ev.Type = TypeTaskUpdated
	return ev
}

// TaskDeleted returns a task_deleted event for room r.
func TaskDeleted(r room.Room, actor, taskID string) *pb.Event {
	ev := newEvent(r, actor)
	ev.Payload = &pb.Event_TaskDeleted{TaskDeleted: &pb.TaskDeleted{TaskId: taskID, DeletedBy: actor}}
	ev.Type = TypeTaskDeleted
	return ev
}

// TaskProgress returns a task_progress event for room r. Log lines are
// usually restricted with RequiredPermission "logs:read" by the caller.
func TaskProgress(r room.Room, p *pb.TaskProgress) *pb.Event {
	ev := newEvent(r, "")
	ev.Payload = &pb.Event_TaskProgress{TaskProgress: p}
	ev.Type = TypeTaskProgress
	return ev
}

// SystemStatus returns a system_status event for the global room.
func SystemStatus(s *pb.SystemStatus) *pb.Event {
	ev := newEvent(room.Global, "")
	ev.Payload = &pb.Event_SystemStatus{SystemStatus: s}
	ev.Type = TypeSystemStatus
	return ev
}
