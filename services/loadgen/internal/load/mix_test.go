package load

import (
	"bytes"
	"compress/flate"
	"testing"

	"fmt"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// TestDashboardMix: the mix holds its proportions, every event is valid
// as published, and two runs publish the same sequence (ids and times
// aside).
func TestDashboardMix(t *testing.T) {
	const n = 10000
	rm := room.Project("lg-mix")
	a, b := newDashboardMix(rm), newDashboardMix(rm)
	count := map[string]int{}
	var logs, jsonBytes, pbBytes, deflated int
	for i := range n {
		ev, ev2 := a.next(i), b.next(i)
		if k, k2 := mixKey(ev), mixKey(ev2); k != k2 || ev.Room != rm.String() || ev.Payload == nil {
			t.Fatalf("event %d: %s in %s, the second run's %s", i, k, ev.Room, k2)
		}
		count[ev.Type]++
		events.Normalize(ev)
		if err := events.Validate(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.GetTaskProgress().GetLogs() != nil {
			logs++
			if ev.RequiredPermission != PermLogsRead {
				t.Fatalf("event %d: log lines without %s", i, PermLogsRead)
			}
		}
		j, err := events.MarshalJSON(ev)
		if err != nil {
			t.Fatal(err)
		}
		p, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		jsonBytes += len(j)
		pbBytes += len(p)
		if i < 1000 { // what permessage-deflate without context takeover makes of one event
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, flate.BestSpeed)
			w.Write(j)
			w.Close()
			deflated += buf.Len()
		}
	}
	for typ, want := range map[string]int{
		events.TypeTaskUpdated: mixUpdated, events.TypeTaskProgress: mixProgress, events.TypeTaskCreated: mixCreated,
		events.TypeTaskDeleted: mixDeleted, events.TypeSystemStatus: mixStatus,
	} {
		if got := count[typ] * 100; got < (want-2)*n || got > (want+2)*n {
			t.Errorf("%s: %d of %d, want about %d%%", typ, count[typ], n, want)
		}
	}
	if logs < count[events.TypeTaskProgress]/2 || logs > count[events.TypeTaskProgress]*4/5 {
		t.Errorf("%d of %d task_progress with log lines, want about two in three", logs, count[events.TypeTaskProgress])
	}
	t.Logf("mean event: %d B JSON (one event deflated alone: %d B), %d B protobuf; %v",
		jsonBytes/n, deflated/1000, pbBytes/n, count)
}

// mixKey is what of ev comes from the mix's generator (its id and times
// do not).
func mixKey(ev *pb.Event) string {
	tp := ev.GetTaskProgress()
	return fmt.Sprint(ev.Type, ev.UserId, ev.GetTaskUpdated().GetTaskId(), ev.GetTaskUpdated().GetChangedFields(),
		ev.GetTaskCreated().GetTask().GetTitle(), tp.GetTaskId(), len(tp.GetLogs()), ev.GetSystemStatus().GetMetrics().GetConnections())
}

// TestJobMix: every event of the job mix is a valid task_progress of one
// task's one execution, with 1-6 log lines behind logs:read, its progress
// rising to 1 at the last event.
func TestJobMix(t *testing.T) {
	const n = 500
	m := newJobMix(room.Project("lg-job"), n)
	var prev float64
	for i := range n {
		ev := m.next(i)
		p := ev.GetTaskProgress()
		if p == nil || p.TaskId != m.task || p.ExecutionId != m.exec || ev.RequiredPermission != PermLogsRead {
			t.Fatalf("event %d: %v; want task %s's execution %s, behind %s", i, ev, m.task, m.exec, PermLogsRead)
		}
		if n := len(p.Logs); n < 1 || n > 6 {
			t.Fatalf("event %d: %d log lines; want 1-6", i, n)
		}
		if p.Progress <= prev {
			t.Fatalf("event %d: progress %v after %v; want it rising", i, p.Progress, prev)
		}
		prev = p.Progress
		events.Normalize(ev)
		if err := events.Validate(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if prev != 1 {
		t.Fatalf("last progress %v; want 1", prev)
	}
}
