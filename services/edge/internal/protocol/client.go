package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/eventedge/eventedge/proto/room"
)

// Client ops.
const (
	OpAuth        = "auth"
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPing        = "ping"
	OpAck         = "ack"
)

// MaxEventsFilter bounds the event types one subscribe may list.
const MaxEventsFilter = 16

// ClientMessage is one client→server message. Which fields are set depends
// on Op; Decode has checked that the ones Op needs are there.
type ClientMessage struct {
	Op string `json:"op"`
	// ID correlates a command with its reply. Required for subscribe and
	// unsubscribe, optional for ping and auth.
	ID *uint64 `json:"id,omitempty"`

	// auth
	Token         string `json:"token,omitempty"`
	DeviceID      string `json:"deviceId,omitempty"`
	ClientVersion string `json:"clientVersion,omitempty"`

	// subscribe, unsubscribe, ack
	Room   string   `json:"room,omitempty"`
	Events []string `json:"events,omitempty"`
	// Since (subscribe) resumes after this stream sequence: every retained
	// event of the room with a larger seq is replayed first. 0 replays the
	// whole retained history.
	Since *uint64 `json:"since,omitempty"`

	// Seq (ack) acknowledges every event of Room up to this sequence.
	Seq *uint64 `json:"seq,omitempty"`
}

// DecodeError is a message that could not be decoded. When the bad message
// carried a usable id the server answers with an error reply to it;
// otherwise the connection is closed with 4400.
type DecodeError struct {
	ID     *uint64
	Reason string
}

func (e *DecodeError) Error() string { return e.Reason }

// Limits on auth fields.
const (
	MaxDeviceIDLen      = 64
	MaxClientVersionLen = 32
)

// Decode decodes one JSON message. Unknown fields are refused (a misspelt
// field would otherwise be silently ignored). The error is a *DecodeError.
func Decode(data []byte) (*ClientMessage, error) {
	var m ClientMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &DecodeError{ID: salvageID(data), Reason: "malformed message: " + jsonReason(err)}
	}
	if rest := trimJSONSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return nil, &DecodeError{ID: m.ID, Reason: "malformed message: trailing data after the JSON object"}
	}
	if err := m.validate(); err != nil {
		return nil, &DecodeError{ID: m.ID, Reason: err.Error()}
	}
	return &m, nil
}

// salvageID extracts a numeric id from a message that failed to decode as a
// whole, so the error can still be answered as a reply.
func salvageID(data []byte) *uint64 {
	var probe struct {
		ID *uint64 `json:"id"`
	}
	if json.Unmarshal(data, &probe) != nil {
		return nil
	}
	return probe.ID
}

func jsonReason(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "invalid JSON: unexpected end of message"
	}
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("invalid JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q: want %s", e.Field, e.Type)
	}
	// DisallowUnknownFields reports `json: unknown field "x"`.
	return err.Error()
}

func (m *ClientMessage) validate() error {
	switch m.Op {
	case OpAuth:
		if m.Token == "" {
			return fmt.Errorf("auth: token is required")
		}
		if m.DeviceID != "" && !room.ValidID(m.DeviceID) {
			return fmt.Errorf("auth: deviceId must be 1-%d characters of A-Z a-z 0-9 _ -", MaxDeviceIDLen)
		}
		if len(m.ClientVersion) > MaxClientVersionLen || !printable(m.ClientVersion) {
			return fmt.Errorf("auth: clientVersion must be at most %d printable ASCII characters", MaxClientVersionLen)
		}
	case OpSubscribe, OpUnsubscribe:
		if m.ID == nil {
			return fmt.Errorf("%s: id is required", m.Op)
		}
		if m.Room == "" {
			return fmt.Errorf("%s: room is required", m.Op)
		}
		if m.Op == OpUnsubscribe && (len(m.Events) > 0 || m.Since != nil) {
			return fmt.Errorf("unsubscribe: only id and room are allowed")
		}
		if len(m.Events) > MaxEventsFilter {
			return fmt.Errorf("subscribe: events lists %d types, at most %d", len(m.Events), MaxEventsFilter)
		}
	case OpAck:
		if m.Room == "" {
			return fmt.Errorf("ack: room is required")
		}
		if m.Seq == nil {
			return fmt.Errorf("ack: seq is required")
		}
	case OpPing:
	case "":
		return fmt.Errorf("op is required")
	default:
		return fmt.Errorf("unknown op %q", clip(m.Op))
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// trimJSONSpace trims JSON's whitespace (space, tab, CR, LF) around b:
// not bytes.TrimSpace's Unicode spaces (\v, \f, U+0085, U+00A0…), which
// JSON does not allow between values.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

// Split calls fn for each non-empty '\n'-separated message in a frame.
func Split(frame []byte, fn func(msg []byte) bool) {
	for len(frame) > 0 {
		line := frame
		if i := bytes.IndexByte(frame, '\n'); i >= 0 {
			line, frame = frame[:i], frame[i+1:]
		} else {
			frame = nil
		}
		line = trimJSONSpace(line)
		if len(line) == 0 {
			continue
		}
		if !fn(line) {
			return
		}
	}
}
