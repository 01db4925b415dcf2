package chaos

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
)

// token mints an HS256 token for user sub, member of projects, allowed to
// read tasks and their logs.
func token(t *testing.T, sub string, projects []string) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"permissions": []string{"tasks:read", "logs:read"}, "projects": projects,
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fleetClient is one reliable client and what it received.
type fleetClient struct {
	c     *client.Client
	rooms []string
	got   *deliverycheck.Received

	mu         sync.Mutex
	last       client.StateChange // guarded by mu: the latest state change
	resets     atomic.Int64       // resets received: none is expected in any scenario
	downSince  time.Time          // guarded by mu: zero while connected
	reconnects []time.Duration    // guarded by mu: time from losing a connection to the next one
}

func (fc *fleetClient) onState(s client.StateChange) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.last = s
	switch s.State {
	case client.StateReconnecting:
		if fc.downSince.IsZero() {
			fc.downSince = time.Now()
		}
	case client.StateConnected:
		if !fc.downSince.IsZero() {
			fc.reconnects = append(fc.reconnects, time.Since(fc.downSince))
			fc.downSince = time.Time{}
		}
	}
}

// fleet is the clients of a scenario. Each client runs on two goroutines
// of its own (the client's Run, and the reader of its events), started by
// startFleet and ended by the test's context.
type fleet struct {
	clients []*fleetClient
}

// startFleet starts n reliable clients, client i on the edges in turn
// (its first URL is edge i mod len(edges), the others follow for
// failover) and subscribed to two of the rooms, and waits until every
// client is connected and subscribed. The clients stop when the test
// ends, before the processes do.
func startFleet(t *testing.T, edges []*edgeNode, rooms []string, projects []string, n int) *fleet {
	t.Helper()
	f := &fleet{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range n {
		urls := make([]string, len(edges))
		for k := range edges {
			urls[k] = edges[(i+k)%len(edges)].URL()
		}
		name := fmt.Sprintf("c%03d", i)
		fc := &fleetClient{
			rooms: []string{rooms[i%len(rooms)], rooms[(i+1)%len(rooms)]},
			got:   deliverycheck.NewReceived(name),
		}
		fc.c = client.NewClient(client.Config{
			URLs:          urls,
			Token:         token(t, "u"+name, projects),
			ClientVersion: "chaos",
			BaseDelay:     100 * time.Millisecond,
			MaxDelay:      time.Second,
			PingInterval:  2 * time.Second,
			PingTimeout:   2 * time.Second,
			OnState:       fc.onState,
			Buffer:        4096,
		})
		for _, r := range fc.rooms {
			fc.c.Subscribe(r)
		}
		wg.Go(func() { _ = fc.c.Run(ctx) })
		wg.Go(func() {
			for m := range fc.c.Events() {
				if !fc.got.Record(m) && m.Op == "reset" {
					fc.resets.Add(1)
				}
			}
		})
		f.clients = append(f.clients, fc)
	}
	waitFor(t, 60*time.Second, "every client subscribed", func() bool {
		for _, fc := range f.clients {
			for _, r := range fc.rooms {
				if !fc.c.Subscribed(r) {
					return false
				}
			}
		}
		return true
	})
	return f
}

// publisher publishes task events to rooms in turn at a steady rate.
// Every event is published until JetStream acknowledges it: a publish
// that fails or times out is retried with the same event id, so a copy
// that did reach the stream is de-duplicated (Nats-Msg-Id). Its goroutine
// is started by start and ended by stop.
type publisher struct {
	js    jetstream.JetStream
	rooms []room.Room
	rate  int // events per second
	// redoEvery, when > 0, publishes every redoEvery-th event a second
	// time on purpose, as a publisher that never saw the first ack would.
	redoEvery int

	log *deliverycheck.Log
	// progress records the low-priority progress events: seq → its task,
	// and each task's last seq. A progress event superseded by a later one
	// of its task may be coalesced away (docs/delivery.md); the last one
	// must arrive.
	progressMu   sync.Mutex
	progressTask map[uint64]string // guarded by progressMu
	lastProgress map[string]uint64 // guarded by progressMu

	published, retries     atomic.Int64
	deduplicated, failures atomic.Int64

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}
}

func newPublisher(js jetstream.JetStream, rooms []room.Room, rate int) *publisher {
	return &publisher{js: js, rooms: rooms, rate: rate, log: deliverycheck.NewLog(),
		progressTask: make(map[uint64]string), lastProgress: make(map[string]uint64),
		stopc: make(chan struct{}), done: make(chan struct{})}
}

// start starts publishing; the test's end stops it, if stop has not.
func (p *publisher) start(t *testing.T) {
	go p.run()
	t.Cleanup(p.stop)
}

// stop stops publishing and waits for the event in flight. It may be
// called more than once.
func (p *publisher) stop() {
	p.stopOnce.Do(func() { close(p.stopc) })
	<-p.done
}

func (p *publisher) run() {
	defer close(p.done)
	tick := time.NewTicker(time.Second / time.Duration(p.rate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-p.stopc:
			return
		case <-tick.C:
		}
		r := p.rooms[i%len(p.rooms)]
		// One event in four is a low-priority progress event of the
		// room's one running task; the others are normal task events.
		var ev *pb.Event
		task := ""
		if (i/len(p.rooms))%4 == 3 {
			task = "job-" + r.ID
			ev = events.TaskProgress(r, &pb.TaskProgress{TaskId: task, ExecutionId: "x1", Progress: float64(i%100) / 100, Stage: "chaos"})
		} else {
			ev = events.TaskDeleted(r, "chaos", fmt.Sprint("t", i))
		}
		seq, ok := p.publish(ev)
		if !ok {
			return
		}
		if task != "" {
			p.progressMu.Lock()
			p.progressTask[seq] = task
			p.lastProgress[task] = max(p.lastProgress[task], seq)
			p.progressMu.Unlock()
		}
		p.log.Add(r.String(), seq)
		p.published.Add(1)
		if p.redoEvery > 0 && i%p.redoEvery == 0 {
			if again, ok := p.publish(ev); ok && again != seq {
				p.failures.Add(1) // the same id stored twice: reported as a failure
			}
		}
	}
}

// publish publishes ev until it is acknowledged (or stop), and returns
// its seq.
func (p *publisher) publish(ev *pb.Event) (uint64, bool) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ack, err := events.Publish(ctx, p.js, ev)
		cancel()
		if err == nil {
			if ack.Duplicate {
				p.deduplicated.Add(1)
			}
			return ack.Sequence, true
		}
		p.retries.Add(1)
		select {
		case <-p.stopc:
			// Stopped while the stream was unreachable: this event may or
			// may not be stored; it is left out of the log, and a client
			// that gets it has an "unexpected" seq. Only allowed at the
			// end of a scenario, after the faults.
			p.failures.Add(1)
			return 0, false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// coalesced reports whether seq is a progress event that a later one of
// its task supersedes: the edge may skip it under pressure.
func (p *publisher) coalesced(seq uint64) bool {
	p.progressMu.Lock()
	defer p.progressMu.Unlock()
	task, ok := p.progressTask[seq]
	return ok && p.lastProgress[task] != seq
}

// verdict is the outcome of one scenario: the clients' summary (Clients,
// Expected, Delivered, Lost, Duplicates, OutOfOrder, Unexpected) and the
// rest of what a scenario reports.
type verdict struct {
	deliverycheck.Summary
	Scenario                     string
	Published                    int
	ClientDropped                uint64 // copies the clients' de-duplication dropped
	PublishRetries, Deduplicated int64
	PublishFailures              int64
	Reconnects                   int
	Resets                       int64 // resets the clients received
	ReconnectP50, ReconnectP99   time.Duration
	Elapsed                      time.Duration
}

// judge checks every client against the publisher's log, waiting up to
// settle for late deliveries to arrive.
func judge(t *testing.T, name string, f *fleet, p *publisher, settle time.Duration) verdict {
	t.Helper()
	check := func() ([]deliverycheck.Report, bool) {
		reports := make([]deliverycheck.Report, len(f.clients))
		ok := true
		for i, fc := range f.clients {
			exp := make([]deliverycheck.Expectation, len(fc.rooms))
			for k, r := range fc.rooms {
				exp[k] = deliverycheck.Expectation{Room: r, Coalesced: p.coalesced}
			}
			reports[i] = deliverycheck.Check(p.log, fc.got, exp...)
			ok = ok && reports[i].OK()
		}
		return reports, ok
	}
	deadline := time.Now().Add(settle)
	reports, ok := check()
	for !ok && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		reports, ok = check()
	}
	v := verdict{Summary: deliverycheck.Summarize(reports), Scenario: name, Published: int(p.published.Load()),
		PublishRetries: p.retries.Load(), Deduplicated: p.deduplicated.Load(), PublishFailures: p.failures.Load()}
	var recon []time.Duration
	for _, fc := range f.clients {
		v.ClientDropped += fc.c.Duplicates()
		v.Resets += fc.resets.Load()
		fc.mu.Lock()
		recon = append(recon, fc.reconnects...)
		fc.mu.Unlock()
	}
	shown := 0
	for i, r := range reports {
		if r.OK() || shown == 5 {
			continue
		}
		shown++
		fc := f.clients[i]
		fc.mu.Lock()
		last := fc.last
		fc.mu.Unlock()
		for _, rm := range fc.rooms {
			t.Logf("%s %s: subscribed %v, position %d, last published %d", r.Client, rm, fc.c.Subscribed(rm), fc.c.Position(rm), lastOf(p.log.Seqs(rm)))
		}
		t.Logf("%s: %s; last state %s node %q url %s err %v", r.Client, r, last.State, last.Node, last.URL, last.Err)
	}
	v.Reconnects = len(recon)
	if len(recon) > 0 {
		slices.Sort(recon)
		v.ReconnectP50 = recon[len(recon)*50/100]
		v.ReconnectP99 = recon[min(len(recon)-1, len(recon)*99/100)]
	}
	return v
}

func lastOf(seqs []uint64) uint64 {
	if len(seqs) == 0 {
		return 0
	}
	return seqs[len(seqs)-1]
}
