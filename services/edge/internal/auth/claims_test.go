package auth

import (
	"errors"
	"testing"

	"github.com/eventedge/eventedge/proto/room"
)

func TestCanJoin(t *testing.T) {
	cases := []struct {
		name  string
		perms []string
		projs []string
		room  room.Room
		ok    bool
	}{
		{name: "own user room", room: room.User("alice"), ok: true},
		{name: "own user room, no permissions needed", perms: nil, room: room.User("alice"), ok: true},
		{name: "other user room", perms: []string{PermTasksRead, PermSystemRead}, projs: []string{AllProjects}, room: room.User("bob")},
		{name: "other user room with admin", perms: []string{PermAdmin}, room: room.User("bob"), ok: true},
		{name: "user room id differs only in case", room: room.User("Alice")},

		{name: "project: tasks:read and member", perms: []string{PermTasksRead}, projs: []string{"p1", "p2"}, room: room.Project("p2"), ok: true},
		{name: "project: tasks:read, not member", perms: []string{PermTasksRead}, projs: []string{"p1"}, room: room.Project("p2")},
		{name: "project: member without tasks:read", perms: []string{PermLogsRead, PermTasksWrite}, projs: []string{"p1"}, room: room.Project("p1")},
		{name: "project: member, no permissions", projs: []string{"p1"}, room: room.Project("p1")},
		{name: "project: tasks:read and projects *", perms: []string{PermTasksRead}, projs: []string{AllProjects}, room: room.Project("any-project"), ok: true},
		{name: "project: projects * without tasks:read", projs: []string{AllProjects}, room: room.Project("p1")},
		{name: "project: admin, no projects", perms: []string{PermAdmin}, room: room.Project("p9"), ok: true},
		{name: "project: user id is not a project", perms: []string{PermTasksRead}, room: room.Project("alice")},

		{name: "global with system:read", perms: []string{PermSystemRead}, room: room.Global, ok: true},
		{name: "global without system:read", perms: []string{PermTasksRead, PermLogsRead}, projs: []string{AllProjects}, room: room.Global},
		{name: "global with admin", perms: []string{PermAdmin}, room: room.Global, ok: true},

		{name: "zero room", perms: []string{PermAdmin}, room: room.Room{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Claims{Subject: "alice", Permissions: tc.perms, Projects: tc.projs}
			err := c.CanJoin(tc.room)
			if tc.ok {
				if err != nil {
					t.Fatalf("CanJoin(%s) = %v, want nil", tc.room, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CanJoin(%s) = nil, want forbidden", tc.room)
			}
			if !errors.Is(err, ErrForbidden) {
				t.Errorf("CanJoin(%s) = %v, want it to wrap ErrForbidden", tc.room, err)
			}
		})
	}
}

func TestHasAndMemberOf(t *testing.T) {
	admin := &Claims{Subject: "root", Permissions: []string{PermAdmin}}
	for _, p := range []string{PermTasksRead, PermTasksWrite, PermLogsRead, PermSystemRead, "anything"} {
		if !admin.Has(p) {
			t.Errorf("admin.Has(%q) = false, want true", p)
		}
	}
	if !admin.MemberOf("p1") {
		t.Error("admin.MemberOf(p1) = false, want true")
	}

	c := &Claims{Subject: "alice", Permissions: []string{PermTasksRead}, Projects: []string{"p1"}}
	if !c.Has(PermTasksRead) || c.Has(PermLogsRead) {
		t.Errorf("Has: tasks:read=%v logs:read=%v, want true false", c.Has(PermTasksRead), c.Has(PermLogsRead))
	}
	if !c.MemberOf("p1") || c.MemberOf("p2") {
		t.Errorf("MemberOf: p1=%v p2=%v, want true false", c.MemberOf("p1"), c.MemberOf("p2"))
	}
	if all := (&Claims{Projects: []string{AllProjects}}); !all.MemberOf("p2") {
		t.Error(`MemberOf with projects ["*"] = false, want true`)
	}
}
