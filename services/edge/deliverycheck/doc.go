// Package deliverycheck judges the delivery of an event fan-out: what each
// client received, per room, against what was published. Reliability tests,
// the chaos suite and the load generator share it so that they all mean the
// same thing by "lost", "duplicate" and "out of order".
//
// A Log records what was published: per room, the stream sequences (seq) of
// its events. seq is the position in the whole stream, so one room's seqs
// increase but are not consecutive. A Received records, per room, the seqs
// one client got in arrival order, and any reset (history truncated at a
// seq) it was told about. Check compares the two under a list of
// Expectations and returns a Report; Summarize folds many Reports into one
// Summary that names the worst clients.
//
// Every arrival of a room falls in exactly one category:
//   - unexpected: its seq was never published in that room (a leak from
//     another room, or a corrupt seq);
//   - duplicate: its seq already arrived in that room;
//   - out of order: the first arrival of its seq, after a larger published
//     seq of the same room arrived;
//   - in order: anything else.
//
// Unexpected arrivals take no part in the order and duplicate judgement, so
// one stray seq does not make every later event look out of order.
// Nothing is judged across rooms: the fan-out orders events within a room
// only.
//
// Lost is judged only where an Expectation asks for it: the seqs of its
// window that never arrived, except those its Coalesced allows to be missing
// and those at or below a reset the client received for the room.
//
// Log and Received are safe for concurrent use, and Check may run while they
// are still being written to; it then judges a snapshot of each room, taken
// room by room. For a meaningful verdict call it once traffic has settled.
package deliverycheck
