package taskstore

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// Limits of task fields, enforced by Validate.
const (
	MaxTitleLen       = 200   // characters
	MaxDescriptionLen = 10000 // characters
	MaxLabels         = 32
	MaxLabelLen       = 64 // characters
)

// ValidID reports whether id may name a project or task:
// ^[A-Za-z0-9_-]{1,64}$.
func ValidID(id string) bool { return room.ValidID(id) }

// Validate checks the fields of t that a client may set and returns a
// *FieldError naming the first one that is wrong. Create and Update call it
// on every task they write.
func Validate(t *pb.Task) error {
	title := strings.TrimSpace(t.GetTitle())
	switch {
	case title == "":
		return fieldErr("title", "required")
	case utf8.RuneCountInString(t.Title) > MaxTitleLen:
		return fieldErr("title", "longer than %d characters", MaxTitleLen)
	case hasControl(t.Title, false):
		return fieldErr("title", "control characters are not allowed")
	case utf8.RuneCountInString(t.Description) > MaxDescriptionLen:
		return fieldErr("description", "longer than %d characters", MaxDescriptionLen)
	case hasControl(t.Description, true):
		return fieldErr("description", "control characters other than newline and tab are not allowed")
	case t.Assignee != "" && !ValidID(t.Assignee):
		return fieldErr("assignee", "want a user id: 1-64 characters of A-Z a-z 0-9 _ -")
	case len(t.Labels) > MaxLabels:
		return fieldErr("labels", "%d labels, at most %d", len(t.Labels), MaxLabels)
	}
	if _, ok := pb.TaskStatus_name[int32(t.Status)]; !ok || t.Status == pb.TaskStatus_TASK_STATUS_UNSPECIFIED {
		return fieldErr("status", "unknown status %d", t.Status)
	}
	seen := make(map[string]bool, len(t.Labels))
	for _, l := range t.Labels {
		switch {
		case strings.TrimSpace(l) == "" || utf8.RuneCountInString(l) > MaxLabelLen:
			return fieldErr("labels", "each label must have 1-%d characters", MaxLabelLen)
		case hasControl(l, false):
			return fieldErr("labels", "control characters are not allowed")
		case seen[l]:
			return fieldErr("labels", "duplicate label %q", l)
		}
		seen[l] = true
	}
	if p := t.Progress; math.IsNaN(p) || p < 0 || p > 1 {
		return fieldErr("progress", "want 0..1")
	}
	if t.ExecutionId != "" && !ValidID(t.ExecutionId) {
		return fieldErr("executionId", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	return nil
}

func hasControl(s string, allowNewlines bool) bool {
	for _, r := range s {
		if allowNewlines && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// Terminal reports whether s ends a run: succeeded, failed or cancelled.
func Terminal(s pb.TaskStatus) bool {
	switch s {
	case pb.TaskStatus_TASK_STATUS_SUCCEEDED, pb.TaskStatus_TASK_STATUS_FAILED, pb.TaskStatus_TASK_STATUS_CANCELLED:
		return true
	}
	return false
}

// Active reports whether s means a run is pending or going: queued or
// running.
func Active(s pb.TaskStatus) bool {
	return s == pb.TaskStatus_TASK_STATUS_QUEUED || s == pb.TaskStatus_TASK_STATUS_RUNNING
}
