package load

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

func TestScanBinaryFieldNumbers(t *testing.T) {
	num := func(m proto.Message, name string) protowire.Number {
		f := m.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(name))
		if f == nil {
			t.Fatalf("%T has no field %s", m, name)
		}
		return f.Number()
	}
	for _, c := range []struct {
		m    proto.Message
		name string
		want protowire.Number
	}{
		{&pb.ServerMessage{}, "welcome", fieldWelcome},
		{&pb.ServerMessage{}, "reply", fieldReply},
		{&pb.ServerMessage{}, "event", fieldEvent},
		{&pb.ServerMessage{}, "reset", fieldReset},
		{&pb.ServerMessage{}, "pong", fieldPong},
		{&pb.ServerMessage{}, "unsubscribed", fieldUnsubscribed},
		{&pb.Reply{}, "id", fieldReplyID},
		{&pb.Reply{}, "ok", fieldReplyOK},
		{&pb.Reply{}, "error", fieldReplyError},
		{&pb.Reply{}, "seq", fieldReplySeq},
		{&pb.ReplyError{}, "code", fieldErrCode},
		{&pb.ReplyError{}, "message", fieldErrMessage},
		{&pb.EventMessage{}, "room", fieldMsgRoom},
		{&pb.EventMessage{}, "seq", fieldMsgSeq},
		{&pb.EventMessage{}, "event", fieldMsgEvent},
		{&pb.Reset{}, "room", fieldMsgRoom},
		{&pb.Reset{}, "seq", fieldResetSeq},
		{&pb.Unsubscribed{}, "room", fieldMsgRoom},
		{&pb.Pong{}, "id", fieldPongID},
		{&pb.Event{}, "type", fieldEvType},
		{&pb.Event{}, "timestamp", fieldEvTimestamp},
		{&pb.Event{}, "required_permission", fieldEvPermission},
		{&timestamppb.Timestamp{}, "seconds", fieldTSSeconds},
		{&timestamppb.Timestamp{}, "nanos", fieldTSNanos},
	} {
		if got := num(c.m, c.name); got != c.want {
			t.Errorf("%T.%s is %d, the scanner reads %d", c.m, c.name, got, c.want)
		}
	}
}

// lineString prints every field of l, so that nil and empty compare equal.
func lineString(l *Line) string {
	return fmt.Sprintf("op=%d room=%q seq=%d id=%d ok=%v code=%q msg=%q type=%q perm=%q ts=%d",
		l.Op, l.Room, l.Seq, l.ID, l.OK, l.ErrCode, l.ErrMsg, l.Type, l.Permission, l.TS)
}

// delimit is m with its length prefix, as in a binary frame.
func delimit(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return protowire.AppendBytes(nil, b)
}

// binaryEvent is the event message the edge writes for ev
// (protocol.EncodeEventBinary): ev's bytes as published, then, when the
// publisher left the type out, the type appended.
func binaryEvent(roomName string, seq uint64, raw []byte, appendType string) []byte {
	if appendType != "" {
		raw = protowire.AppendTag(raw, fieldEvType, protowire.BytesType)
		raw = protowire.AppendString(raw, appendType)
	}
	var inner []byte
	inner = protowire.AppendTag(inner, fieldMsgRoom, protowire.BytesType)
	inner = protowire.AppendString(inner, roomName)
	inner = protowire.AppendTag(inner, fieldMsgSeq, protowire.VarintType)
	inner = protowire.AppendVarint(inner, seq)
	inner = protowire.AppendTag(inner, fieldMsgEvent, protowire.BytesType)
	inner = protowire.AppendBytes(inner, raw)
	var outer []byte
	outer = protowire.AppendTag(outer, fieldEvent, protowire.BytesType)
	outer = protowire.AppendBytes(outer, inner)
	return protowire.AppendBytes(nil, outer)
}

// scanCase is one server message in both encodings.
type scanCase struct {
	name   string
	binary []byte // length-prefixed
	json   string
}

func scanCases(t testing.TB) []scanCase {
	u64 := func(v uint64) *uint64 { return &v }
	evJSON := func(ev *pb.Event) string {
		b, err := events.MarshalJSON(ev)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rm := room.Project("lg-x")
	ev := events.TaskUpdated(rm, "lg", "t1", &pb.Task{Title: `a "seq":5 title with \ and } and ]`}, "title")
	ev.Timestamp = timestamppb.New(time.Date(2026, 11, 26, 6, 39, 42, 659590394, time.UTC))
	ev.Metadata = map[string]string{MetaSeq: "12", "seq": "99"}
	ev.Priority = pb.Priority_PRIORITY_NORMAL

	// A publisher that left the type out: the edge appends it.
	prog := events.TaskProgress(room.User("u-1"), &pb.TaskProgress{TaskId: "t9", Progress: 0.5, Message: "build 3/7"})
	prog.Timestamp = timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	prog.RequiredPermission = PermLogsRead
	progRaw, err := proto.Marshal(&pb.Event{Id: prog.Id, Timestamp: prog.Timestamp, Room: prog.Room,
		RequiredPermission: prog.RequiredPermission, Payload: prog.Payload})
	if err != nil {
		t.Fatal(err)
	}
	old := events.TaskDeleted(rm, "lg", "t2")
	old.Timestamp = &timestamppb.Timestamp{Seconds: -1, Nanos: 500_000_000} // 1969-12-31T23:59:59.5Z

	evMsg := func(r string, seq uint64, e *pb.Event) []byte {
		return delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Event{Event: &pb.EventMessage{Room: r, Seq: seq, Event: e}}})
	}
	return []scanCase{
		{"event", evMsg(rm.String(), 1207, ev),
			`{"op":"event","room":"project:lg-x","seq":1207,"event":` + evJSON(ev) + `}`},
		{"event with the type appended by the edge", binaryEvent("user:u-1", 9, progRaw, events.TypeTaskProgress),
			`{"op":"event","room":"user:u-1","seq":9,"event":` + evJSON(prog) + `}`},
		{"event before 1970", evMsg(rm.String(), 3, old),
			`{"op":"event","room":"project:lg-x","seq":3,"event":` + evJSON(old) + `}`},
		{"reset", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reset_{Reset_: &pb.Reset{Room: "project:p1", Reason: "history_gone", Seq: 40}}}),
			`{"op":"reset","room":"project:p1","seq":40,"reason":"history_gone"}`},
		{"subscribe reply", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: u64(1), Ok: true, Seq: u64(1206)}}}),
			`{"op":"reply","id":1,"ok":true,"seq":1206}`},
		{"subscribe reply at 0", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: u64(1), Ok: true, Seq: u64(0)}}}),
			`{"op":"reply","id":1,"ok":true,"seq":0}`},
		{"refresh reply", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: u64(7), Ok: true,
			ExpiresAt: &timestamppb.Timestamp{Seconds: 1_800_000_000}}}}),
			`{"op":"reply","id":7,"ok":true,"expiresAt":"2027-01-15T08:00:00Z"}`},
		{"error reply", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: u64(2),
			Error: &pb.ReplyError{Code: "forbidden", Message: "no tasks:read for project:p1"}}}}),
			`{"op":"reply","id":2,"ok":false,"error":{"code":"forbidden","message":"no tasks:read for project:p1"}}`},
		{"welcome", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Welcome{Welcome: &pb.Welcome{Session: "s", Node: "n1", User: "u",
			ExpiresAt: &timestamppb.Timestamp{Seconds: 1_800_000_000}}}}),
			`{"op":"welcome","session":"s","node":"n1","user":"u","expiresAt":"2027-01-15T08:00:00Z"}`},
		{"pong", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Pong{Pong: &pb.Pong{Id: u64(3)}}}), `{"op":"pong","id":3}`},
		{"expiring", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Expiring{Expiring: &pb.Expiring{In: 60}}}), `{"op":"expiring","in":60}`},
		{"unsubscribed", delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{Room: "project:p1", Reason: "forbidden"}}}),
			`{"op":"unsubscribed","room":"project:p1","reason":"forbidden"}`},
	}
}

// TestScanBinaryMatchesJSON: each server message scans, from its protobuf
// form, to the Line ScanLine finds in its JSON form; and all of them in
// one frame, as the edge batches them, scan alike.
func TestScanBinaryMatchesJSON(t *testing.T) {
	var frame []byte
	var want []string
	for _, c := range scanCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var jl, bl Line
			if err := ScanLine([]byte(c.json), &jl); err != nil {
				t.Fatalf("JSON form: %v", err)
			}
			msg, rest, err := nextBinary(c.binary)
			if err != nil || len(rest) != 0 {
				t.Fatalf("framing: %v, %d bytes left", err, len(rest))
			}
			if err := ScanBinary(msg, &bl); err != nil {
				t.Fatal(err)
			}
			if g, w := lineString(&bl), lineString(&jl); g != w {
				t.Fatalf("protobuf %s\nJSON     %s", g, w)
			}
			frame = append(frame, c.binary...)
			want = append(want, lineString(&jl))
		})
	}
	var got []string
	for len(frame) > 0 {
		msg, rest, err := nextBinary(frame)
		if err != nil {
			t.Fatal(err)
		}
		frame = rest
		var l Line
		if err := ScanBinary(msg, &l); err != nil {
			t.Fatal(err)
		}
		got = append(got, lineString(&l))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("one frame:\ngot  %q\nwant %q", got, want)
	}
}

func TestScanBinaryErrorMessage(t *testing.T) {
	msg := `no "tasks:read" for project:p1`
	b := delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Error: &pb.ReplyError{Code: "forbidden", Message: msg}}}})
	var l Line
	if err := ScanBinary(b[1:], &l); err != nil {
		t.Fatal(err)
	}
	if string(l.ErrMsg) != msg || string(l.ErrCode) != "forbidden" || l.OK {
		t.Fatalf("%s", lineString(&l))
	}
}

// TestScanBinaryAsUnmarshal covers what proto.Unmarshal does that a
// straight walk would not: a oneof member replacing another, a message
// field merged, a known field number with another wire type skipped.
func TestScanBinaryAsUnmarshal(t *testing.T) {
	reply := delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: proto.Uint64(4), Ok: true}}})[1:]
	reset := delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Reset_{Reset_: &pb.Reset{Room: "project:p1", Seq: 40}}})[1:]
	ev1 := delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Event{Event: &pb.EventMessage{Room: "project:a", Seq: 1,
		Event: &pb.Event{Type: "task_updated", Timestamp: &timestamppb.Timestamp{Seconds: 10, Nanos: 5}}}}})[1:]
	ev2 := delimit(t, &pb.ServerMessage{Op: &pb.ServerMessage_Event{Event: &pb.EventMessage{Seq: 2,
		Event: &pb.Event{Timestamp: &timestamppb.Timestamp{Seconds: 20}}}}})[1:]
	wrongType := protowire.AppendTag(nil, fieldEvent, protowire.VarintType)
	wrongType = protowire.AppendVarint(wrongType, 7)
	for _, msg := range [][]byte{
		append(append([]byte{}, reply...), reset...),
		append(append([]byte{}, reset...), reply...),
		append(append([]byte{}, ev1...), ev2...),
		append(append([]byte{}, reset...), wrongType...),
		append(protowire.AppendTag(nil, 99, protowire.Fixed64Type), make([]byte, 8)...),
	} {
		checkAsUnmarshal(t, msg)
	}
}

// checkAsUnmarshal fails when proto.Unmarshal accepts msg and ScanBinary
// refuses it or reads it otherwise.
func checkAsUnmarshal(t *testing.T, msg []byte) {
	t.Helper()
	var l Line
	err := ScanBinary(msg, &l)
	var pm pb.ServerMessage
	if proto.Unmarshal(msg, &pm) != nil {
		return
	}
	if err != nil {
		t.Fatalf("%x: proto.Unmarshal accepts it, ScanBinary: %v", msg, err)
	}
	want := lineOf(&pm)
	if g, w := lineString(&l), lineString(&want); g != w {
		t.Fatalf("%x:\nScanBinary     %s\nproto.Unmarshal %s", msg, g, w)
	}
}

// lineOf is the Line of a decoded ServerMessage, as ScanLine would find it
// in the JSON form.
func lineOf(m *pb.ServerMessage) Line {
	var l Line
	switch op := m.Op.(type) {
	case *pb.ServerMessage_Welcome:
		l.Op = OpWelcome
	case *pb.ServerMessage_Reply:
		r := op.Reply
		l.Op, l.ID, l.OK, l.Seq = OpReply, r.GetId(), r.GetOk(), r.GetSeq()
		l.ErrCode, l.ErrMsg = []byte(r.GetError().GetCode()), []byte(r.GetError().GetMessage())
	case *pb.ServerMessage_Event:
		e := op.Event
		l.Op, l.Room, l.Seq = OpEvent, []byte(e.GetRoom()), e.GetSeq()
		l.Type, l.Permission = []byte(e.GetEvent().GetType()), []byte(e.GetEvent().GetRequiredPermission())
		if ts := e.GetEvent().GetTimestamp(); ts != nil {
			l.TS = ts.GetSeconds()*1e9 + int64(ts.GetNanos())
		}
	case *pb.ServerMessage_Reset_:
		l.Op, l.Room, l.Seq = OpReset, []byte(op.Reset_.GetRoom()), op.Reset_.GetSeq()
	case *pb.ServerMessage_Pong:
		l.ID = op.Pong.GetId()
	case *pb.ServerMessage_Unsubscribed:
		l.Room = []byte(op.Unsubscribed.GetRoom())
	}
	return l
}

func TestScanBinaryMalformed(t *testing.T) {
	good := scanCases(t)[0].binary
	_, n := protowire.ConsumeVarint(good)
	msg := good[n:]
	for name, b := range map[string][]byte{
		"truncated":               msg[:len(msg)-1],
		"truncated tag":           {0x80},
		"field number 0":          {0x02, 0x00},
		"length past the end":     {0x1a, 0x05, 0x0a},
		"bad varint":              {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"unterminated group":      {0x0b},
		"truncated inner event":   append([]byte{0x1a, 0x03}, 0x1a, 0x05, 0x0a),
		"truncated timestamp":     {0x1a, 0x06, 0x1a, 0x04, 0x1a, 0x02, 0x08, 0x80},
		"truncated reply error":   {0x12, 0x04, 0x1a, 0x02, 0x0a, 0x05},
		"truncated fixed32 field": {0x1d, 0x01},
	} {
		var l Line
		if err := ScanBinary(b, &l); err == nil {
			t.Errorf("%s (%x): no error", name, b)
		}
	}
	for name, b := range map[string][]byte{
		"prefix past the end": {0x05, 0x1a, 0x00},
		"bad prefix":          {0xff},
	} {
		if _, _, err := nextBinary(b); err == nil {
			t.Errorf("%s (%x): no error", name, b)
		}
	}
}

func TestScanBinaryAllocs(t *testing.T) {
	msg, _, err := nextBinary(scanCases(t)[0].binary)
	if err != nil {
		t.Fatal(err)
	}
	var l Line
	allocs := testing.AllocsPerRun(100, func() { _ = ScanBinary(msg, &l) })
	if allocs != 0 {
		t.Fatalf("%v allocations per message, want 0", allocs)
	}
}

func FuzzScanBinary(f *testing.F) {
	for _, c := range scanCases(f) {
		_, n := protowire.ConsumeVarint(c.binary)
		f.Add(c.binary[n:]) // a message
		f.Add(c.binary)     // a frame of one
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkAsUnmarshal(t, b)
		for len(b) > 0 { // as a frame: never past its end
			msg, rest, err := nextBinary(b)
			if err != nil {
				return
			}
			if len(msg)+len(rest) >= len(b) {
				t.Fatalf("no progress on %x", b)
			}
			var l Line
			_ = ScanBinary(msg, &l)
			b = rest
		}
	})
}
