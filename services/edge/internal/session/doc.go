// Package session runs one client's WebSocket connection: authentication,
// the commands the client sends, and the events queued for it.
//
// Goroutines, all owned by Run, which returns only after every one of them
// has ended:
//   - the reader (Run itself, on a goroutine the server starts for the
//     connection): always reads, so control frames are handled; owns the
//     subscriptions map. Each frame's commands run "aside", on a short-lived
//     goroutine the reader waits for, so the reader — blocked in Read for the
//     life of the connection — keeps the small stack of the read path;
//   - the writer, only while there is something to send that the node's
//     Flusher could not write: the Flusher writes each ready session's next
//     frame itself, in rounds, with a write that never waits for the
//     socket, and hands a frame the socket does not take whole to the
//     session's writer goroutine (which also starts at once when the
//     session starts closing). It alone writes the rest of the queue and
//     the close frame, batching what it finds into as few frames as
//     possible, each write under WriteTimeout (one timer per session), and
//     exits when the queue is empty;
//   - a ping, started every PingInterval by the session's clock (one timer
//     for the pings, the expiring notice and the token's expiry; clock.go)
//     and alive only while it waits for its pong.
//
// So an idle connection parks one goroutine (the reader) and holds no frame
// buffer: the memory of an idle connection is its reader's stack, the
// connection's small read and write buffers (see the server package) and
// the session's state.
//
// The queue between the fan-out and the writer is bounded in messages and
// bytes. Deliver never blocks: a client whose queue is full is closed with
// 4008 (slow consumer), so one slow client never delays the others.
package session
