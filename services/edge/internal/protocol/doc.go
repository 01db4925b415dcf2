// Package protocol is eventedge's WebSocket wire contract, version 1: the
// JSON messages clients send and receive, the reply error codes and the close
// codes. docs/protocol.md is its prose twin; change both together.
//
// A text frame carries one message or several separated by '\n', in both
// directions. Encoders here produce one message without a trailing newline;
// the session's writer joins queued messages when it batches.
package protocol
