// Package broker connects an edge node to NATS: the connection itself
// (reconnecting forever, subscriptions restored by the client library), the
// EVENTS stream the node depends on, the readiness the node reports, and an
// embedded NATS server with JetStream for running without an external one.
package broker
