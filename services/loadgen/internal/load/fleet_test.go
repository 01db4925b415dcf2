package load

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/coder/websocket"

	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/client"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&stageError{"dial", &client.CloseError{Code: websocket.StatusCode(4001), Reason: "token bad_signature"}}, "dial: close 4001"},
		{&stageError{"subscribe", &client.ReplyError{Code: "forbidden"}}, "subscribe: forbidden"},
		{&stageError{"dial", fmt.Errorf("dial ws://x: HTTP 429: %w", errors.New("failed"))}, "dial: HTTP 429"},
		{&stageError{"dial", fmt.Errorf("x: %w", syscall.ECONNREFUSED)}, "dial: connection refused"},
		{&stageError{"dial", fmt.Errorf("x: %w", syscall.EADDRNOTAVAIL)}, "dial: no free local port"},
		{&stageError{"subscribe", context.DeadlineExceeded}, "subscribe: timeout"},
		{errors.New("odd"), "connect: other"},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestPaddingReachesSize(t *testing.T) {
	if got := len(padding(roomForTest(), 500)); got < 200 || got > 500 {
		t.Errorf("padding for 500 bytes is %d long", got)
	}
	if padding(roomForTest(), 0) != "" {
		t.Error("padding for 0 bytes is not empty")
	}
}

func roomForTest() room.Room { return room.Project("p1") }
