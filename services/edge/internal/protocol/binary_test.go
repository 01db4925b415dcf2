package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// frame length-delimits each message, as a protobuf-mode frame carries them.
func frame(t testing.TB, msgs ...proto.Message) []byte {
	t.Helper()
	var b []byte
	for _, m := range msgs {
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		b = protowire.AppendVarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	return b
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeBinaryMirrorsJSON: every op decodes from protobuf to exactly
// what its JSON twin decodes to.
func TestDecodeBinaryMirrorsJSON(t *testing.T) {
	cases := []struct {
		name string
		msg  *pb.ClientMessage
		json string
	}{
		{"auth", &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Token: "t.o.k", DeviceId: "dev-1", ClientVersion: "web/1.2.3"}}},
			`{"op":"auth","token":"t.o.k","deviceId":"dev-1","clientVersion":"web/1.2.3"}`},
		{"auth with id", &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Id: id(3), Token: "x"}}}, `{"op":"auth","id":3,"token":"x"}`},
		{"subscribe", &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(1), Room: "project:p1", Events: []string{"task_created", "task_updated"}}}},
			`{"op":"subscribe","id":1,"room":"project:p1","events":["task_created","task_updated"]}`},
		{"subscribe id 0 since 0", &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(0), Room: "global", Since: id(0)}}},
			`{"op":"subscribe","id":0,"room":"global","since":0}`},
		{"subscribe since", &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(18446744073709551615), Room: "user:u1", Since: id(1207)}}},
			`{"op":"subscribe","id":18446744073709551615,"room":"user:u1","since":1207}`},
		{"unsubscribe", &pb.ClientMessage{Op: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Id: id(2), Room: "user:alice"}}},
			`{"op":"unsubscribe","id":2,"room":"user:alice"}`},
		{"ping", &pb.ClientMessage{Op: &pb.ClientMessage_Ping{Ping: &pb.Ping{}}}, `{"op":"ping"}`},
		{"ping with id", &pb.ClientMessage{Op: &pb.ClientMessage_Ping{Ping: &pb.Ping{Id: id(9)}}}, `{"op":"ping","id":9}`},
		{"ack", &pb.ClientMessage{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Room: "project:p1", Seq: id(1209)}}}, `{"op":"ack","room":"project:p1","seq":1209}`},
		{"ack with id", &pb.ClientMessage{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Id: id(8), Room: "project:p1", Seq: id(0)}}}, `{"op":"ack","id":8,"room":"project:p1","seq":0}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeBinary(marshal(t, tc.msg))
			if err != nil {
				t.Fatalf("DecodeBinary: %v", err)
			}
			want, err := Decode([]byte(tc.json))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("protobuf decodes to %+v, JSON to %+v", got, want)
			}
		})
	}
}

func TestDecodeBinaryErrors(t *testing.T) {
	unknownTop := marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Ping{Ping: &pb.Ping{}}})
	unknownTop = protowire.AppendTag(unknownTop, 9, protowire.VarintType)
	unknownTop = protowire.AppendVarint(unknownTop, 1)
	// A subscribe with id 4 and an unknown field 7 inside it.
	sub := marshal(t, &pb.Subscribe{Id: id(4), Room: "global"})
	sub = protowire.AppendTag(sub, 7, protowire.BytesType)
	sub = protowire.AppendString(sub, "x")
	var unknownInner []byte
	unknownInner = protowire.AppendTag(unknownInner, 2, protowire.BytesType)
	unknownInner = protowire.AppendBytes(unknownInner, sub)

	cases := []struct {
		name    string
		in      []byte
		wantID  *uint64
		wantErr string
	}{
		{"empty: no op", nil, nil, "op is required"},
		{"garbage", []byte{0xff, 0xff, 0xff}, nil, "not a ClientMessage protobuf"},
		{"truncated", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Token: "abcdef"}}})[:5], nil, "not a ClientMessage protobuf"},
		{"unknown top-level field", unknownTop, nil, "unknown field 9 in ClientMessage"},
		{"unknown field in subscribe keeps the id", unknownInner, id(4), "unknown field 7 in subscribe"},
		{"auth without token", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Id: id(5)}}}), id(5), "auth: token is required"},
		{"subscribe without id", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Room: "global"}}}), nil, "subscribe: id is required"},
		{"subscribe without room", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(6)}}}), id(6), "subscribe: room is required"},
		{"too many event types", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(6), Room: "global", Events: make([]string, 17)}}}), id(6), "at most 16"},
		{"ack without seq", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Room: "global"}}}), nil, "ack: seq is required"},
		{"bad deviceId", marshal(t, &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Token: "x", DeviceId: "a b"}}}), nil, "deviceId must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeBinary(tc.in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("DecodeBinary = %+v, %v; want a *DecodeError", m, err)
			}
			if !strings.Contains(de.Reason, tc.wantErr) {
				t.Fatalf("reason %q, want it to contain %q", de.Reason, tc.wantErr)
			}
			if !reflect.DeepEqual(de.ID, tc.wantID) {
				t.Fatalf("id %v, want %v", de.ID, tc.wantID)
			}
		})
	}
}

func TestSplitBinary(t *testing.T) {
	ping := &pb.ClientMessage{Op: &pb.ClientMessage_Ping{Ping: &pb.Ping{Id: id(1)}}}
	ack := &pb.ClientMessage{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Room: "global", Seq: id(2)}}}
	f := frame(t, ping, ack, ping)
	var got [][]byte
	if err := SplitBinary(f, func(m []byte) bool { got = append(got, m); return true }); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{marshal(t, ping), marshal(t, ack), marshal(t, ping)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("messages %x, want %x", got, want)
	}

	// fn returning false stops the walk.
	n := 0
	if err := SplitBinary(f, func([]byte) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("stopped after %d messages, %v", n, err)
	}
	// An empty frame holds no message.
	if err := SplitBinary(nil, func([]byte) bool { t.Fatal("called"); return true }); err != nil {
		t.Fatal(err)
	}

	// Broken framing refuses the whole frame: no message is handed out.
	for name, bad := range map[string][]byte{
		"length past the end":        append(frame(t, ping), 0x05, 0x01),
		"unterminated varint":        append(frame(t, ping), 0x80),
		"varint too long":            bytes.Repeat([]byte{0xff}, 11),
		"huge length":                protowire.AppendVarint(nil, 1<<62),
		"second message cut short":   frame(t, ping, ack)[:len(frame(t, ping, ack))-1],
		"length prefix of 2, 1 byte": {0x02, 0x08},
	} {
		err := SplitBinary(bad, func([]byte) bool { t.Fatalf("%s: a message was handed out", name); return true })
		if err == nil || !strings.HasPrefix(err.Error(), "malformed binary frame: message ") {
			t.Fatalf("%s: error %v", name, err)
		}
	}
}

func testEvent() *pb.Event {
	ev := events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", ExecutionId: "x1", Progress: 0.5, Message: "line one\nline two"})
	ev.RequiredPermission = "logs:read"
	ev.Priority = pb.Priority_PRIORITY_LOW
	ev.Metadata = map[string]string{"k": "v"}
	ev.Timestamp = timestamppb.New(time.Date(2026, 11, 26, 5, 3, 13, 975000000, time.UTC))
	events.Normalize(ev)
	return ev
}

// TestEncodeEventBinaryMatchesGenerated: the hand-built event message
// parses with the generated code into exactly the message it stands for,
// with the publisher's bytes as the event, byte for byte.
func TestEncodeEventBinaryMatchesGenerated(t *testing.T) {
	ev := testEvent()
	raw := marshal(t, ev)
	b := EncodeEventBinary("project:p1", 1207, ev, raw)

	msg, rest, err := splitOne(b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("framing: %v, %d bytes left", err, len(rest))
	}
	var got pb.ServerMessage
	if err := proto.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	want := &pb.ServerMessage{Op: &pb.ServerMessage_Event{Event: &pb.EventMessage{Room: "project:p1", Seq: 1207, Event: ev}}}
	if !proto.Equal(&got, want) {
		t.Fatalf("got %v\nwant %v", &got, want)
	}
	if !bytes.Contains(b, raw) {
		t.Fatal("the stored event bytes are not in the message as they are")
	}
	// The same as the generated encoder's output, to the byte (field order
	// and sizes are canonical).
	if w := frame(t, want); !bytes.Equal(b, w) {
		t.Fatalf("hand-built %x\ngenerated  %x", b, w)
	}
}

// TestEncodeEventBinaryKeepsUnknownFields: a newer publisher's fields reach
// protobuf clients, since the stored bytes are forwarded.
func TestEncodeEventBinaryKeepsUnknownFields(t *testing.T) {
	ev := testEvent()
	raw := marshal(t, ev)
	raw = protowire.AppendTag(raw, 99, protowire.BytesType)
	raw = protowire.AppendString(raw, "from the future")
	b := EncodeEventBinary("project:p1", 3, ev, raw)
	msg, _, _ := splitOne(b)
	var got pb.ServerMessage
	if err := proto.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	u := got.GetEvent().GetEvent().ProtoReflect().GetUnknown()
	if !bytes.Contains(u, []byte("from the future")) {
		t.Fatalf("unknown fields %q", u)
	}
}

// TestEncodeEventBinaryDerivesTypeAndPriority: an event published without
// type or priority reaches protobuf clients with the values JSON clients
// see, appended after the stored bytes.
func TestEncodeEventBinaryDerivesTypeAndPriority(t *testing.T) {
	pubd := testEvent()
	pubd.Type, pubd.Priority = "", pb.Priority_PRIORITY_UNSPECIFIED
	raw := marshal(t, pubd)
	ev, err := events.Decode(raw, events.ContentTypeProtobuf) // as the hub decodes it: type derived
	if err != nil {
		t.Fatal(err)
	}
	b := EncodeEventBinary("project:p1", 3, ev, raw)
	if !bytes.Contains(b, raw) {
		t.Fatal("stored bytes not forwarded as they are")
	}
	msg, _, _ := splitOne(b)
	var got pb.ServerMessage
	if err := proto.Unmarshal(msg, &got); err != nil {
		t.Fatal(err)
	}
	e := got.GetEvent().GetEvent()
	if e.Type != "task_progress" || e.Priority != pb.Priority_PRIORITY_LOW {
		t.Fatalf("type %q priority %v, want task_progress and the default LOW", e.Type, e.Priority)
	}
	js, err := EncodeEvent("project:p1", 3, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(js, []byte(`"type":"task_progress"`)) || !bytes.Contains(js, []byte(`"priority":"low"`)) {
		t.Fatalf("JSON %s", js)
	}
	// A set type and priority are not repeated.
	full := testEvent()
	full.Priority = pb.Priority_PRIORITY_HIGH
	raw = marshal(t, full)
	if b := EncodeEventBinary("project:p1", 3, full, raw); len(b) != len(frame(t, &pb.ServerMessage{Op: &pb.ServerMessage_Event{Event: &pb.EventMessage{Room: "project:p1", Seq: 3, Event: full}}})) {
		t.Fatal("fields appended to an event that had them")
	}
}

func splitOne(b []byte) (msg, rest []byte, err error) {
	err = SplitBinary(b, func(m []byte) bool { msg = m; return false })
	if err == nil {
		n, w := protowire.ConsumeVarint(b)
		rest = b[w+int(n):]
	}
	return msg, rest, err
}

// TestModeEncoders: each control message in protobuf mode carries what its
// JSON twin carries.
func TestModeEncoders(t *testing.T) {
	exp := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	seq := uint64(42)
	cases := []struct {
		name string
		enc  func(Mode) []byte
		want *pb.ServerMessage
	}{
		{"welcome", func(m Mode) []byte { return m.Welcome("s1", "edge-1", "u1", exp) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Welcome{Welcome: &pb.Welcome{Session: "s1", Node: "edge-1", User: "u1", ExpiresAt: timestamppb.New(exp)}}}},
		{"ok", func(m Mode) []byte { return m.OK(id(7)) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: id(7), Ok: true}}}},
		{"subscribed", func(m Mode) []byte { return m.Subscribed(id(0), seq) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: id(0), Ok: true, Seq: &seq}}}},
		{"refreshed", func(m Mode) []byte { return m.Refreshed(id(3), exp) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: id(3), Ok: true, ExpiresAt: timestamppb.New(exp)}}}},
		{"error", func(m Mode) []byte { return m.Error(id(4), CodeForbidden, "not a member of project p9") },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: id(4), Error: &pb.ReplyError{Code: CodeForbidden, Message: "not a member of project p9"}}}}},
		{"error without id", func(m Mode) []byte { return m.Error(nil, CodeBadRequest, "x") },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Error: &pb.ReplyError{Code: CodeBadRequest, Message: "x"}}}}},
		{"pong", func(m Mode) []byte { return m.Pong(id(5)) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Pong{Pong: &pb.Pong{Id: id(5)}}}},
		{"pong without id", func(m Mode) []byte { return m.Pong(nil) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Pong{Pong: &pb.Pong{}}}},
		{"reset", func(m Mode) []byte { return m.Reset("project:p1", "retention", 99) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Reset_{Reset_: &pb.Reset{Room: "project:p1", Reason: "retention", Seq: 99}}}},
		{"unsubscribed", func(m Mode) []byte { return m.Unsubscribed("project:p1", "revoked") },
			&pb.ServerMessage{Op: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{Room: "project:p1", Reason: "revoked"}}}},
		{"expiring", func(m Mode) []byte { return m.Expiring(60) },
			&pb.ServerMessage{Op: &pb.ServerMessage_Expiring{Expiring: &pb.Expiring{In: 60}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.enc(Protobuf)
			msg, rest, err := splitOne(b)
			if err != nil || len(rest) != 0 {
				t.Fatalf("framing: %v, %d bytes left", err, len(rest))
			}
			var got pb.ServerMessage
			if err := proto.Unmarshal(msg, &got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, tc.want) {
				t.Fatalf("got %v, want %v", &got, tc.want)
			}
			// The JSON form holds the same values: compare through
			// protojson's view of the protobuf message.
			var fromJSON map[string]any
			if err := json.Unmarshal(tc.enc(JSON), &fromJSON); err != nil {
				t.Fatal(err)
			}
			if op := fromJSON["op"]; op != jsonOp(tc.want) {
				t.Fatalf("JSON op %v, protobuf op %s", op, jsonOp(tc.want))
			}
		})
	}
}

func jsonOp(m *pb.ServerMessage) string {
	switch m.Op.(type) {
	case *pb.ServerMessage_Welcome:
		return OpWelcome
	case *pb.ServerMessage_Reply:
		return OpReply
	case *pb.ServerMessage_Event:
		return OpEvent
	case *pb.ServerMessage_Reset_:
		return OpReset
	case *pb.ServerMessage_Pong:
		return OpPong
	case *pb.ServerMessage_Expiring:
		return OpExpiring
	case *pb.ServerMessage_Unsubscribed:
		return OpUnsubscribed
	}
	return ""
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		name    string
		offered []string // header values
		mode    Mode
		answer  string
		wantErr string
	}{
		{"none: JSON, no answer", nil, JSON, "", ""},
		{"json", []string{"eventedge.v1.json"}, JSON, "eventedge.v1.json", ""},
		{"protobuf", []string{"eventedge.v1.protobuf"}, Protobuf, "eventedge.v1.protobuf", ""},
		{"client's first known wins", []string{"eventedge.v1.protobuf, eventedge.v1.json"}, Protobuf, "eventedge.v1.protobuf", ""},
		{"unknown ones skipped", []string{"mqtt", "eventedge.v1.json"}, JSON, "eventedge.v1.json", ""},
		{"only unknown", []string{"eventedge.v2.json"}, JSON, "", `unsupported WebSocket subprotocol "eventedge.v2.json": this node speaks eventedge.v1.json (the default) and eventedge.v1.protobuf`},
		{"names are case-sensitive", []string{"EVENTEDGE.V1.JSON"}, JSON, "", "unsupported WebSocket subprotocol"},
		{"many unknown are summarised", []string{"a, b, c, d, e"}, JSON, "", `"a", "b", "c" (and 2 more)`},
		{"empty tokens ignored", []string{" , "}, JSON, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tc.offered {
				h.Add("Sec-WebSocket-Protocol", v)
			}
			mode, answer, err := Negotiate(h)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || mode != tc.mode || answer != tc.answer {
				t.Fatalf("Negotiate = %v, %q, %v; want %v, %q", mode, answer, err, tc.mode, tc.answer)
			}
		})
	}
	// A long hostile name is clipped and quoted in the error.
	h := http.Header{"Sec-Websocket-Protocol": {strings.Repeat("x", 500) + "\r\n"}}
	_, _, err := Negotiate(h)
	if err == nil || len(err.Error()) > 200 || strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("error %q", err)
	}
}

func TestModeNames(t *testing.T) {
	if JSON.String() != "json" || Protobuf.String() != "protobuf" || JSON.Subprotocol() != SubprotocolJSON || Protobuf.Subprotocol() != SubprotocolProtobuf {
		t.Fatal("mode names")
	}
}

func FuzzDecodeBinary(f *testing.F) {
	for _, m := range []*pb.ClientMessage{
		{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Token: "t", DeviceId: "d", ClientVersion: "v"}}},
		{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(1), Room: "project:p1", Events: []string{"task_created"}, Since: id(3)}}},
		{Op: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Id: id(2), Room: "global"}}},
		{Op: &pb.ClientMessage_Ping{Ping: &pb.Ping{Id: id(3)}}},
		{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Room: "user:u1", Seq: id(4)}}},
	} {
		f.Add(marshal(f, m))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeBinary(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %v is not a *DecodeError with a reason", err)
			}
			return
		}
		if m.validate() != nil {
			t.Fatalf("accepted an invalid message %+v", m)
		}
	})
}

func FuzzSplitBinary(f *testing.F) {
	f.Add([]byte{0x02, 0x22, 0x00})
	f.Add([]byte{0x80})
	f.Add([]byte{0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		err := SplitBinary(data, func(m []byte) bool { total += len(m); return true })
		if err == nil && total > len(data) {
			t.Fatalf("messages of %d bytes from a frame of %d", total, len(data))
		}
		if err != nil && total != 0 {
			t.Fatal("a message was handed out of a refused frame")
		}
	})
}

func BenchmarkEncodeEventBinary(b *testing.B) {
	ev := testEvent()
	raw := marshal(b, ev)
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeEventBinary("project:p1", 1207, ev, raw)
	}
}

func BenchmarkDecodeBinarySubscribe(b *testing.B) {
	data := marshal(b, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: id(1), Room: "project:p1", Events: []string{"task_created", "task_updated"}}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}
