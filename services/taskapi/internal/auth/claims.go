package auth

import (
	"slices"
	"time"
)

// Permissions the task API checks.
const (
	PermTasksRead  = "tasks:read"
	PermTasksWrite = "tasks:write"
	PermAdmin      = "admin"
)

// AllProjects in the projects claim grants membership of every project.
const AllProjects = "*"

// Claims is what the task API uses of a verified token. Immutable; safe to
// share between goroutines.
type Claims struct {
	Subject     string
	Permissions []string
	Projects    []string
	ExpiresAt   time.Time
}

// Has reports whether c grants perm; admin grants every permission.
func (c *Claims) Has(perm string) bool {
	return slices.Contains(c.Permissions, perm) || slices.Contains(c.Permissions, PermAdmin)
}

// MemberOf reports whether c lists project id or "*", or is admin.
func (c *Claims) MemberOf(id string) bool {
	return slices.Contains(c.Projects, id) || slices.Contains(c.Projects, AllProjects) || c.Has(PermAdmin)
}
