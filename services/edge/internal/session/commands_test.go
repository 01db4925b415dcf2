package session

import (
	"context"
	"fmt"
	"testing"
)

// closingText is the text of s's close reason, "" while it is open.
func closingText(s *Session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == nil {
		return ""
	}
	return s.reason.Text
}

// TestAckBudget: acks spend a budget of their own (AckRate, AckBurst), not
// the commands': a burst of acks leaves the commands' budget whole, and
// one ack beyond the acks' burst closes the client with 4029.
func TestAckBudget(t *testing.T) {
	// A token every 1,000 s: none comes back during the test.
	s := snapshotSession(Options{AckRate: 0.001, AckBurst: 20, CommandRate: 0.001, CommandBurst: 1})
	ctx := context.Background()
	for i := range 20 {
		s.handle(ctx, []byte(fmt.Sprintf(`{"op":"ack","room":"project:p1","seq":%d}`, i+1)))
	}
	if got := s.Snapshot().Closing; got != "" {
		t.Fatalf("closed (%s) within the acks' burst", got)
	}
	s.handle(ctx, []byte(`{"op":"ping","id":1}`)) // the commands' one token is still there
	if snap := s.Snapshot(); snap.Closing != "" || snap.QueueMessages != 1 {
		t.Fatalf("a ping after 20 acks: closing %q, %d queued; want open, its pong queued", snap.Closing, snap.QueueMessages)
	}
	s.handle(ctx, []byte(`{"op":"ack","room":"project:p1","seq":21}`))
	if got, text := s.Snapshot().Closing, closingText(s); got != "rate_limited" || text != "more than 0.001 acks per second" {
		t.Fatalf("the 21st ack: closing %q %q; want rate_limited, more than 0.001 acks per second", got, text)
	}
}

// TestRepliesCountTowardQueueBounds: a client that sends commands and does
// not read the replies is closed as a slow consumer once they fill its
// queue's bounds (messages or bytes), instead of having them queued without
// bound.
func TestRepliesCountTowardQueueBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("messages", func(t *testing.T) {
		s := snapshotSession(Options{QueueMessages: 8})
		for i := range 8 {
			s.handle(ctx, []byte(fmt.Sprintf(`{"op":"ack","id":%d,"room":"project:p1","seq":1}`, i+1))) // not subscribed: an error reply
		}
		if snap := s.Snapshot(); snap.Closing != "" || snap.QueueMessages != 8 {
			t.Fatalf("8 replies: closing %q, %d queued; want open, 8", snap.Closing, snap.QueueMessages)
		}
		s.handle(ctx, []byte(`{"op":"ping","id":9}`))
		if snap := s.Snapshot(); snap.Closing != "slow_consumer" || snap.QueueMessages != 8 {
			t.Fatalf("a 9th reply: closing %q, %d queued; want slow_consumer, 8", snap.Closing, snap.QueueMessages)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		pong := len(`{"op":"pong","id":1}`) // no newline: the writer separates the messages of a frame
		s := snapshotSession(Options{QueueBytes: 3*pong + pong/2})
		for i := range 3 {
			s.handle(ctx, []byte(fmt.Sprintf(`{"op":"ping","id":%d}`, i+1)))
		}
		if snap := s.Snapshot(); snap.Closing != "" || snap.QueueMessages != 3 || snap.QueueBytes != 3*pong {
			t.Fatalf("3 pongs: closing %q, %d queued (%d bytes); want open, 3 (%d bytes)", snap.Closing, snap.QueueMessages, snap.QueueBytes, 3*pong)
		}
		s.handle(ctx, []byte(`{"op":"ping","id":4}`))
		if snap := s.Snapshot(); snap.Closing != "slow_consumer" || snap.QueueMessages != 3 {
			t.Fatalf("a 4th pong past the byte bound: closing %q, %d queued; want slow_consumer, 3", snap.Closing, snap.QueueMessages)
		}
	})
}
