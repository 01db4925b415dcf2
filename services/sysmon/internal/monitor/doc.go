// Package monitor aggregates what sysmon learns — the stats of edge nodes
// and workers, the health of NATS and JetStream, the host's CPU and memory —
// and decides the system's status: healthy, degraded or error, with an alert
// per condition that is wrong.
//
// The package does no I/O and takes the time from an injected clock, so the
// whole decision is tested as a table. The conditions:
//
//	| alert id | severity | when |
//	| --- | --- | --- |
//	| jetstream-unavailable | critical | JetStream's account info cannot be read (JetStream down or disabled, NATS unreachable) |
//	| stream-unavailable:EVENTS | critical | the EVENTS stream's info cannot be read (the stream is missing) while JetStream answers |
//	| stream-fill:EVENTS:bytes, stream-fill:EVENTS:messages | warning | the stream holds more than MaxStreamFill of its MaxBytes or MaxMsgs limit |
//	| jetstream-fill:storage, jetstream-fill:memory | warning | the account uses more than MaxStreamFill of its JetStream storage or memory limit |
//	| edge-silent:<node> | warning | no stats from the node for NodeSilence (since: its last stats) |
//	| edge-p99:<node> | warning | the node's p99 delivery latency is over MaxP99 |
//	| edge-drops:<node> | warning | the node drops more than MaxDrops events per second |
//	| no-edge-nodes | warning | no edge node has reported for NodeSilence (counted from the monitor's start) |
//	| nats-monitor | info | the NATS monitoring endpoint cannot be read |
//
// The status is the worst severity among the alerts: critical → error,
// warning → degraded; info alone, or no alert, → healthy. An alert's since
// is when its condition started, and stays the same for as long as the
// condition holds; a condition that clears removes its alert (a silent node
// that reports again clears edge-silent:<node> at once).
package monitor
