package protocol

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// The protobuf mode (subprotocol eventedge.v1.protobuf). A binary frame is
// one or more messages, each preceded by its length as a varint; every
// encoder here returns one message with its length prefix, so the session's
// writer batches by concatenation, as it joins JSON messages with '\n'.

// SplitBinary checks the framing of a binary frame and then calls fn for
// each message in it (without its length prefix), until fn returns false.
// A frame whose framing is broken (a bad varint, a length past the end) is
// refused as a whole, before any of its messages is handled.
func SplitBinary(frame []byte, fn func(msg []byte) bool) error {
	for rest, i := frame, 0; len(rest) > 0; i++ {
		n, w := protowire.ConsumeVarint(rest)
		if w < 0 {
			return fmt.Errorf("malformed binary frame: message %d: invalid length prefix", i+1)
		}
		if n > uint64(len(rest)-w) {
			return fmt.Errorf("malformed binary frame: message %d: length %d runs past the frame's end (%d bytes left)", i+1, n, len(rest)-w)
		}
		rest = rest[w+int(n):]
	}
	for len(frame) > 0 {
		n, w := protowire.ConsumeVarint(frame)
		msg := frame[w : w+int(n)]
		frame = frame[w+int(n):]
		if !fn(msg) {
			break
		}
	}
	return nil
}

// DecodeBinary decodes one protobuf ClientMessage (without its length
// prefix) into the same ClientMessage as Decode, with the same rules.
// Unknown fields are refused, as unknown JSON fields are. The error is a
// *DecodeError.
func DecodeBinary(data []byte) (*ClientMessage, error) {
	var pm pb.ClientMessage
	if err := proto.Unmarshal(data, &pm); err != nil {
		return nil, &DecodeError{Reason: "malformed message: not a ClientMessage protobuf (" + protoReason(err) + ")"}
	}
	m := &ClientMessage{}
	var inner protoreflect.Message
	switch op := pm.Op.(type) {
	case *pb.ClientMessage_Auth:
		a := op.Auth
		m.Op, m.ID, m.Token, m.DeviceID, m.ClientVersion = OpAuth, a.Id, a.Token, a.DeviceId, a.ClientVersion
		inner = a.ProtoReflect()
	case *pb.ClientMessage_Subscribe:
		sb := op.Subscribe
		m.Op, m.ID, m.Room, m.Events, m.Since = OpSubscribe, sb.Id, sb.Room, sb.Events, sb.Since
		inner = sb.ProtoReflect()
	case *pb.ClientMessage_Unsubscribe:
		u := op.Unsubscribe
		m.Op, m.ID, m.Room = OpUnsubscribe, u.Id, u.Room
		inner = u.ProtoReflect()
	case *pb.ClientMessage_Ping:
		m.Op, m.ID = OpPing, op.Ping.Id
		inner = op.Ping.ProtoReflect()
	case *pb.ClientMessage_Ack:
		a := op.Ack
		m.Op, m.ID, m.Room, m.Seq = OpAck, a.Id, a.Room, a.Seq
		inner = a.ProtoReflect()
	}
	if u := pm.ProtoReflect().GetUnknown(); len(u) > 0 {
		return nil, &DecodeError{ID: m.ID, Reason: "malformed message: unknown field " + firstField(u) + " in ClientMessage"}
	}
	if inner != nil {
		if u := inner.GetUnknown(); len(u) > 0 {
			return nil, &DecodeError{ID: m.ID, Reason: "malformed message: unknown field " + firstField(u) + " in " + m.Op}
		}
	}
	if err := m.validate(); err != nil {
		return nil, &DecodeError{ID: m.ID, Reason: err.Error()}
	}
	return m, nil
}

// protoReason shortens a protobuf decoding error for a client.
func protoReason(err error) string {
	s := err.Error()
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// firstField names the first field number in unknown wire data.
func firstField(b []byte) string {
	num, _, n := protowire.ConsumeTag(b)
	if n < 0 {
		return "(unparsable)"
	}
	return fmt.Sprint(int32(num))
}

// delimited encodes m with its length prefix.
func delimited(m *pb.ServerMessage) []byte {
	n := proto.Size(m)
	b := make([]byte, 0, protowire.SizeVarint(uint64(n))+n)
	b = protowire.AppendVarint(b, uint64(n))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		// Only messages built here, of strings and numbers, reach this.
		panic("protocol: " + err.Error())
	}
	return b
}

// Field numbers of ServerMessage.event and EventMessage, for the hand-built
// event message (TestEncodeEventBinaryMatchesGenerated ties them to the
// generated code).
const (
	fieldServerEvent protowire.Number = 3
	fieldEventRoom   protowire.Number = 1
	fieldEventSeq    protowire.Number = 2
	fieldEventEvent  protowire.Number = 3
)

// Field numbers of Event that the edge may fill in when a publisher left
// them out.
const (
	fieldEventType     protowire.Number = 2
	fieldEventPriority protowire.Number = 7
)

// EncodeEventBinary encodes the protobuf event message for ev, stored at
// stream sequence seq in room. raw is ev's protobuf encoding: the stored
// body as published (or ev marshalled, for a JSON publisher). It goes into
// the message byte for byte, without decoding and re-encoding; when the
// publisher left the type or the priority unset, the values the edge
// derived (the ones JSON clients see) are appended after it, which a
// protobuf parser takes over the absent ones (the last value of a field
// wins). It is called at most once per event per room, for the room's
// protobuf subscribers.
func EncodeEventBinary(roomName string, seq uint64, ev *pb.Event, raw []byte) []byte {
	var extra []byte
	if typ := ev.GetType(); typ != "" && lastString(raw, fieldEventType) != typ {
		extra = protowire.AppendTag(extra, fieldEventType, protowire.BytesType)
		extra = protowire.AppendString(extra, typ)
	}
	if ev.GetPriority() == pb.Priority_PRIORITY_UNSPECIFIED {
		extra = protowire.AppendTag(extra, fieldEventPriority, protowire.VarintType)
		extra = protowire.AppendVarint(extra, uint64(events.Priority(ev)))
	}
	event := len(raw) + len(extra)
	// EventMessage{room, seq, event}
	inner := protowire.SizeTag(fieldEventRoom) + protowire.SizeBytes(len(roomName)) +
		protowire.SizeTag(fieldEventSeq) + protowire.SizeVarint(seq) +
		protowire.SizeTag(fieldEventEvent) + protowire.SizeBytes(event)
	// ServerMessage{event: …}
	outer := protowire.SizeTag(fieldServerEvent) + protowire.SizeBytes(inner)
	b := make([]byte, 0, protowire.SizeVarint(uint64(outer))+outer)
	b = protowire.AppendVarint(b, uint64(outer))
	b = protowire.AppendTag(b, fieldServerEvent, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, fieldEventRoom, protowire.BytesType)
	b = protowire.AppendString(b, roomName)
	b = protowire.AppendTag(b, fieldEventSeq, protowire.VarintType)
	b = protowire.AppendVarint(b, seq)
	b = protowire.AppendTag(b, fieldEventEvent, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(event))
	b = append(b, raw...)
	b = append(b, extra...)
	return b
}

// lastString returns the last value of string field num at the top level
// of the protobuf message raw ("" when absent or raw does not parse).
func lastString(raw []byte, num protowire.Number) string {
	var v string
	for len(raw) > 0 {
		n, typ, w := protowire.ConsumeTag(raw)
		if w < 0 {
			return ""
		}
		raw = raw[w:]
		if n == num && typ == protowire.BytesType {
			s, w := protowire.ConsumeString(raw)
			if w < 0 {
				return ""
			}
			v, raw = s, raw[w:]
			continue
		}
		w = protowire.ConsumeFieldValue(n, typ, raw)
		if w < 0 {
			return ""
		}
		raw = raw[w:]
	}
	return v
}

// The encoders of both modes, as methods of Mode: a session encodes its
// control messages with its own mode.

// Welcome encodes a welcome message.
func (m Mode) Welcome(session, node, user string, expiresAt time.Time) []byte {
	if m == JSON {
		return EncodeWelcome(session, node, user, expiresAt)
	}
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Welcome{Welcome: &pb.Welcome{
		Session: session, Node: node, User: user, ExpiresAt: seconds(expiresAt)}}})
}

// OK encodes a successful reply to id.
func (m Mode) OK(id *uint64) []byte {
	if m == JSON {
		return EncodeOK(id)
	}
	return reply(&pb.Reply{Id: id, Ok: true})
}

// Subscribed encodes the reply to a subscribe that continues after seq.
func (m Mode) Subscribed(id *uint64, seq uint64) []byte {
	if m == JSON {
		return EncodeSubscribed(id, seq)
	}
	return reply(&pb.Reply{Id: id, Ok: true, Seq: &seq})
}

// Refreshed encodes the reply to a token refresh.
func (m Mode) Refreshed(id *uint64, expiresAt time.Time) []byte {
	if m == JSON {
		return EncodeRefreshed(id, expiresAt)
	}
	return reply(&pb.Reply{Id: id, Ok: true, ExpiresAt: seconds(expiresAt)})
}

// Error encodes a failed reply to id.
func (m Mode) Error(id *uint64, code, message string) []byte {
	if m == JSON {
		return EncodeError(id, code, message)
	}
	return reply(&pb.Reply{Id: id, Error: &pb.ReplyError{Code: code, Message: message}})
}

// Pong encodes the answer to a ping.
func (m Mode) Pong(id *uint64) []byte {
	if m == JSON {
		return EncodePong(id)
	}
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Pong{Pong: &pb.Pong{Id: id}}})
}

// Reset encodes a reset message.
func (m Mode) Reset(roomName, reason string, seq uint64) []byte {
	if m == JSON {
		return EncodeReset(roomName, reason, seq)
	}
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Reset_{Reset_: &pb.Reset{Room: roomName, Reason: reason, Seq: seq}}})
}

// Unsubscribed encodes an unsubscribed message.
func (m Mode) Unsubscribed(roomName, reason string) []byte {
	if m == JSON {
		return EncodeUnsubscribed(roomName, reason)
	}
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{Room: roomName, Reason: reason}}})
}

// Expiring encodes an expiring message: the token expires in `in` seconds.
func (m Mode) Expiring(in int) []byte {
	if m == JSON {
		return EncodeExpiring(in)
	}
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Expiring{Expiring: &pb.Expiring{In: uint32(max(in, 0))}}})
}

// Event encodes the event message for ev at seq in room. The hub encodes
// each event once per room and mode (hub.Outbound.Bytes); this is for an
// event a session builds itself (a coalesced progress event).
func (m Mode) Event(roomName string, seq uint64, ev *pb.Event) ([]byte, error) {
	if m == JSON {
		return EncodeEvent(roomName, seq, ev)
	}
	raw, err := proto.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return EncodeEventBinary(roomName, seq, ev, raw), nil
}

func reply(r *pb.Reply) []byte {
	return delimited(&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: r}})
}

// seconds is t as a Timestamp of whole seconds, as JSON's RFC 3339 times.
func seconds(t time.Time) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: t.Unix()}
}
