package hub

import (
	"testing"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
)

// TestPermissionAnswerFollowsClaims: a subscription asks its sink's claims
// about an event's required permission once and keeps the answer for the
// next events requiring the same one; another permission is asked again,
// and after ClaimsChanged the new claims decide.
func TestPermissionAnswerFollowsClaims(t *testing.T) {
	sk := &sink{claims: &auth.Claims{Subject: "u1", Permissions: []string{auth.PermTasksRead, auth.PermLogsRead}}}
	sub := NewSubscription(room.Project("p1"), sk, nil, false)
	seq := uint64(0)
	// offer hands one event requiring perm and reports whether the sink got it.
	offer := func(perm string) bool {
		seq++
		before := sk.count
		sub.offer([]*Outbound{{Room: "project:p1", Seq: seq, Type: "task_progress", Priority: pb.Priority_PRIORITY_NORMAL, perm: perm}}, nil)
		return sk.count > before
	}
	for step, tc := range []struct {
		perm string
		want bool
		then func()
	}{
		{perm: auth.PermLogsRead, want: true},
		{perm: auth.PermLogsRead, want: true, then: func() {
			sk.mu.Lock()
			sk.claims = &auth.Claims{Subject: "u1", Permissions: []string{auth.PermTasksRead}} // a refresh, not yet told
			sk.mu.Unlock()
		}},
		{perm: auth.PermLogsRead, want: true, then: sub.ClaimsChanged}, // the kept answer, until told
		{perm: auth.PermLogsRead, want: false},                         // the new claims
		{perm: "system:read", want: false},
		{perm: "", want: true}, // no permission required
		{perm: auth.PermTasksRead, want: true},
		{perm: auth.PermLogsRead, want: false},
	} {
		if got := offer(tc.perm); got != tc.want {
			t.Fatalf("step %d (%q): delivered %v; want %v", step, tc.perm, got, tc.want)
		}
		if tc.then != nil {
			tc.then()
		}
	}
}
