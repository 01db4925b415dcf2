package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// PermLogsRead is the permission the rooms scenario puts on a share of
// its events (the edge's auth.PermLogsRead).
const PermLogsRead = "logs:read"

// roomsTypes are the event types the rooms publisher cycles through.
var roomsTypes = []string{events.TypeTaskCreated, events.TypeTaskUpdated, events.TypeTaskDeleted, events.TypeTaskProgress}

// roomProject is the project id of room j of the rooms scenario.
func roomProject(project string, j int) string { return project + "-r" + strconv.Itoa(j) }

// spread reports whether item i of a sequence is one of the share f,
// spread evenly: exactly floor(n·f) of items 0…n-1 are.
func spread(i int, f float64) bool {
	return int(float64(i+1)*f) > int(float64(i)*f)
}

// rooms spreads the clients over Rooms project rooms (client i in room
// i mod Rooms) and subscribes each to its own user room too; a share of
// them (NoLogsFraction) has no logs:read. The publisher sends Rate ×
// Duration events of the four task types, a share (UserFraction) to a
// client's user room and the rest round-robin to the project rooms, a
// share (LogsFraction) with requiredPermission logs:read. Each client is
// then checked per room against what it may receive.
//
// task_progress is low priority: the edge may coalesce, hold or drop it
// under flow control, so it is not expected (a missing one is not lost);
// how many arrived is reported. A logs:read event received by a client
// without the permission is counted as forbidden and fails the run.
func (r *runner) rooms(ctx context.Context) (*Results, error) {
	nc, js, err := r.jetStream(ctx)
	if err != nil {
		return nil, err
	}
	defer nc.Close()

	n, m := r.cfg.Clients, r.cfg.Rooms
	noLogs := make([]bool, n)
	for i := range noLogs {
		noLogs[i] = spread(i, r.cfg.NoLogsFraction)
	}
	projectOf := func(i int) string { return room.Project(roomProject(r.cfg.Project, i%m)).String() }
	userOf := func(i int) string { return room.User(r.userID(i)).String() }

	var (
		latency    hist.Histogram
		published  = deliverycheck.NewLog()
		received   = make([]*deliverycheck.Received, n)
		strictRecv atomic.Int64 // arrivals of events that are not task_progress
		progRecv   atomic.Int64 // arrivals of task_progress
		forbidden  atomic.Int64 // logs:read events that reached a client without it
	)
	r.phase.Store("connect")
	d := r.dialAllSpec(ctx, n, func(i int) clientSpec {
		perms := []string{"tasks:read", PermLogsRead}
		if noLogs[i] {
			perms = perms[:1]
		}
		return clientSpec{rooms: []string{projectOf(i), userOf(i)}, perms: perms, projects: []string{roomProject(r.cfg.Project, i%m)}, lean: true}
	}, func(i int, c conn) {
		got := deliverycheck.NewReceived("c" + strconv.Itoa(i))
		received[i] = got
		lacksLogs := noLogs[i]
		c.(*leanConn).start(r.leanRead(got, &latency, func(msg *leanMsg) {
			if string(msg.Type) == events.TypeTaskProgress {
				progRecv.Add(1)
			} else {
				strictRecv.Add(1)
			}
			if lacksLogs && string(msg.Permission) == PermLogsRead {
				forbidden.Add(1)
			}
		}))
	})
	res := r.connectResults(d)
	closed := false
	defer func() {
		if !closed {
			r.closeAll(d.conns)
		}
	}()
	if res.Clients.Connected == 0 {
		res.Notes = append(res.Notes, "no client connected: nothing published")
		return res, nil
	}

	// Who may receive what: per project room, the connected clients with
	// and without logs:read.
	type audience struct{ all, withLogs int64 }
	projAud := make([]audience, m)
	for i, c := range d.conns {
		if c == nil {
			continue
		}
		projAud[i%m].all++
		if !noLogs[i] {
			projAud[i%m].withLogs++
		}
	}

	rs := &RoomsResults{ProjectRooms: m, PublishedByType: map[string]int{}}
	for i := range n {
		if noLogs[i] {
			rs.ClientsWithoutLogs++
		}
	}
	var (
		mu        sync.Mutex
		needsLogs = map[uint64]bool{} // guarded by mu
		progress  = map[uint64]bool{} // guarded by mu
		progElig  int64               // task_progress deliveries the clients may receive; written by done, read after publishSchedule
	)
	rng := rand.New(rand.NewPCG(8, uint64(n)*1000+uint64(m)))
	pad := padding(room.Project(roomProject(r.cfg.Project, m-1)), r.cfg.PayloadBytes)
	type plan struct {
		user   int // client index of the user room, -1 for a project room
		logs   bool
		target room.Room
	}
	var plansMu sync.Mutex
	plans := map[int]plan{} // guarded by plansMu: build (the publisher) adds, done (its ack collector) takes
	r.phase.Store("publish")
	pubStart := time.Now()
	pub := r.publishSchedule(ctx, js, func(k int) *pb.Event {
		p := plan{user: -1, logs: rng.Float64() < r.cfg.LogsFraction}
		if rng.Float64() < r.cfg.UserFraction {
			p.user = rng.IntN(n)
			p.target = room.User(r.userID(p.user))
		} else {
			p.target = room.Project(roomProject(r.cfg.Project, k%m))
		}
		plansMu.Lock()
		plans[k] = p
		plansMu.Unlock()
		task := "t" + strconv.Itoa(k) // one task per event: progress is never coalesced with another
		var ev *pb.Event
		switch roomsTypes[k%len(roomsTypes)] {
		case events.TypeTaskCreated:
			ev = events.TaskCreated(p.target, "lg", &pb.Task{Id: task, Title: pad})
		case events.TypeTaskUpdated:
			ev = events.TaskUpdated(p.target, "lg", task, &pb.Task{Title: pad}, "title")
		case events.TypeTaskDeleted:
			ev = events.TaskDeleted(p.target, "lg", task)
		default:
			ev = events.TaskProgress(p.target, &pb.TaskProgress{TaskId: task, Progress: 0.5, Message: pad})
		}
		if p.logs {
			ev.RequiredPermission = PermLogsRead
		}
		return ev
	}, func(k int, ev *pb.Event, seq uint64) {
		plansMu.Lock()
		p := plans[k]
		delete(plans, k)
		plansMu.Unlock()
		published.Add(ev.Room, seq)
		rs.PublishedByType[ev.Type]++
		if p.logs {
			rs.LogsEvents++
		}
		var aud int64
		if p.user >= 0 {
			rs.UserRoomEvents++
			if d.conns[p.user] != nil && (!p.logs || !noLogs[p.user]) {
				aud = 1
			}
		} else {
			a := projAud[k%m]
			aud = a.all
			if p.logs {
				aud = a.withLogs
			}
		}
		progressEv := ev.Type == events.TypeTaskProgress
		mu.Lock()
		needsLogs[seq] = p.logs
		progress[seq] = progressEv
		mu.Unlock()
		if progressEv {
			progElig += aud
		} else {
			r.expected.Add(aud)
		}
	})
	res.Publisher = pub

	r.phase.Store("drain")
	want := r.expected.Load()
	r.drain(ctx, func() bool { return strictRecv.Load() < want || progRecv.Load() < progElig })
	window := time.Since(pubStart)

	res.Clients.Disconnected = disconnected(d)
	r.captureMetrics()
	r.phase.Store("close")
	r.closeAll(d.conns)
	closed = true

	r.phase.Store("check")
	mu.Lock()
	defer mu.Unlock()
	reports := make([]deliverycheck.Report, 0, res.Clients.Connected)
	for i, got := range received {
		if got == nil {
			continue
		}
		lacksLogs := noLogs[i]
		skip := func(seq uint64) bool { return progress[seq] || (lacksLogs && needsLogs[seq]) }
		reports = append(reports, deliverycheck.Check(published, got,
			deliverycheck.Expectation{Room: projectOf(i), From: d.posAll[i][0], Coalesced: skip},
			deliverycheck.Expectation{Room: userOf(i), From: d.posAll[i][1], Coalesced: skip}))
	}
	sum := deliverycheck.Summarize(reports)
	// Deliveries/s counts every delivery, task_progress included.
	res.Delivery = r.deliveryResults(sum, pub.Published, r.received.Load(), window)
	rs.Forbidden = int(forbidden.Load())
	rs.ProgressEligible = int(progElig)
	rs.ProgressDelivered = int(progRecv.Load())
	res.Rooms = rs
	res.Latency = latencyOf(&latency)
	if !sum.OK() || rs.Forbidden > 0 || pub.Failed > 0 || pub.Published < pub.Target || res.Clients.Disconnected != nil {
		res.OK = false
	}
	if rs.ProgressDelivered < rs.ProgressEligible {
		res.Notes = append(res.Notes, fmt.Sprintf("task_progress: %d of %d deliveries arrived (low priority: the edge may coalesce or drop them)",
			rs.ProgressDelivered, rs.ProgressEligible))
	}
	return res, nil
}
