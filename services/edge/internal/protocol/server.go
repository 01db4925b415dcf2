package protocol

import (
	"encoding/json"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Reply error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeRoomFull     = "room_full"
	CodeRateLimited  = "rate_limited"
	CodeInternal     = "internal"
)

// Server ops.
const (
	OpWelcome = "welcome"
	OpReply   = "reply"
	OpEvent   = "event"
	OpPong    = "pong"
)

// Welcome is sent after a successful auth.
type Welcome struct {
	Op        string `json:"op"`
	Session   string `json:"session"`
	Node      string `json:"node"`
	User      string `json:"user"`
	ExpiresAt string `json:"expiresAt"`
}

// ReplyError is the error of a failed command.
type ReplyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Reply answers a command that carried an id.
type Reply struct {
	Op    string      `json:"op"`
	ID    *uint64     `json:"id,omitempty"`
	OK    bool        `json:"ok"`
	Error *ReplyError `json:"error,omitempty"`
	// ExpiresAt is set on the reply to a token refresh (auth after welcome).
	ExpiresAt string `json:"expiresAt,omitempty"`
	// Seq is set on the reply to a subscribe: the subscription continues
	// after this stream sequence (replayed events first, when it resumed).
	Seq *uint64 `json:"seq,omitempty"`
}

// Pong answers a ping.
type Pong struct {
	Op string  `json:"op"`
	ID *uint64 `json:"id,omitempty"`
}

// EncodeWelcome encodes a welcome message.
func EncodeWelcome(session, node, user string, expiresAt time.Time) []byte {
	return mustJSON(Welcome{Op: OpWelcome, Session: session, Node: node, User: user, ExpiresAt: expiresAt.UTC().Format(time.RFC3339)})
}

// EncodeOK encodes a successful reply to id.
func EncodeOK(id *uint64) []byte { return mustJSON(Reply{Op: OpReply, ID: id, OK: true}) }

// EncodeSubscribed encodes the reply to a subscribe that continues after seq.
func EncodeSubscribed(id *uint64, seq uint64) []byte {
	return mustJSON(Reply{Op: OpReply, ID: id, OK: true, Seq: &seq})
}

// OpReset tells a client that a room's history it asked for is gone.
const OpReset = "reset"

// Reset is sent after a subscribe reply when the events after the client's
// position are no longer stored: the client reloads its state and continues
// after Seq.
type Reset struct {
	Op     string `json:"op"`
	Room   string `json:"room"`
	Reason string `json:"reason"`
	Seq    uint64 `json:"seq"`
}

// EncodeReset encodes a reset message.
func EncodeReset(roomName, reason string, seq uint64) []byte {
	return mustJSON(Reset{Op: OpReset, Room: roomName, Reason: reason, Seq: seq})
}

// EncodeRefreshed encodes the reply to a token refresh.
func EncodeRefreshed(id *uint64, expiresAt time.Time) []byte {
	return mustJSON(Reply{Op: OpReply, ID: id, OK: true, ExpiresAt: expiresAt.UTC().Format(time.RFC3339)})
}

// EncodeError encodes a failed reply to id.
func EncodeError(id *uint64, code, message string) []byte {
	return mustJSON(Reply{Op: OpReply, ID: id, OK: false, Error: &ReplyError{Code: code, Message: message}})
}

// EncodePong encodes the answer to a ping.
func EncodePong(id *uint64) []byte { return mustJSON(Pong{Op: OpPong, ID: id}) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only fixed struct types with string and number fields reach here.
		panic("protocol: " + err.Error())
	}
	return b
}

// clientEvent is the event as clients see it: the envelope plus the payload
// in its protojson form under "data".
type clientEvent struct {
	ID                 string            `json:"id"`
	Type               string            `json:"type"`
	Timestamp          string            `json:"timestamp"`
	UserID             string            `json:"userId,omitempty"`
	Priority           string            `json:"priority"`
	RequiredPermission string            `json:"requiredPermission,omitempty"`
	Metadata           map[string]string `json:"metadata"`
	Data               json.RawMessage   `json:"data"`
}

var dataJSON = protojson.MarshalOptions{}

// PriorityName is a priority as clients see it: high, normal or low.
func PriorityName(p pb.Priority) string {
	switch p {
	case pb.Priority_PRIORITY_HIGH:
		return "high"
	case pb.Priority_PRIORITY_LOW:
		return "low"
	}
	return "normal"
}

// EncodeEvent encodes the event message for ev, stored at stream sequence
// seq in room. It is called once per event per room; every subscriber of the
// room that may see the event receives the same bytes.
func EncodeEvent(roomName string, seq uint64, ev *pb.Event) ([]byte, error) {
	data, err := dataJSON.Marshal(PayloadMessage(ev))
	if err != nil {
		return nil, err
	}
	meta := ev.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	ce := clientEvent{
		ID:                 ev.Id,
		Type:               ev.Type,
		Timestamp:          ev.Timestamp.AsTime().UTC().Format(time.RFC3339Nano),
		UserID:             ev.UserId,
		Priority:           PriorityName(events.Priority(ev)),
		RequiredPermission: ev.RequiredPermission,
		Metadata:           meta,
		Data:               data,
	}
	evJSON, err := json.Marshal(ce)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(evJSON)+len(roomName)+64)
	b = append(b, `{"op":"event","room":`...)
	b = strconv.AppendQuote(b, roomName) // room names are [A-Za-z0-9_:-] only
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"event":`...)
	b = append(b, evJSON...)
	b = append(b, '}')
	return b, nil
}

// PayloadMessage returns the message of ev's payload (the one its "data"
// carries in JSON).
func PayloadMessage(ev *pb.Event) proto.Message {
	switch p := ev.Payload.(type) {
	case *pb.Event_TaskCreated:
		return p.TaskCreated
	case *pb.Event_TaskUpdated:
		return p.TaskUpdated
	case *pb.Event_TaskDeleted:
		return p.TaskDeleted
	case *pb.Event_TaskProgress:
		return p.TaskProgress
	case *pb.Event_SystemStatus:
		return p.SystemStatus
	}
	return &pb.Event{} // unreachable for validated events
}

// Unsubscribed tells a client it was removed from a room.
type Unsubscribed struct {
	Op     string `json:"op"`
	Room   string `json:"room"`
	Reason string `json:"reason"`
}

// OpUnsubscribed is the op of Unsubscribed.
const OpUnsubscribed = "unsubscribed"

// EncodeUnsubscribed encodes an unsubscribed message.
func EncodeUnsubscribed(roomName, reason string) []byte {
	return mustJSON(Unsubscribed{Op: OpUnsubscribed, Room: roomName, Reason: reason})
}

// OpExpiring warns that the token expires soon.
const OpExpiring = "expiring"

// Expiring is sent ExpiringNotice before the token's expiry: the client
// should refresh with auth, or be closed with 4001 at expiry.
type Expiring struct {
	Op string `json:"op"`
	In int    `json:"in"` // seconds until expiry
}

// EncodeExpiring encodes an expiring message.
func EncodeExpiring(in int) []byte { return mustJSON(Expiring{Op: OpExpiring, In: in}) }
