package auth

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

// Well-known permissions.
const (
	PermTasksRead  = "tasks:read"
	PermTasksWrite = "tasks:write"
	PermLogsRead   = "logs:read"
	PermSystemRead = "system:read"
	PermAdmin      = "admin"
)

// AllProjects in the projects claim grants membership of every project.
const AllProjects = "*"

// Claims is what eventedge uses of a verified token. It is immutable after
// Verify returns it and safe to share between goroutines.
type Claims struct {
	Subject     string
	Permissions []string
	Projects    []string
	ExpiresAt   time.Time
	// IssuedAt is the token's iat; zero when it has none.
	IssuedAt time.Time
}

// Has reports whether c grants perm. "admin" grants every permission.
func (c *Claims) Has(perm string) bool {
	return slices.Contains(c.Permissions, perm) || slices.Contains(c.Permissions, PermAdmin)
}

// MemberOf reports whether c lists project id (or "*"), or is admin.
func (c *Claims) MemberOf(id string) bool {
	return slices.Contains(c.Projects, id) || slices.Contains(c.Projects, AllProjects) || c.Has(PermAdmin)
}

// ErrForbidden is wrapped by CanJoin's errors.
var ErrForbidden = errors.New("forbidden")

// CanJoin reports whether c may subscribe to r: user:<sub> for that user
// only (or admin); project:<id> with tasks:read and membership of id;
// global with system:read. The error says which rule failed.
func (c *Claims) CanJoin(r room.Room) error {
	switch r.Kind {
	case room.KindUser:
		if r.ID == c.Subject || c.Has(PermAdmin) {
			return nil
		}
		return fmt.Errorf("%w: %s is another user's room", ErrForbidden, r)
	case room.KindProject:
		if !c.Has(PermTasksRead) {
			return fmt.Errorf("%w: %s needs permission %s", ErrForbidden, r, PermTasksRead)
		}
		if !c.MemberOf(r.ID) {
			return fmt.Errorf("%w: not a member of project %s", ErrForbidden, r.ID)
		}
		return nil
	case room.KindGlobal:
		if c.Has(PermSystemRead) {
			return nil
		}
		return fmt.Errorf("%w: %s needs permission %s", ErrForbidden, r, PermSystemRead)
	}
	return fmt.Errorf("%w: unknown room %s", ErrForbidden, r)
}
