package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

func TestCloseReasons(t *testing.T) {
	cases := []struct {
		name  string
		r     *CloseReason
		code  websocket.StatusCode
		label string
		text  string
	}{
		{"service restart", ReasonServiceRestart, 1012, "service_restart", "service restart"},
		{"slow consumer", ReasonSlowConsumer, 4008, "slow_consumer", "slow consumer"},
		{"too big", ReasonTooBig, 1009, "too_big", "message too big"},
		{"peer closed", ReasonPeerClosed, 0, "peer_closed", ""},
		{"write timeout", ReasonWriteTimeout, 0, "write_timeout", ""},
		{"ping timeout", ReasonPingTimeout, 0, "ping_timeout", ""},
		{"unauthenticated", Unauthenticated("token expired"), 4001, "unauthenticated", "token expired"},
		{"forbidden", Forbidden("no"), 4003, "forbidden", "no"},
		{"protocol violation", ProtocolViolation("bad json"), 4400, "protocol_violation", "bad json"},
		{"rate limited", RateLimited("slow down"), 4029, "rate_limited", "slow down"},
		{"try again later", TryAgainLater(1500 * time.Millisecond), 1013, "try_again_later", "retry-after=2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.r.Code != tc.code || tc.r.Label != tc.label || tc.r.Text != tc.text {
				t.Errorf("got {%d %q %q}, want {%d %q %q}", tc.r.Code, tc.r.Label, tc.r.Text, tc.code, tc.label, tc.text)
			}
			var err error = tc.r
			var cr *CloseReason
			if !errors.As(err, &cr) || cr != tc.r {
				t.Errorf("errors.As did not find the *CloseReason")
			}
		})
	}
}

func TestCloseReasonError(t *testing.T) {
	if got, want := Unauthenticated("token expired").Error(), "close 4001 unauthenticated: token expired"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestCloseReasonTruncated(t *testing.T) {
	for name, mk := range map[string]func(string) *CloseReason{
		"Unauthenticated":   Unauthenticated,
		"Forbidden":         Forbidden,
		"ProtocolViolation": ProtocolViolation,
		"RateLimited":       RateLimited,
	} {
		t.Run(name, func(t *testing.T) {
			long := strings.Repeat("x", 200)
			if got := mk(long).Text; got != long[:123] {
				t.Errorf("Text has %d bytes, want the first 123", len(got))
			}
			exact := strings.Repeat("y", 123)
			if got := mk(exact).Text; got != exact {
				t.Errorf("123-byte text changed to %d bytes", len(got))
			}
		})
	}
}

// TestCloseReasonTruncatedUTF8 checks that truncation keeps the text valid
// UTF-8, as RFC 6455 requires of a close reason (a browser fails the
// connection on invalid UTF-8 in a close frame).
func TestCloseReasonTruncatedUTF8(t *testing.T) {
	// The session closes with ProtocolViolation(decodeErr.Error()), and a
	// DecodeError can echo a client's field name, so the text is client
	// controlled. The prefix `malformed message: json: unknown field "` is 40
	// bytes; 2-byte runes then put byte 123 inside a rune.
	_, decodeErr := Decode([]byte(`{"op":"ping","` + strings.Repeat("é", 60) + `":1}`))
	if decodeErr == nil {
		t.Fatal("Decode accepted an unknown field")
	}
	for name, text := range map[string]string{
		"plain text":           strings.Repeat("a", 122) + "é", // 124 bytes; the cut falls inside é
		"unknown field reason": decodeErr.Error(),
	} {
		t.Run(name, func(t *testing.T) {
			got := ProtocolViolation(text).Text
			if len(got) > 123 {
				t.Fatalf("Text has %d bytes, want at most 123", len(got))
			}
			if !utf8.ValidString(got) {
				t.Fatalf("reason() cuts text at byte 123 even inside a UTF-8 sequence; Text ends in %q", got[len(got)-3:])
			}
		})
	}
}

func TestTryAgainLater(t *testing.T) {
	cases := []struct {
		after time.Duration
		want  string
	}{
		{1500 * time.Millisecond, "retry-after=2"},
		{time.Second, "retry-after=1"},
		{time.Nanosecond, "retry-after=1"},
		{2*time.Second + time.Millisecond, "retry-after=3"},
		{time.Minute, "retry-after=60"},
		{0, "retry-after=0"},
	}
	for _, tc := range cases {
		r := TryAgainLater(tc.after)
		if r.Text != tc.want || r.Code != CloseTryAgainLater {
			t.Errorf("TryAgainLater(%v) = {%d %q}, want {%d %q}", tc.after, r.Code, r.Text, CloseTryAgainLater, tc.want)
		}
	}
}
