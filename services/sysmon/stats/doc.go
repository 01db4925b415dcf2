// Package stats is the contract of the stats messages that edge nodes and
// workers publish for sysmon, the system monitor. It depends on the standard
// library only, so any service may import it without pulling in sysmon.
//
// # Edge nodes
//
// Every edge node publishes one JSON object on core NATS subject
// ctl.edge.stats (EdgeSubject) every 5 s (Interval), the Go type Edge:
//
//	{"node":"edge-1","connections":12,"rooms":3,"eventsInPerSecond":1.5,"eventsOutPerSecond":40,"dropsPerSecond":0,"p99DeliveryLatencyMs":3.2,"natsRttMs":0.4,"at":"2026-11-26T05:03:13.975Z"}
//
//	| field | JSON type | meaning |
//	| --- | --- | --- |
//	| node | string, required | the node's name (--node-name): 1-64 printable ASCII characters, no spaces |
//	| connections | integer >= 0 | WebSocket connections open now |
//	| rooms | integer >= 0 | rooms with at least one subscriber now |
//	| eventsInPerSecond | number >= 0 | events read from NATS per second, over the last interval |
//	| eventsOutPerSecond | number >= 0 | events written to clients per second, over the last interval |
//	| dropsPerSecond | number >= 0 | events dropped per second (slow consumers, low-priority shedding), over the last interval |
//	| p99DeliveryLatencyMs | number >= 0 | 99th percentile, in milliseconds, of event timestamp → written to a client, over the last interval, for live deliveries only: resume replays and gap repairs are left out (0: nothing delivered live) |
//	| natsRttMs | number >= 0 | the node's round-trip time to NATS, in milliseconds |
//	| at | RFC 3339 string, required | when the node took the numbers |
//
// # Workers
//
// Every worker publishes on ctl.worker.stats (WorkerSubject) every 5 s, the
// Go type Worker:
//
//	{"worker":"w1","running":1,"succeeded":10,"failed":0,"at":"2026-11-26T05:03:13.975Z"}
//
//	| field | JSON type | meaning |
//	| --- | --- | --- |
//	| worker | string, required | the worker's name: same rule as an edge node's |
//	| running | integer >= 0 | jobs running now |
//	| succeeded | integer >= 0 | jobs that succeeded since the worker started |
//	| failed | integer >= 0 | jobs that failed since the worker started |
//	| at | RFC 3339 string, required | when the worker took the numbers |
//
// # Rules
//
// A message is at most MaxMessageBytes. Integers must be JSON integers; a
// negative number, a missing name or time, or a name with spaces or
// non-ASCII characters makes the whole message invalid: sysmon logs it,
// counts it (sysmon_stats_invalid_total{source,reason}) and ignores it.
// Fields sysmon does not know are ignored, so a publisher may add fields
// before sysmon reads them. sysmon takes a node's silence from the time a
// message arrives, not from at, so clock skew between hosts does not matter.
//
// Publishing from Go:
//
//	b, err := stats.Edge{Node: "edge-1", Connections: 12, At: time.Now()}.Encode() // validates
//	if err != nil { … }
//	err = nc.Publish(stats.EdgeSubject, b)
package stats
