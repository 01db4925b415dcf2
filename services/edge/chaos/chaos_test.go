package chaos

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/internal/netproxy"
)

var (
	long   = flag.Bool("chaos.long", false, "the long form: every scenario, a few hundred clients, longer phases (make chaos)")
	report = flag.String("chaos.report", "", "write the scenarios' figures as a Markdown table to this file")
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "eventedge-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err = buildBinaries(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// params size a run: the short form for every `go test`, the long one for
// make chaos.
type params struct {
	clients       int
	rate          int           // events per second, over every room
	before, after time.Duration // traffic before and after the fault
	partition     time.Duration // scenario 4: how long the edge is cut off
	storm         time.Duration // scenarios 5 and 6: how long the cuts go on
	settle        time.Duration // bound on the wait for late deliveries
}

var (
	shortParams = params{clients: 60, rate: 40, before: 2 * time.Second, after: 3 * time.Second,
		partition: 5 * time.Second, storm: 5 * time.Second, settle: 30 * time.Second}
	longParams = params{clients: 300, rate: 100, before: 5 * time.Second, after: 5 * time.Second,
		partition: 10 * time.Second, storm: 10 * time.Second, settle: 60 * time.Second}
)

// system is what a scenario runs against.
type system struct {
	p     params
	nats  []*natsNode
	edges []*edgeNode
	// pubPath is the publisher's way to each NATS node.
	pubPath []*netproxy.Proxy
	pub     *publisher
	rng     *rand.Rand
}

// scenario is one fault and what it does to the system, while traffic
// flows.
type scenario struct {
	name  string
	short bool // part of the short form
	// setup, when set, adjusts the publisher before it starts.
	setup func(s *system)
	fault func(t *testing.T, s *system)
	// check, when set, adds the scenario's own assertions.
	check func(t *testing.T, v verdict)
}

var scenarios = []scenario{
	{name: "kill-edge", short: true, fault: func(t *testing.T, s *system) {
		s.edges[0].proc.Kill()
		time.Sleep(time.Second)
		s.edges[0].proc.Restart()
	}},
	{name: "rolling-restart", short: true, fault: func(t *testing.T, s *system) {
		for _, e := range s.edges {
			if err := e.proc.Stop(); err != nil {
				t.Errorf("%s: SIGTERM: %v", e.name, err)
			}
			e.proc.Restart()
			time.Sleep(500 * time.Millisecond)
		}
	}},
	{name: "kill-nats-leader", short: true, fault: func(t *testing.T, s *system) {
		leader := streamLeader(t, s.pub.js, events.StreamName)
		var nd *natsNode
		for _, n := range s.nats {
			if n.name == leader {
				nd = n
			}
		}
		if nd == nil {
			t.Fatalf("stream leader %q is none of the cluster's nodes", leader)
		}
		t.Logf("killing %s, the EVENTS stream's leader", leader)
		nd.proc.Kill()
		time.Sleep(3 * time.Second)
		nd.proc.Restart()
		nd.waitHealthy(t)
		waitReplicaCurrent(t, s.pub.js, events.StreamName, leader)
	}},
	{name: "partition-edge", fault: func(t *testing.T, s *system) {
		e := s.edges[0]
		for _, p := range e.back {
			p.Block()
		}
		// Cut off, the edge says so: its /readyz fails (a load balancer
		// sends new clients elsewhere) until NATS is back.
		cut := time.Now()
		waitFor(t, 15*time.Second, e.name+" unready while cut off from NATS", func() bool { return !e.ready() })
		time.Sleep(max(0, s.p.partition-time.Since(cut)))
		for _, p := range e.back {
			p.Unblock()
		}
		waitFor(t, 30*time.Second, e.name+" ready again", e.ready)
	},
		check: func(t *testing.T, v verdict) {
			// The edge's clients stay connected through it: the edge repairs
			// behind them.
			if v.Reconnects > 0 {
				t.Errorf("%d client reconnects; the partition should cost none", v.Reconnects)
			}
		}},
	{name: "client-cuts", fault: func(t *testing.T, s *system) {
		for end := time.Now().Add(s.p.storm); time.Now().Before(end); {
			front := s.edges[s.rng.IntN(len(s.edges))].front
			front.CutSome(s.rng, max(1, front.Conns()/10))
			time.Sleep(300 * time.Millisecond)
		}
	}},
	{name: "publisher-retries",
		setup: func(s *system) { s.pub.redoEvery = 10 },
		fault: func(t *testing.T, s *system) {
			for end := time.Now().Add(s.p.storm); time.Now().Before(end); {
				for _, p := range s.pubPath {
					p.Cut()
				}
				time.Sleep(700 * time.Millisecond)
			}
		},
		check: func(t *testing.T, v verdict) {
			if v.Deduplicated == 0 {
				t.Error("JetStream de-duplicated no publish: the scenario did not re-publish anything")
			}
		}},
}

// TestChaos runs the scenarios (the short form unless -chaos.long) and
// checks that every client got every event of its rooms once, in order.
func TestChaos(t *testing.T) {
	p := shortParams
	if *long {
		p = longParams
	}
	var results []verdict
	for _, sc := range scenarios {
		if !*long && !sc.short {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			v := runScenario(t, sc, p)
			results = append(results, v)
		})
	}
	if *report != "" {
		if err := os.WriteFile(*report, []byte(table(results)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("\n%s", table(results))
}

func runScenario(t *testing.T, sc scenario, p params) verdict {
	start := time.Now()
	s := &system{p: p, rng: rand.New(rand.NewPCG(uint64(start.UnixNano()), 9))}
	s.nats = startCluster(t, 3)
	urls := make([]string, len(s.nats))
	for i, nd := range s.nats {
		s.pubPath = append(s.pubPath, netproxy.Start(t, nd.client))
		urls[i] = "nats://" + s.pubPath[i].Addr()
	}
	s.edges = startEdges(t, s.nats, 3)
	js := connectJS(t, strings.Join(urls, ","))
	streamLeader(t, js, events.StreamName) // the edges made the stream: three replicas, led

	rooms := []room.Room{room.Project("c0"), room.Project("c1"), room.Project("c2"), room.Project("c3")}
	names := make([]string, len(rooms))
	projects := make([]string, len(rooms))
	for i, r := range rooms {
		names[i], projects[i] = r.String(), r.ID
	}
	f := startFleet(t, s.edges, names, projects, p.clients)

	s.pub = newPublisher(js, rooms, p.rate)
	if sc.setup != nil {
		sc.setup(s)
	}
	s.pub.start(t)
	time.Sleep(p.before)
	sc.fault(t, s)
	time.Sleep(p.after)
	s.pub.stop()

	v := judge(t, sc.name, f, s.pub, p.settle)
	v.Elapsed = time.Since(start)
	t.Logf("%s: published %d, delivered %d of %d expected, lost %d, duplicates %d (client de-dup dropped %d), out of order %d, unexpected %d; publish retries %d, de-duplicated %d; resets %d; reconnects %d, p50 %s, p99 %s",
		sc.name, v.Published, v.Delivered, v.Expected, v.Lost, v.Duplicates, v.ClientDropped, v.OutOfOrder, v.Unexpected,
		v.PublishRetries, v.Deduplicated, v.Resets, v.Reconnects, v.ReconnectP50, v.ReconnectP99)
	if v.Published == 0 || v.Expected == 0 {
		t.Errorf("nothing published (%d) or expected (%d): the scenario proves nothing", v.Published, v.Expected)
	}
	if !v.OK() {
		t.Errorf("delivery: %s", v.Summary)
	}
	if v.Resets > 0 {
		// Retention is 24 h and 10,000 events per room: a reset here is a
		// wrong one, and it would excuse the events below it from the check.
		t.Errorf("the clients received %d resets; none is expected", v.Resets)
	}
	if v.PublishFailures > 0 {
		t.Errorf("%d publishes failed for good (or one id was stored twice)", v.PublishFailures)
	}
	if sc.check != nil {
		sc.check(t, v)
	}
	return v
}

// table formats verdicts as a Markdown table.
func table(vs []verdict) string {
	var b strings.Builder
	b.WriteString("| scenario | clients | published | delivered / expected | lost | duplicates (after client de-dup) | copies dropped by client de-dup | out of order | publish retries | de-duplicated by JetStream | reconnects | reconnect p50 / p99 | elapsed |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "| %s | %d | %d | %d / %d | %d | %d | %d | %d | %d | %d | %d | %s / %s | %s |\n",
			v.Scenario, v.Clients, v.Published, v.Delivered, v.Expected, v.Lost, v.Duplicates, v.ClientDropped, v.OutOfOrder,
			v.PublishRetries, v.Deduplicated, v.Reconnects, v.ReconnectP50.Round(time.Millisecond), v.ReconnectP99.Round(time.Millisecond),
			v.Elapsed.Round(time.Second))
	}
	return b.String()
}
