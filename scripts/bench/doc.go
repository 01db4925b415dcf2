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
package main
