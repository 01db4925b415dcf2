// Command bench runs the standard load workloads of issue #8 (L1…L5) on
// this machine and prints one table of their figures next to their
// targets: `make bench-system` (and `make bench`, after the hot-path
// micro-benchmarks).
//
// On a 2-core machine it pins the system under test to CPU 0 and the load
// to CPU 1: for each workload (each step of the L2 sweep too) it starts a
// fresh edge (bin/edge, GOMAXPROCS=1, taskset -c 0) against one NATS
// server with JetStream (bin/nats-server, taskset -c 1, a temp store),
// waits for the edge's /readyz, runs bin/loadgen --preset <name>
// (taskset -c 1) with --edge-pid, --edge-metrics and --json into the
// output directory, and stops the edge. Everything listens on 127.0.0.1
// free ports; every run is bounded (loadgen's --max-duration and a
// deadline on the process); every process it started is killed on exit,
// Ctrl-C included.
//
// The figures, from the loadgen records:
//
//	L1  broadcast 5,000 clients × 10/s for 20s     p50 and p99 latency, loss      target p99 ≤ 50 ms, zero loss
//	L2  broadcast 5,000 clients, rate sweep        highest passing deliveries/s   target ≥ 250k/s
//	L3  broadcast 5,000 clients × 100/s for 10s    delivered/s, loss, p99         target ≥ 500k/s, zero loss, p99 ≤ 400 ms
//	L4  idle 10,000 clients for 20s                edge RSS per connection        target ≤ 16 KiB/conn
//	L5  connect 5,000 clients, 200 dialers          wall time                      target ≤ 0.75 s
//
// A step of the L2 sweep passes when every client connected, no delivery
// was lost (or duplicated, or reordered), the publisher kept its schedule
// (every event published, none failed, at most 1 % of them late, late
// meaning started more than max(1/rate, 10 ms) after its slot) and the p99
// latency is below 500 ms; L2 is the measured deliveries/s of the highest
// passing rate. The sweep stops after two failing steps in a row.
//
// --quick runs every workload with 200 clients and short durations: a
// check that the orchestration works (make test runs it), not a
// measurement.
//
// --soak D runs the soak of issue #9 instead (soak.go; make soak runs
// 10 minutes, make test a 20 s form through TestSoakShort): NATS and a
// fresh edge as above (with --admin-pprof), the edge's baseline taken
// once it is ready and idle (go_goroutines from its /metrics, VmRSS from
// /proc/<pid>/status, after a GC), then loadgen --scenario churn for D
// (200 steady clients in one room, 20 events/s, 50 churning clients
// connecting per second, each living 2 s) while the edge is sampled every
// second for the peak. Afterwards it waits for the edge to report 0
// connections, then at least 10 s and at most 40 s in all, forcing a GC
// every half second through pprof's heap profile, for its goroutines and
// RSS to be back within the margins: baseline + 10 goroutines, baseline +
// max(32 MiB, 50 %) of RSS (why these: soak.go, docs/reliability.md).
// It fails, saying why (and where the edge's goroutine dump is), when
// they are not, when a connection is left open, when a steady client
// lost, duplicated or reordered an event, or when fewer than 90 % of the
// planned churning connects succeeded; loadgen's stricter verdict (late
// or unacknowledged publishes, churning connects that timed out) is
// shown as a note. The table goes to stdout and soak.txt, the record to
// soak.json, loadgen's own to soak.loadgen.json and .txt.
//
// --floor (make bench-floor; floor.go) runs L1's broadcast with nothing
// but the kernel: this binary again as a writer on CPU 0 (GOMAXPROCS=1)
// that writes a 300-byte message to each of 5,000 loopback TCP
// connections, one write each, 10 rounds a second for 20 s, and as a
// reader on CPU 1 that measures each message's latency from its round's
// start. Then L5's storm the same way: a server on CPU 0 and a client on
// CPU 1 dialing 5,000 connections, 200 at once, each a TCP connect and
// two plain exchanges of L5's sizes; it reports the wall time and both
// sides' CPU per connection. It needs none of the binaries; --quick runs
// 200 connections (make test, TestFloorQuick).
//
// --hub (make bench-hub; hub.go) runs L5's storm against a reference hub
// and against the edge, three interleaved pairs, the hub first in odd
// pairs and the edge first in even ones (--quick: one pair, 200 clients;
// make test, TestHubQuick): the hub is this binary again on CPU
// 0 (GOMAXPROCS=1), a server of nothing but net/http and coder/websocket's
// Accept that answers the load generator's auth and subscribes with a
// welcome and replies, checking no token and joining no room; the load
// generator and its flags are the edge's. It prints each run's wall and
// both sides' CPU per client while connecting, and the medians: what the
// libraries cost a connection next to what the edge costs.
package main
