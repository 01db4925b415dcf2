package load

import (
	"fmt"
	"strings"
	"testing"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// TestJobLogsCheck: the job mix's log check accepts merged events that
// carry exactly the lines published since the client's previous event
// (the last EdgeMaxCoalescedLogs of them), and counts any other.
func TestJobLogsCheck(t *testing.T) {
	progress := func(lines ...string) *pb.Event {
		p := &pb.TaskProgress{TaskId: "t1"}
		for _, l := range lines {
			p.Logs = append(p.Logs, &pb.LogEntry{Line: l})
		}
		return events.TaskProgress(room.Project("p"), p)
	}
	publish := func(j *jobLogs) {
		j.publishedEvent(11, progress("a", "b"))
		j.publishedEvent(12, progress())
		j.publishedEvent(13, progress("c"))
		var many []string
		for i := range EdgeMaxCoalescedLogs + 5 {
			many = append(many, fmt.Sprint("m", i))
		}
		j.publishedEvent(14, progress(many...))
	}
	last200 := func() []string {
		var out []string
		for i := range EdgeMaxCoalescedLogs + 5 {
			out = append(out, fmt.Sprint("m", i))
		}
		return append([]string{"c"}, out...)[6:] // c and m0…m204: the last 200
	}
	for _, tc := range []struct {
		name       string
		got        []receivedLogs
		mismatched int
	}{
		{"every event", []receivedLogs{{11, []string{"a", "b"}}, {12, nil}, {13, []string{"c"}}, {14, last200()}}, 0},
		{"coalesced", []receivedLogs{{13, []string{"a", "b", "c"}}, {14, last200()}}, 0},
		{"a line lost", []receivedLogs{{13, []string{"a", "c"}}, {14, last200()}}, 1},
		{"lines twice", []receivedLogs{{11, []string{"a", "b"}}, {13, []string{"a", "b", "c"}}}, 1},
		{"not truncated as the edge does", []receivedLogs{{13, []string{"a", "b", "c"}}, {14, append([]string{"c"}, last200()...)}}, 1},
	} {
		j := newJobLogs(1)
		publish(j)
		j.received[0] = tc.got
		res := j.check([]uint64{10})
		if res.Mismatched != tc.mismatched || res.Clients != 1 || res.Events != len(tc.got) {
			t.Errorf("%s: %+v; want %d mismatched of %d events", tc.name, res, tc.mismatched, len(tc.got))
		}
		if tc.mismatched > 0 && !strings.Contains(res.First, "client c0") {
			t.Errorf("%s: first mismatch %q", tc.name, res.First)
		}
	}
}
