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
		{"every event", []receivedLogs{{seq: 11, lines: []string{"a", "b"}}, {seq: 12, lines: nil}, {seq: 13, lines: []string{"c"}}, {seq: 14, lines: last200()}}, 0},
		{"coalesced", []receivedLogs{{seq: 13, lines: []string{"a", "b", "c"}}, {seq: 14, lines: last200()}}, 0},
		{"a line lost", []receivedLogs{{seq: 13, lines: []string{"a", "c"}}, {seq: 14, lines: last200()}}, 1},
		{"lines twice", []receivedLogs{{seq: 11, lines: []string{"a", "b"}}, {seq: 13, lines: []string{"a", "b", "c"}}}, 1},
		{"after a reset", []receivedLogs{{seq: 11, lines: []string{"a", "b"}}, {seq: 13, reset: true}, {seq: 14, lines: last200()}}, 0},
		{"lines from before a reset, after it", []receivedLogs{{seq: 12, reset: true}, {seq: 13, lines: []string{"a", "b", "c"}}}, 1},
		{"not truncated as the edge does", []receivedLogs{{seq: 13, lines: []string{"a", "b", "c"}}, {seq: 14, lines: append([]string{"c"}, last200()...)}}, 1},
	} {
		j := newJobLogs(1)
		publish(j)
		j.received[0] = tc.got
		res := j.check([]uint64{10}, func(int) bool { return true })
		events := 0
		for _, r := range tc.got {
			if !r.reset {
				events++
			}
		}
		if res.Mismatched != tc.mismatched || res.Clients != 1 || res.Events != events {
			t.Errorf("%s: %+v; want %d mismatched of %d events", tc.name, res, tc.mismatched, events)
		}
		if tc.mismatched > 0 && !strings.Contains(res.First, "client c0") {
			t.Errorf("%s: first mismatch %q", tc.name, res.First)
		}
	}
	// A checked slot whose client never connected is not counted.
	j := newJobLogs(2)
	publish(j)
	if res := j.check([]uint64{10, 10}, func(i int) bool { return i == 0 }); res.Clients != 1 {
		t.Errorf("two slots, one connected: %d clients checked; want 1", res.Clients)
	}
}
