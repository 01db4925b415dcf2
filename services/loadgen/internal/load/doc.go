// Package load is the load generator's engine: it opens many WebSocket
// clients against one edge node (spread over several loopback source
// addresses), authenticates them with tokens it mints, runs a scenario
// (broadcast, rooms, idle, connect, slow, churn), measures what the clients see (end-to-end
// latency histogram, delivered/expected, and with deliverycheck lost,
// duplicated and out-of-order events), samples the edge process from /proc
// and its /metrics, and reports a human table and a JSON record.
//
// The clients speak either wire format of the protocol (Config.Protocol:
// JSON lines, or length-delimited protobufs in binary frames), read on the
// lean path by an allocation-free scanner of each (ScanLine, ScanBinary)
// into the same Line; the publisher sends padded task_updated events or
// the dashboard's mix (Config.Mix).
//
// Ownership: Run owns every goroutine it starts (the dial workers, one
// reader per client in the publishing scenarios, the publisher, churn's
// scheduler and its churning clients, the progress printer and the /proc
// sampler) and waits for all of them before it returns; the WebSocket
// handshakes go through an upgradeTransport, which starts no goroutine per
// connection. Every loop is
// bounded: by the client count, the event count (rate × duration), the
// churning connects (churn rate × duration, each living churn life), or a
// timeout under --max-duration.
package load
