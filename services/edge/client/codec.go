package client

import (
	"encoding/json"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

const subprotocolProtobuf = protocol.SubprotocolProtobuf

// command is one client→server message, encoded per protocol.
type command struct {
	op                             string
	id                             *uint64
	token, deviceID, clientVersion string   // auth
	room                           string   // subscribe, unsubscribe, ack
	events                         []string // subscribe
	since                          *uint64  // subscribe
	seq                            *uint64  // ack
}

// jsonCommand is a command's JSON form.
type jsonCommand struct {
	Op            string   `json:"op"`
	ID            *uint64  `json:"id,omitempty"`
	Token         string   `json:"token,omitempty"`
	DeviceID      string   `json:"deviceId,omitempty"`
	ClientVersion string   `json:"clientVersion,omitempty"`
	Room          string   `json:"room,omitempty"`
	Events        []string `json:"events,omitempty"`
	Since         *uint64  `json:"since,omitempty"`
	Seq           *uint64  `json:"seq,omitempty"`
}

// encode returns the command as one frame's payload.
func (c *command) encode(p Protocol) []byte {
	if p == JSON {
		b, _ := json.Marshal(jsonCommand{Op: c.op, ID: c.id, Token: c.token, DeviceID: c.deviceID,
			ClientVersion: c.clientVersion, Room: c.room, Events: c.events, Since: c.since, Seq: c.seq})
		return b
	}
	m := &pb.ClientMessage{}
	switch c.op {
	case "auth":
		m.Op = &pb.ClientMessage_Auth{Auth: &pb.Auth{Id: c.id, Token: c.token, DeviceId: c.deviceID, ClientVersion: c.clientVersion}}
	case "subscribe":
		m.Op = &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: c.id, Room: c.room, Events: c.events, Since: c.since}}
	case "unsubscribe":
		m.Op = &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Id: c.id, Room: c.room}}
	case "ping":
		m.Op = &pb.ClientMessage_Ping{Ping: &pb.Ping{Id: c.id}}
	case "ack":
		m.Op = &pb.ClientMessage_Ack{Ack: &pb.Ack{Id: c.id, Room: c.room, Seq: c.seq}}
	}
	return AppendDelimited(nil, m)
}

// AppendDelimited appends m to b with its length prefix, as protobuf-mode
// frames carry it. For tools and tests that build frames for WriteRaw.
func AppendDelimited(b []byte, m proto.Message) []byte {
	data, err := proto.Marshal(m)
	if err != nil {
		panic("client: " + err.Error()) // messages of strings and numbers only
	}
	b = protowire.AppendVarint(b, uint64(len(data)))
	return append(b, data...)
}

// nextDelimited splits the first length-delimited message off frame.
func nextDelimited(frame []byte) (msg, rest []byte, err error) {
	n, w := protowire.ConsumeVarint(frame)
	if w < 0 {
		return nil, nil, errors.New("invalid length prefix")
	}
	if n > uint64(len(frame)-w) {
		return nil, nil, fmt.Errorf("length %d past the frame's end", n)
	}
	return frame[w : w+int(n)], frame[w+int(n):], nil
}

// decodeJSON decodes one JSON server message (line is owned by the
// message).
func decodeJSON(line []byte) incoming {
	var head struct {
		Op string  `json:"op"`
		ID *uint64 `json:"id"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return incoming{err: err}
	}
	if (head.Op == "reply" || head.Op == "pong") && head.ID != nil {
		r := &reply{OK: head.Op == "pong"}
		if head.Op == "reply" {
			if err := json.Unmarshal(line, r); err != nil {
				return incoming{err: fmt.Errorf("reply: %w", err)}
			}
		}
		return incoming{id: head.ID, reply: r}
	}
	m := &Message{Raw: line}
	if err := json.Unmarshal(line, m); err != nil {
		return incoming{err: err}
	}
	return incoming{msg: m}
}

// welcomeProto decodes the welcome at the start of a protobuf frame and
// returns the frame's other messages.
func welcomeProto(frame []byte) (*Welcome, []byte, error) {
	msg, rest, err := nextDelimited(frame)
	var sm pb.ServerMessage
	if err == nil {
		err = proto.Unmarshal(msg, &sm)
	}
	w := sm.GetWelcome()
	if err != nil || w == nil {
		return nil, nil, fmt.Errorf("expected welcome, got %d bytes: %x", len(frame), frame[:min(len(frame), 64)])
	}
	return &Welcome{Session: w.Session, Node: w.Node, User: w.User, ExpiresAt: w.ExpiresAt.AsTime()}, rest, nil
}

// decodeProto decodes one ServerMessage (without its length prefix).
func decodeProto(data []byte) incoming {
	var sm pb.ServerMessage
	if err := proto.Unmarshal(data, &sm); err != nil {
		return incoming{err: err}
	}
	raw := append([]byte(nil), data...)
	switch op := sm.Op.(type) {
	case *pb.ServerMessage_Reply:
		r := op.Reply
		rp := &reply{OK: r.Ok, Seq: r.GetSeq()}
		if r.ExpiresAt != nil {
			rp.ExpiresAt = r.ExpiresAt.AsTime()
		}
		if r.Error != nil {
			rp.Error = &ReplyError{Code: r.Error.Code, Message: r.Error.Message}
		}
		if r.Id != nil {
			return incoming{id: r.Id, reply: rp}
		}
		m := &Message{Op: "reply", Raw: raw}
		if rp.Error != nil {
			m.Reason = rp.Error.Code
		}
		return incoming{msg: m}
	case *pb.ServerMessage_Pong:
		if op.Pong.Id != nil {
			return incoming{id: op.Pong.Id, reply: &reply{OK: true}}
		}
		return incoming{msg: &Message{Op: "pong", Raw: raw}}
	case *pb.ServerMessage_Event:
		ev, err := eventFromProto(op.Event.Event)
		if err != nil {
			return incoming{err: err}
		}
		return incoming{msg: &Message{Op: "event", Room: op.Event.Room, Seq: op.Event.Seq, Event: ev, Raw: raw}}
	case *pb.ServerMessage_Reset_:
		r := op.Reset_
		return incoming{msg: &Message{Op: "reset", Room: r.Room, Seq: r.Seq, Reason: r.Reason, Raw: raw}}
	case *pb.ServerMessage_Unsubscribed:
		u := op.Unsubscribed
		return incoming{msg: &Message{Op: "unsubscribed", Room: u.Room, Reason: u.Reason, Raw: raw}}
	case *pb.ServerMessage_Expiring:
		return incoming{msg: &Message{Op: "expiring", In: int(op.Expiring.In), Raw: raw}}
	case *pb.ServerMessage_Welcome:
		return incoming{msg: &Message{Op: "welcome", Raw: raw}}
	}
	return incoming{err: errors.New("ServerMessage without a known op")}
}

// eventFromProto is ev as JSON mode delivers it: the envelope's fields,
// the payload in its protojson form as Data, and ev itself as Proto.
func eventFromProto(ev *pb.Event) (*Event, error) {
	if ev == nil {
		return nil, errors.New("event message without an event")
	}
	data, err := protojson.Marshal(protocol.PayloadMessage(ev))
	if err != nil {
		return nil, fmt.Errorf("event %s: payload: %w", ev.Id, err)
	}
	meta := ev.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	typ := ev.Type
	if typ == "" {
		typ = events.TypeOf(ev)
	}
	return &Event{
		ID:                 ev.Id,
		Type:               typ,
		Timestamp:          ev.Timestamp.AsTime(),
		UserID:             ev.UserId,
		Priority:           protocol.PriorityName(events.Priority(ev)),
		RequiredPermission: ev.RequiredPermission,
		Metadata:           meta,
		Data:               data,
		Proto:              ev,
	}, nil
}
