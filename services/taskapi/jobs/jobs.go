package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventedge/eventedge/proto/room"
)

// Job types: the last token of the subject a job is published on.
const (
	// TypeDemo simulates a pipeline (checkout, build, test, deploy) with
	// deterministic stages, log lines and timing.
	TypeDemo = "demo"
	// TypeExec runs a command from the worker's allow-list, named by
	// Job.Command.
	TypeExec = "exec"
)

// Types lists the job types a worker knows.
var Types = []string{TypeDemo, TypeExec}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool { return t == TypeDemo || t == TypeExec }

// Subjects.
const (
	// RunPrefix is the prefix of the subjects jobs are published on:
	// job.run.<type>. The JOBS stream captures RunPrefix.>.
	RunPrefix = "job.run"
	// CancelPrefix is the prefix of the core NATS cancellation subjects:
	// job.cancel.<executionId>.
	CancelPrefix = "job.cancel"
	// CancelWildcard is what a worker subscribes to for cancellations.
	CancelWildcard = CancelPrefix + ".*"
)

// RunSubject returns the subject a job of type t is published on. It does
// not validate t.
func RunSubject(t string) string { return RunPrefix + "." + t }

// CancelSubject returns the cancellation subject of an execution. It does
// not validate executionID.
func CancelSubject(executionID string) string { return CancelPrefix + "." + executionID }

// ExecutionIDFromCancel returns the execution id of a cancellation subject,
// or "" when subject is not a valid one.
func ExecutionIDFromCancel(subject string) string {
	const p = CancelPrefix + "."
	if len(subject) <= len(p) || subject[:len(p)] != p {
		return ""
	}
	if id := subject[len(p):]; room.ValidID(id) {
		return id
	}
	return ""
}

// MaxJobBytes bounds an encoded job: jobs are small, and Decode refuses
// anything larger before parsing it.
const MaxJobBytes = 16 << 10

// Job is one run of a task, as published on RunSubject(Job). Its JSON form
// (lowerCamelCase) is the wire format.
type Job struct {
	// ExecutionID identifies this run; it is the Nats-Msg-Id of the message,
	// the task's executionId while the run is current, and the last token
	// of its cancellation subject. Required: 1-64 of A-Z a-z 0-9 _ -.
	ExecutionID string `json:"executionId"`
	// ProjectID and TaskID name the task the run belongs to. Required.
	ProjectID string `json:"projectId"`
	TaskID    string `json:"taskId"`
	// Job is the job type, one of Types. Required.
	Job string `json:"job"`
	// Command is the allow-list name of the command an exec job runs
	// (never a path or a command line). Required for exec, empty otherwise.
	Command string `json:"command,omitempty"`
	// RequestedBy is the user who asked for the run; empty for system runs.
	RequestedBy string `json:"requestedBy,omitempty"`
	// EnqueuedAt is when the run was requested.
	EnqueuedAt time.Time `json:"enqueuedAt"`
}

// ErrInvalid is wrapped by every error Validate and Decode return: the job
// is wrong and retrying cannot help.
var ErrInvalid = errors.New("invalid job")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate reports the first field of j that breaks the contract.
func (j *Job) Validate() error {
	switch {
	case j == nil:
		return invalid("nil job")
	case !room.ValidID(j.ExecutionID):
		return invalid("executionId %q: want 1-64 characters of A-Z a-z 0-9 _ -", clip(j.ExecutionID))
	case !room.ValidID(j.ProjectID):
		return invalid("projectId %q: want 1-64 characters of A-Z a-z 0-9 _ -", clip(j.ProjectID))
	case !room.ValidID(j.TaskID):
		return invalid("taskId %q: want 1-64 characters of A-Z a-z 0-9 _ -", clip(j.TaskID))
	case !KnownType(j.Job):
		return invalid("job %q: want one of %v", clip(j.Job), Types)
	case j.Job == TypeExec && !room.ValidID(j.Command):
		return invalid("command %q: an exec job needs an allow-list name (1-64 characters of A-Z a-z 0-9 _ -)", clip(j.Command))
	case j.Job != TypeExec && j.Command != "":
		return invalid("command: only exec jobs take a command")
	case j.RequestedBy != "" && !room.ValidID(j.RequestedBy):
		return invalid("requestedBy %q: want 1-64 characters of A-Z a-z 0-9 _ -", clip(j.RequestedBy))
	case j.EnqueuedAt.IsZero():
		return invalid("enqueuedAt: missing")
	}
	return nil
}

// Marshal validates j and returns its JSON form.
func (j *Job) Marshal() ([]byte, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ExecutionID, err)
	}
	return b, nil
}

// Decode parses and validates a job message body. Unknown fields are an
// error, so that a publisher's typo is not silently ignored. Every error
// wraps ErrInvalid.
func Decode(data []byte) (*Job, error) {
	if len(data) > MaxJobBytes {
		return nil, invalid("%d bytes, at most %d", len(data), MaxJobBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j Job
	if err := dec.Decode(&j); err != nil {
		return nil, invalid("JSON: %v", err)
	}
	if dec.More() {
		return nil, invalid("JSON: data after the job object")
	}
	if err := j.Validate(); err != nil {
		return nil, err
	}
	return &j, nil
}

// Headers of job messages.
const (
	HeaderContentType = "Content-Type"
	ContentTypeJSON   = "application/json"
)

// Message returns j as the NATS message to publish to JetStream: subject
// RunSubject(j.Job), the JSON body, Content-Type application/json and
// Nats-Msg-Id = j.ExecutionID.
func Message(j *Job) (*nats.Msg, error) {
	body, err := j.Marshal()
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(RunSubject(j.Job))
	m.Data = body
	m.Header.Set(HeaderContentType, ContentTypeJSON)
	m.Header.Set(nats.MsgIdHdr, j.ExecutionID)
	return m, nil
}

// IsInvalid reports whether err is a validation error.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
