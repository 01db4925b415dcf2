// Package session runs one client's WebSocket connection: authentication,
// the commands the client sends, and the events queued for it.
//
// Goroutines, all owned by Run, which returns only after every one of them
// has ended:
//   - the reader (Run itself): always reads, so control frames are handled;
//     decodes and executes commands; owns the subscriptions map;
//   - the writer: alone writes data and close frames; drains the queue and
//     batches what it finds into as few frames as possible, each write under
//     a timeout;
//   - a ping, started by a timer every PingInterval and alive only while it
//     waits for its pong, so an idle connection parks no extra goroutine.
//
// The queue between the fan-out and the writer is bounded in messages and
// bytes. Deliver never blocks: a client whose queue is full is closed with
// 4008 (slow consumer), so one slow client never delays the others.
package session
