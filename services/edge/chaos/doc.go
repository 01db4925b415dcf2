// Package chaos is eventedge's chaos suite: it proves the guarantees of
// docs/delivery.md while things break. It holds no product code, only
// tests.
//
// Each scenario starts its own system on loopback, all of it real: a
// three-node NATS cluster (bin/nats-server processes, the EVENTS stream
// at three replicas), three edge processes (bin/edge, each reaching every
// NATS node through its own TCP proxy), a TCP proxy in front of each edge
// for the clients, a publisher at a steady rate over a few project rooms
// (task events, and one in four a low-priority progress event of the
// room's running task),
// and reliable clients (services/edge/client) spread over the rooms and
// the edges. It lets traffic flow, breaks something, lets traffic flow
// again, stops publishing, waits until the clients have settled, and
// judges every client with services/edge/deliverycheck: nothing lost,
// nothing duplicated after the client's de-duplication, nothing out of
// order, nothing from a room the client is not in. A progress event that a
// later one of its task supersedes may be coalesced away, as
// docs/delivery.md allows; the last one of each task must arrive.
//
// Scenarios (issue #9):
//
//  1. kill-edge: kill -9 one edge node, restart it;
//  2. rolling-restart: SIGTERM (drain) and restart every edge in turn;
//  3. kill-nats-leader: kill -9 the NATS node that leads the EVENTS
//     stream, bring it back;
//  4. partition-edge: cut one edge off from NATS (its proxies refuse every
//     connection) for a while, then restore it: the edge must repair the
//     gap;
//  5. client-cuts: cut clients' connections at random through their proxy;
//  6. publisher-retries: cut the publisher's connections while it
//     publishes, and re-publish some events on purpose: JetStream's
//     de-duplication (Nats-Msg-Id) must keep each event once.
//
// `go test ./chaos` in services/edge (and so `make test`) runs the short form: scenarios 1–3
// with fewer clients and shorter phases. `make chaos` runs the long form,
// every scenario with a few hundred clients, and writes the figures
// (published, delivered, lost, duplicates, reconnect time p50/p99) as a
// Markdown table to the file named by -chaos.report:
//
//	go test -run TestChaos -timeout 30m ./chaos -args -chaos.long -chaos.report /tmp/chaos.md
//
// TestRevocationThroughLeaderFailover (run by `go test ./chaos` and so
// by make test; make chaos runs TestChaos only) kills the NATS node
// leading the REVOCATIONS stream, publishes a revocation, and checks that
// every edge applies it, and an edge restarted afterwards too.
//
// Every process listens on a 127.0.0.1 port; nothing leaves loopback.
package chaos
