package taskstore

import (
	"errors"
	"fmt"
)

// Errors returned by the Store. Callers compare with errors.Is.
var (
	// ErrNotFound: no such task (or it is being deleted).
	ErrNotFound = errors.New("task not found")
	// ErrExists: Create found a task with the same id.
	ErrExists = errors.New("task already exists")
	// ErrConflict: a conditional write found another revision, or an
	// unconditional one lost every compare-and-set retry.
	ErrConflict = errors.New("task revision conflict")
	// ErrBacklog: the task already holds Options.MaxPending unpublished
	// messages (NATS has been failing); retry once they are published.
	ErrBacklog = errors.New("too many unpublished events for this task")
	// ErrInvalid: an argument breaks the contract (an id, a field, a
	// message); the error names it.
	ErrInvalid = errors.New("invalid")
	// ErrBadCursor: a List cursor that this package did not produce.
	ErrBadCursor = errors.New("invalid cursor")

	// errPermanent marks an outbox message that no retry can publish.
	errPermanent = errors.New("permanent")
)

// ConflictError is the ErrConflict of a conditional write: Current is the
// task's revision now.
type ConflictError struct {
	Current uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%v: current revision is %d", ErrConflict, e.Current)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// FieldError is an ErrInvalid about one field of a task; Field is its
// lowerCamelCase JSON name.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}
