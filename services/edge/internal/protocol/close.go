package protocol

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Close codes. 1xxx are RFC 6455's; 4xxx are eventedge's.
const (
	CloseNormal           websocket.StatusCode = 1000
	CloseGoingAway        websocket.StatusCode = 1001
	CloseTooBig           websocket.StatusCode = 1009
	CloseServiceRestart   websocket.StatusCode = 1012
	CloseTryAgainLater    websocket.StatusCode = 1013
	CloseUnauthenticated  websocket.StatusCode = 4001
	CloseForbidden        websocket.StatusCode = 4003
	CloseSlowConsumer     websocket.StatusCode = 4008
	CloseRateLimited      websocket.StatusCode = 4029
	CloseProtocolViolated websocket.StatusCode = 4400
)

// CloseReason is why a connection ends. It is an error, maps to exactly one
// WebSocket close code, and is logged and counted once, with Label as the
// metric label.
type CloseReason struct {
	Code websocket.StatusCode
	// Label is a short stable name for metrics and logs.
	Label string
	// Text is sent to the client as the close reason (at most 123 bytes).
	Text string
}

func (r *CloseReason) Error() string {
	return "close " + strconv.Itoa(int(r.Code)) + " " + r.Label + ": " + r.Text
}

func reason(code websocket.StatusCode, label, text string) *CloseReason {
	const maxReason = 123 // RFC 6455: a close frame's payload is at most 125 bytes
	text = strings.ToValidUTF8(text, "\uFFFD")
	if len(text) > maxReason {
		// Cut on a rune boundary: the reason must stay valid UTF-8.
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	return &CloseReason{Code: code, Label: label, Text: text}
}

// Close reasons. Connections that end without a close frame from us (the
// peer went away, a write timed out) use the labels peer_closed,
// write_timeout and ping_timeout with code 0.
var (
	ReasonServiceRestart = reason(CloseServiceRestart, "service_restart", "service restart")
	ReasonSlowConsumer   = reason(CloseSlowConsumer, "slow_consumer", "slow consumer")
	ReasonPeerClosed     = &CloseReason{Label: "peer_closed"}
	ReasonWriteTimeout   = &CloseReason{Label: "write_timeout"}
	ReasonPingTimeout    = &CloseReason{Label: "ping_timeout"}
	ReasonTooBig         = reason(CloseTooBig, "too_big", "message too big")
)

// Unauthenticated is a 4001 close; text says why (missing, expired, …).
func Unauthenticated(text string) *CloseReason {
	return reason(CloseUnauthenticated, "unauthenticated", text)
}

// Forbidden is a 4003 close.
func Forbidden(text string) *CloseReason { return reason(CloseForbidden, "forbidden", text) }

// ProtocolViolation is a 4400 close.
func ProtocolViolation(text string) *CloseReason {
	return reason(CloseProtocolViolated, "protocol_violation", text)
}

// RateLimited is a 4029 close.
func RateLimited(text string) *CloseReason { return reason(CloseRateLimited, "rate_limited", text) }

// TryAgainLater is a 1013 close whose reason carries the retry delay as
// "retry-after=<seconds>".
func TryAgainLater(after time.Duration) *CloseReason {
	secs := int((after + time.Second - 1) / time.Second)
	return reason(CloseTryAgainLater, "try_again_later", "retry-after="+strconv.Itoa(secs))
}
