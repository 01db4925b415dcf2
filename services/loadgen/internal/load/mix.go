package load

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// The event mixes of Config.Mix.
const (
	// MixPadded is task_updated events whose title pads them to
	// PayloadBytes: one size, and a title of one repeated character that
	// compresses far better than real events.
	MixPadded = "padded"
	// MixDashboard is what the dashboard of a busy project receives, as
	// the services build it (dashboardMix).
	MixDashboard = "dashboard"
	// MixJob is one job's execution reporting progress with live logs at
	// the whole rate (jobMix): faster than the edge's --progress-rate, so
	// every client's flow control coalesces its events.
	MixJob = "job"
)

// Mixes are the event mix names.
var Mixes = []string{MixPadded, MixDashboard, MixJob}

// The dashboard mix, in events per 100. There is no production trace to
// take it from; it follows what the services publish for one project:
//
//   - taskapi publishes one task_updated per edit, carrying only the
//     changed fields (taskstore.Update: status moves, progress, assignee,
//     a title or description edit, labels), one task_created with the
//     whole task per create, one task_deleted per delete. Edits are the
//     most common: most of the mix.
//   - the worker's reporter publishes an execution's task_progress at most
//     10 times a second and its log lines in batches (every 100 ms or 50
//     lines), with requiredPermission logs:read: two in three of the
//     progress events here carry 1-6 log lines.
//   - sysmon publishes system_status on a change or every interval: rare.
//
// task_progress is held to 20% because it is low priority: at the load
// the benchmarks use (5,000 clients × 40 events/s) that is 40,000
// low-priority deliveries a second, under the edge's default node budget
// (--low-priority-budget 50,000/s). Above it the edge holds progress
// events, and a measurement of the encoding would become one of flow
// control.
const (
	mixUpdated  = 55
	mixProgress = 20
	mixCreated  = 15
	mixDeleted  = 8
	mixStatus   = 2
)

// mixSeed seeds every dashboard mix: runs publish the same sequence of
// events (but for ids and times), so that runs compare.
const mixSeed = 20261126

// dashboardMix builds the events of the dashboard mix for one room, from
// a seeded generator. Not safe for concurrent use: publishSchedule calls
// build from one goroutine.
type dashboardMix struct {
	rng     *rand.Rand
	room    room.Room
	tasks   []string    // the project's tasks, which the edits are about
	running [][2]string // the executions running (task id, execution id), which report progress in turn
	turn    int         // the next of running to report
}

// mixRunning is how many executions report progress, in turn: at 40
// events/s each reports every 2 s, so the edge's flow control never holds
// one (--progress-rate allows 10/s per task) nor coalesces two (that
// would need one still queued 2 s later), and the delivery check can
// expect every event.
const mixRunning = 16

func newDashboardMix(rm room.Room) *dashboardMix {
	m := &dashboardMix{rng: rand.New(rand.NewPCG(mixSeed, 1)), room: rm}
	for range 40 {
		m.tasks = append(m.tasks, m.id())
	}
	for k := range mixRunning {
		m.running = append(m.running, [2]string{m.tasks[k], m.id()})
	}
	return m
}

// actors are the project's people: user ids as the taskapi's tokens name
// them.
var actors = []string{"u-amara-okafor", "u-bjorn", "u-chen-wei", "u-dpatel", "u-elena-r", "u-farid", "u-grace-h", "u-hiro"}

// next returns event i of the mix.
func (m *dashboardMix) next(int) *pb.Event {
	k := m.rng.IntN(100)
	switch {
	case k < mixUpdated:
		return m.updated()
	case k < mixUpdated+mixProgress:
		return m.progress()
	case k < mixUpdated+mixProgress+mixCreated:
		return m.created()
	case k < mixUpdated+mixProgress+mixCreated+mixDeleted:
		return events.TaskDeleted(m.room, m.actor(), m.task())
	default:
		return m.status()
	}
}

// id is a new ULID-shaped id (26 characters of Crockford base32), from
// the generator.
func (m *dashboardMix) id() string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [26]byte
	b[0] = '0' + byte(m.rng.IntN(8))
	for i := 1; i < len(b); i++ {
		b[i] = digits[m.rng.IntN(len(digits))]
	}
	return string(b[:])
}

func (m *dashboardMix) actor() string { return actors[m.rng.IntN(len(actors))] }
func (m *dashboardMix) task() string  { return m.tasks[m.rng.IntN(len(m.tasks))] }

func pick[T any](rng *rand.Rand, from []T) T { return from[rng.IntN(len(from))] }

var (
	titles = []string{
		"Rotate the staging TLS certificates before %s", "Flaky TestBroadcast on arm64 runners (%d failures this week)",
		"Edge node drops task_progress above %d clients", "Move the nightly backup to the eu-west-%d bucket",
		"Add a retry budget to the webhook sender (#%d)", "Dashboard: show the p99 delivery latency per node",
		"Upgrade nats-server to v2.%d and re-run the chaos suite", "Customer export times out for projects over %d tasks",
	}
	descriptions = []string{
		"Seen on %s: the job stops after the checkout stage with exit status %d. Steps to reproduce are in the linked run; the logs show the cache key changed between attempts.",
		"We agreed in the planning on %s to split this in two: first the migration (behind a flag), then the cleanup of the old table once %d%% of the traffic moved.",
		"Follow-up of the incident review. Owner: platform. Acceptance: the alert fires within %d minutes and links the runbook; documented in docs/operations.md.",
	}
	labelSets = [][]string{{"bug"}, {"bug", "p1"}, {"infra"}, {"frontend", "ux"}, {"backend", "nats"}, {"chore"}, {"security", "p0"}, {"docs"}}
	stages    = []string{"checkout", "build", "test", "deploy"} // the worker's job stages
	paths     = []string{"services/edge/internal/session/flow.go", "services/taskapi/taskstore/store.go", "proto/events/event.go",
		"services/dashboard/web/src/TaskList.tsx", "deploy/docker/edge.Dockerfile", "services/worker/internal/jobrun/exec.go"}
	packages = []string{"services/edge/internal/hub", "services/edge/internal/session", "services/taskapi/api", "proto/events",
		"services/worker/internal/report", "services/sysmon/internal/monitor"}
	modules = []string{"github.com/nats-io/nats.go v1.55.0", "google.golang.org/protobuf v1.36.12", "github.com/coder/websocket v1.8.15",
		"github.com/rs/zerolog v1.34.0", "golang.org/x/time v0.16.0"}
)

// logLine is one line of a job's output, as a build or test step prints
// it: varied text, numbers, paths and times.
func (m *dashboardMix) logLine(now time.Time) (pb.LogStream, string) {
	r := m.rng
	switch r.IntN(10) {
	case 0:
		return pb.LogStream_LOG_STREAM_STDOUT, "go: downloading " + pick(r, modules)
	case 1:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("ok  \tgithub.com/eventedge/eventedge/%s\t%.3fs", pick(r, packages), 0.2+r.Float64()*9)
	case 2:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("--- PASS: Test%s (%.2fs)", pick(r, []string{"Broadcast", "Rooms", "Replay", "SlowConsumer", "Coalesce"}), r.Float64()*4)
	case 3:
		return pb.LogStream_LOG_STREAM_STDERR, fmt.Sprintf("%s:%d:%d: warning: result of fmt.Sprintf call not used", pick(r, paths), 10+r.IntN(400), 2+r.IntN(30))
	case 4:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("Step %d/11 : RUN go build -trimpath -ldflags=\"-s -w\" -o /out/%s ./cmd/%[2]s", 1+r.IntN(11), pick(r, []string{"edge", "taskapi", "worker", "sysmon"}))
	case 5:
		return pb.LogStream_LOG_STREAM_SYSTEM, fmt.Sprintf("uploaded artifact %s-linux-amd64.tar.gz (%.1f MiB) in %dms", pick(r, []string{"edge", "taskapi", "worker"}), 4+r.Float64()*20, 100+r.IntN(2000))
	case 6:
		return pb.LogStream_LOG_STREAM_STDERR, fmt.Sprintf("%s ERROR pq: deadlock detected (SQLSTATE 40P01) on relation tasks_%d; retrying in %dms",
			now.Format("15:04:05.000"), r.IntN(64), 50*(1+r.IntN(10)))
	case 7:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("%s INFO  [%s] compiled %s (%d/%d packages, cache hit %d%%)",
			now.Format(time.RFC3339Nano), pick(r, stages), pick(r, paths), 1+r.IntN(112), 112, r.IntN(100))
	case 8:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("PASS coverage: %.1f%% of statements in %s", 40+r.Float64()*55, pick(r, packages))
	default:
		return pb.LogStream_LOG_STREAM_STDOUT, fmt.Sprintf("rsync: sent %d bytes  received %d bytes  %.2f bytes/sec", r.IntN(5_000_000), r.IntN(90_000), r.Float64()*1e6)
	}
}

func (m *dashboardMix) title() string {
	t := pick(m.rng, titles)
	if !strings.Contains(t, "%") {
		return t
	}
	if strings.Contains(t, "%s") {
		return fmt.Sprintf(t, time.Date(2026, time.Month(1+m.rng.IntN(12)), 1+m.rng.IntN(28), 0, 0, 0, 0, time.UTC).Format("Jan 2"))
	}
	return fmt.Sprintf(t, 2+m.rng.IntN(5000))
}

func (m *dashboardMix) description() string {
	d := pick(m.rng, descriptions)
	if strings.HasPrefix(d, "Follow-up") {
		return fmt.Sprintf(d, 1+m.rng.IntN(15))
	}
	return fmt.Sprintf(d, time.Date(2026, time.Month(1+m.rng.IntN(12)), 1+m.rng.IntN(28), 0, 0, 0, 0, time.UTC).Format("Monday Jan 2"), 1+m.rng.IntN(99))
}

// updated is a task_updated of one edit, with the changed fields only
// (as taskstore.Update publishes it).
func (m *dashboardMix) updated() *pb.Event {
	r := m.rng
	var changes pb.Task
	var fields []string
	switch k := r.IntN(100); {
	case k < 40:
		changes.Status = pb.TaskStatus(1 + r.IntN(6))
		fields = []string{"status"}
		if changes.Status == pb.TaskStatus_TASK_STATUS_RUNNING {
			changes.ExecutionId = m.id()
			fields = append(fields, "executionId")
		}
	case k < 70:
		changes.Progress = float64(r.IntN(101)) / 100
		fields = []string{"progress"}
	case k < 85:
		changes.Assignee = m.actor()
		fields = []string{"assignee"}
	case k < 95:
		if r.IntN(2) == 0 {
			changes.Title = m.title()
			fields = []string{"title"}
		} else {
			changes.Description = m.description()
			fields = []string{"description"}
		}
	default:
		changes.Labels = pick(r, labelSets)
		fields = []string{"labels"}
	}
	return events.TaskUpdated(m.room, m.actor(), m.task(), &changes, fields...)
}

// progress is a task_progress as the worker's reporter sends it for the
// next running execution: the progress of a stage, or (two in three) a
// batch of 1-6 log lines with requiredPermission logs:read.
func (m *dashboardMix) progress() *pb.Event {
	r := m.rng
	now := time.Now()
	ex := m.running[m.turn%len(m.running)]
	m.turn++
	p := &pb.TaskProgress{TaskId: ex[0], ExecutionId: ex[1], Progress: float64(r.IntN(1000)) / 1000, Stage: pick(r, stages)}
	logs := r.IntN(3) > 0
	if logs {
		for j := range 1 + r.IntN(6) {
			stream, line := m.logLine(now)
			p.Logs = append(p.Logs, &pb.LogEntry{Timestamp: timestamppb.New(now.Add(time.Duration(j-6) * 17 * time.Millisecond)), Stream: stream, Line: line})
		}
	} else {
		p.Message = fmt.Sprintf("%s: %d/%d steps", p.Stage, r.IntN(12), 12)
	}
	ev := events.TaskProgress(m.room, p)
	if logs {
		ev.RequiredPermission = PermLogsRead
	}
	return ev
}

// created is a task_created with the whole task (taskstore.Create).
func (m *dashboardMix) created() *pb.Event {
	r := m.rng
	now := timestamppb.Now()
	actor := m.actor()
	t := &pb.Task{
		Id: m.id(), ProjectId: m.room.ID, Title: m.title(), Status: pb.TaskStatus_TASK_STATUS_TODO,
		Labels: pick(r, labelSets), CreatedAt: now, UpdatedAt: now, CreatedBy: actor,
	}
	if r.IntN(3) > 0 {
		t.Description = m.description()
	}
	if r.IntN(2) == 0 {
		t.Assignee = m.actor()
	}
	return events.TaskCreated(m.room, actor, t)
}

// status is a system_status as sysmon sends it. It goes to the run's
// room, not the global one, so that every client of the run receives it.
func (m *dashboardMix) status() *pb.Event {
	r := m.rng
	s := &pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_HEALTHY, Metrics: &pb.SystemMetrics{
		EdgeNodes: 3, Connections: uint64(4800 + r.IntN(400)), Rooms: uint64(900 + r.IntN(200)),
		EventsInPerSecond: 30 + r.Float64()*20, EventsOutPerSecond: 150_000 + r.Float64()*60_000, DropsPerSecond: r.Float64() * 0.5,
		P99DeliveryLatencyMs: 5 + r.Float64()*40, NatsRttMs: 0.2 + r.Float64(), CpuPercent: 20 + r.Float64()*60,
		MemoryPercent: 30 + r.Float64()*30, Workers: uint32(4 + r.IntN(8)), JobsRunning: uint64(r.IntN(30)),
	}}
	if r.IntN(4) == 0 {
		s.Status = pb.HealthStatus_HEALTH_STATUS_DEGRADED
		s.Alerts = []*pb.Alert{{Id: "edge-drops:edge-2", Severity: pb.Severity_SEVERITY_WARNING,
			Message: fmt.Sprintf("edge-2 drops %.1f events/s (limit 10)", 10+r.Float64()*20), Since: timestamppb.New(time.Now().Add(-time.Duration(r.IntN(600)) * time.Second))}}
	}
	ev := events.SystemStatus(s)
	ev.Room = m.room.String()
	ev.Metadata = map[string]string{"source": "sysmon", "trigger": pick(r, []string{"interval", "change"})}
	return ev
}

// jobMix is one execution of one task reporting progress as the worker
// does, every event a task_progress with 1-6 log lines (requiredPermission
// logs:read), its progress rising from 0 to 1 over n events. Above the
// edge's --progress-rate (10/s per task by default) the edge coalesces a
// client's events into the newest with their log lines: the delivery
// check then expects the last event only (Config.Mix). Not safe for
// concurrent use.
type jobMix struct {
	d    *dashboardMix // for its generator, ids and log lines
	task string
	exec string
	n    int
}

func newJobMix(rm room.Room, n int) *jobMix {
	d := newDashboardMix(rm)
	return &jobMix{d: d, task: d.tasks[0], exec: d.id(), n: max(n, 1)}
}

// next returns event i of the job.
func (m *jobMix) next(i int) *pb.Event {
	r, now := m.d.rng, time.Now()
	p := &pb.TaskProgress{TaskId: m.task, ExecutionId: m.exec, Progress: float64(i+1) / float64(m.n), Stage: stages[min(i*len(stages)/m.n, len(stages)-1)]}
	for j := range 1 + r.IntN(6) {
		stream, line := m.d.logLine(now)
		p.Logs = append(p.Logs, &pb.LogEntry{Timestamp: timestamppb.New(now.Add(time.Duration(j-6) * 17 * time.Millisecond)), Stream: stream, Line: line})
	}
	ev := events.TaskProgress(m.d.room, p)
	ev.RequiredPermission = PermLogsRead
	return ev
}
