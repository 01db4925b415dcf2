package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

var modes = []client.Protocol{client.JSON, client.Protobuf}

func nextMessage(t *testing.T, c *client.Conn, what string) *client.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("connection ended while waiting for %s: %v", what, c.Err())
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	return nil
}

// TestEveryOpInBothModes runs every client op and sees every server op
// through a real edge, once per wire format, with the same expectations.
func TestEveryOpInBothModes(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := edgetest.StartNATS(t)
			nc, js := n.Connect(t)
			e := edgetest.StartEdge(t, n, func(o *node.Options) {
				o.Session.ExpiringNotice = 2 * time.Second
				o.Auth.Leeway = -1
			})
			tok := edgetest.Token(t, "u1", []string{"tasks:read", "logs:read"}, []string{"p1", "p2", "p3"}, time.Hour)
			c := edgetest.DialWith(t, e, client.Options{Token: tok, Protocol: mode, DeviceID: "dev-1", ClientVersion: "test/1"})

			// welcome
			if w := c.Welcome(); w.User != "u1" || w.Node != "edge-test" || w.Session == "" || time.Until(w.ExpiresAt) < 59*time.Minute {
				t.Fatalf("welcome = %+v", w)
			}

			// subscribe with since: the stored events after it are replayed,
			// then live ones follow.
			var p1 []*pb.Event
			var seqs []uint64
			for i := range 3 {
				ev := events.TaskUpdated(room.Project("p1"), "u7", fmt.Sprint("t", i), &pb.Task{Title: fmt.Sprint("title ", i)}, "title")
				ev.Metadata = map[string]string{"i": fmt.Sprint(i)}
				seqs = append(seqs, edgetest.Publish(t, js, ev).Sequence)
				p1 = append(p1, ev)
			}
			pos, err := c.SubscribeFrom(ctxT(t), "project:p1", &seqs[0])
			if err != nil || pos != seqs[0] {
				t.Fatalf("subscribe since %d: %d, %v", seqs[0], pos, err)
			}
			for i := 1; i < 3; i++ {
				m := edgetest.NextEvent(t, c, 5*time.Second)
				ev := p1[i]
				if m.Room != "project:p1" || m.Seq != seqs[i] || m.Event.ID != ev.Id || m.Event.Type != "task_updated" ||
					m.Event.Priority != "normal" || m.Event.UserID != "u7" || m.Event.Metadata["i"] != fmt.Sprint(i) ||
					!m.Event.Timestamp.Equal(ev.Timestamp.AsTime()) {
					t.Fatalf("replayed event %d: %+v %+v", i, m, m.Event)
				}
				var data struct {
					TaskID  string            `json:"taskId"`
					Changes map[string]string `json:"changes"`
				}
				if err := json.Unmarshal(m.Event.Data, &data); err != nil || data.TaskID != ev.GetTaskUpdated().TaskId || data.Changes["title"] != fmt.Sprint("title ", i) {
					t.Fatalf("data %s: %v", m.Event.Data, err)
				}
				if (mode == client.Protobuf) != (m.Event.Proto != nil) {
					t.Fatalf("Proto set %v in %s mode", m.Event.Proto != nil, mode)
				}
			}

			// subscribe with an event filter.
			if err := c.Subscribe(ctxT(t), "project:p2", "task_deleted"); err != nil {
				t.Fatal(err)
			}
			edgetest.Publish(t, js, events.TaskUpdated(room.Project("p2"), "u7", "t1", &pb.Task{Title: "x"}, "title"))
			del := events.TaskDeleted(room.Project("p2"), "u7", "t1")
			delSeq := edgetest.Publish(t, js, del).Sequence
			if m := edgetest.NextEvent(t, c, 5*time.Second); m.Event.ID != del.Id || m.Seq != delSeq || m.Event.Priority != "high" {
				t.Fatalf("filtered subscription got %+v", m)
			}

			// ping, ack
			if _, err := c.Ping(ctxT(t)); err != nil {
				t.Fatalf("ping: %v", err)
			}
			if err := c.Ack(ctxT(t), "project:p1", seqs[2]); err != nil {
				t.Fatalf("ack: %v", err)
			}
			edgetest.Eventually(t, 5*time.Second, func() bool { return e.Metric(t, "eventedge_acks_total") == 1 }, "the ack counted")

			// error replies
			var re *client.ReplyError
			if err := c.Subscribe(ctxT(t), "project:p9"); !errors.As(err, &re) || re.Code != protocol.CodeForbidden {
				t.Fatalf("subscribe to a foreign project: %v", err)
			}
			if err := c.Subscribe(ctxT(t), "project:p1.x"); !errors.As(err, &re) || re.Code != protocol.CodeBadRequest {
				t.Fatalf("subscribe to an invalid room: %v", err)
			}

			// unsubscribe
			if err := c.Unsubscribe(ctxT(t), "project:p2"); err != nil {
				t.Fatal(err)
			}
			if err := c.Unsubscribe(ctxT(t), "project:p2"); !errors.As(err, &re) || re.Code != protocol.CodeNotFound {
				t.Fatalf("second unsubscribe: %v", err)
			}

			// auth after welcome: a token refresh.
			exp, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", []string{"tasks:read", "logs:read"}, []string{"p1", "p2", "p3"}, 2*time.Hour))
			if err != nil || time.Until(exp) < 119*time.Minute {
				t.Fatalf("refresh: %v, %v", exp, err)
			}

			// reset: a position the stream never reached.
			if _, err := c.SubscribeFrom(ctxT(t), "project:p3", ptr(delSeq+1000)); err != nil {
				t.Fatal(err)
			}
			if m := nextMessage(t, c, "reset"); m.Op != "reset" || m.Room != "project:p3" || m.Reason != "stream_recreated" {
				t.Fatalf("want reset stream_recreated of project:p3, got %+v", m)
			}

			// unsubscribed: a revocation.
			publishRevocation(t, nc, `{"userId":"u1","rooms":["project:p1"]}`)
			if m := nextMessage(t, c, "unsubscribed"); m.Op != "unsubscribed" || m.Room != "project:p1" || m.Reason != "revoked" {
				t.Fatalf("want unsubscribed project:p1 revoked, got %+v", m)
			}

			// expiring: a short token is warned before it expires.
			short := edgetest.DialWith(t, e, client.Options{Token: edgetest.Token(t, "u2", nil, nil, 4*time.Second), Protocol: mode})
			if m := nextMessage(t, short, "expiring"); m.Op != "expiring" || m.In < 1 || m.In > 2 {
				t.Fatalf("want expiring in 1-2 s, got %+v", m)
			}
		})
	}
}

func ptr(v uint64) *uint64 { return &v }

// TestJSONAndProtobufClientsSeeTheSameEvents: in one room, a JSON and a
// protobuf client receive the same events with the same ids, seqs and
// order, whatever the publisher's encoding, including events published
// without type or priority.
func TestJSONAndProtobufClientsSeeTheSameEvents(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	tok := edgetest.Token(t, "u1", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour)
	jc := edgetest.DialWith(t, e, client.Options{Token: tok})
	pc := edgetest.DialWith(t, e, client.Options{Token: tok, Protocol: client.Protobuf})
	// A protobuf client without logs:read sees the same events but those.
	pcNoLogs := edgetest.DialWith(t, e, client.Options{Token: edgetest.Token(t, "u2", []string{"tasks:read"}, []string{"p1"}, time.Hour), Protocol: client.Protobuf})
	for _, c := range []*client.Conn{jc, pc, pcNoLogs} {
		if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
			t.Fatal(err)
		}
	}

	const total = 60
	var published []*pb.Event
	for i := range total {
		var ev *pb.Event
		switch i % 4 {
		case 0:
			ev = events.TaskUpdated(room.Project("p1"), "u7", fmt.Sprint("t", i), &pb.Task{Title: fmt.Sprintf("title %d ✓", i)}, "title")
		case 1:
			ev = events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: fmt.Sprint("t", i), Progress: 0.5,
				Logs: []*pb.LogEntry{{Line: fmt.Sprintf("step %d\n\"quoted\"", i)}}})
			ev.RequiredPermission = "logs:read"
			ev.Priority = pb.Priority_PRIORITY_NORMAL // not coalesced
		case 2:
			ev = events.TaskDeleted(room.Project("p1"), "u7", fmt.Sprint("t", i))
		case 3:
			ev = events.TaskCreated(room.Project("p1"), "u7", &pb.Task{Id: fmt.Sprint("t", i), Title: "new", Labels: []string{"a", "b"}})
		}
		ev.Metadata = map[string]string{"n": fmt.Sprint(i)}
		events.Normalize(ev)
		switch i % 3 {
		case 0: // the Go publisher: protobuf
			edgetest.Publish(t, js, ev)
		case 1: // a JSON publisher
			body, err := events.MarshalJSON(ev)
			if err != nil {
				t.Fatal(err)
			}
			publishRaw(t, js, ev, body, events.ContentTypeJSON)
		case 2: // a protobuf publisher that leaves type and priority to the edge
			bare := proto.Clone(ev).(*pb.Event)
			bare.Type, bare.Priority = "", pb.Priority_PRIORITY_UNSPECIFIED
			body, err := proto.Marshal(bare)
			if err != nil {
				t.Fatal(err)
			}
			publishRaw(t, js, ev, body, events.ContentTypeProtobuf)
			ev = proto.Clone(bare).(*pb.Event)
			ev.Type = events.TypeOf(ev) // as the edge derives them
		}
		published = append(published, ev)
	}

	collect := func(c *client.Conn, n int) []*client.Message {
		var got []*client.Message
		for range n {
			got = append(got, edgetest.NextEvent(t, c, 10*time.Second))
		}
		return got
	}
	js1, pb1 := collect(jc, total), collect(pc, total)
	for i := range total {
		a, b := js1[i], pb1[i]
		if a.Seq != b.Seq || a.Room != b.Room || a.Event.ID != b.Event.ID || a.Event.ID != published[i].Id {
			t.Fatalf("event %d: JSON %d %s %s, protobuf %d %s %s, published %s", i, a.Seq, a.Room, a.Event.ID, b.Seq, b.Room, b.Event.ID, published[i].Id)
		}
		sameEvent(t, i, a.Event, b.Event)
		if i > 0 && a.Seq <= js1[i-1].Seq {
			t.Fatalf("event %d: seq %d after %d", i, a.Seq, js1[i-1].Seq)
		}
		// The protobuf client's decoded event is the published one, with
		// the type and priority the edge derived.
		want := proto.Clone(published[i]).(*pb.Event)
		want.Priority = events.Priority(want)
		if !proto.Equal(b.Event.Proto, want) {
			t.Fatalf("event %d: Proto %v, want %v", i, b.Event.Proto, want)
		}
	}
	// Without logs:read: every event but the progress ones, same seqs.
	var want []uint64
	for _, m := range js1 {
		if m.Event.RequiredPermission == "" {
			want = append(want, m.Seq)
		}
	}
	got := collect(pcNoLogs, len(want))
	for i := range want {
		if got[i].Seq != want[i] {
			t.Fatalf("without logs:read, event %d: seq %d, want %d", i, got[i].Seq, want[i])
		}
	}
	edgetest.NoMessage(t, pcNoLogs, 200*time.Millisecond)
}

// publishRaw publishes body as ev's stored message, as a publisher other
// than events.Publish would.
func publishRaw(t *testing.T, js jetstream.JetStream, ev *pb.Event, body []byte, contentType string) {
	t.Helper()
	r, err := room.Parse(ev.Room)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: r.Subject(), Data: body, Header: nats.Header{}}
	msg.Header.Set(events.HeaderContentType, contentType)
	if _, err := js.PublishMsg(ctxT(t), msg, jetstream.WithMsgID(ev.Id), jetstream.WithExpectStream(events.StreamName)); err != nil {
		t.Fatal(err)
	}
}

// sameEvent compares what two clients received, field by field; the
// payloads as JSON values (protojson's spacing may differ).
func sameEvent(t *testing.T, i int, a, b *client.Event) {
	t.Helper()
	var da, db any
	if err := json.Unmarshal(a.Data, &da); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Data, &db); err != nil {
		t.Fatal(err)
	}
	if a.Type != b.Type || !a.Timestamp.Equal(b.Timestamp) || a.UserID != b.UserID || a.Priority != b.Priority ||
		a.RequiredPermission != b.RequiredPermission || !reflect.DeepEqual(a.Metadata, b.Metadata) || !reflect.DeepEqual(da, db) {
		t.Fatalf("event %d differs:\nJSON     %+v %s\nprotobuf %+v %s", i, *a, a.Data, *b, b.Data)
	}
}

// rawDial opens a WebSocket to e offering subprotocols, without the
// client library's protocol handling.
func rawDial(t *testing.T, e *edgetest.Edge, subprotocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ws, resp, err := websocket.Dial(ctxT(t), e.URL, &websocket.DialOptions{Subprotocols: subprotocols})
	if err == nil {
		t.Cleanup(func() { ws.CloseNow() })
	}
	return ws, resp, err
}

func sendPB(t *testing.T, ws *websocket.Conn, msgs ...*pb.ClientMessage) {
	t.Helper()
	var f []byte
	for _, m := range msgs {
		f = client.AppendDelimited(f, m)
	}
	if err := ws.Write(ctxT(t), websocket.MessageBinary, f); err != nil {
		t.Fatal(err)
	}
}

// readPB reads one frame and decodes its ServerMessages.
func readPB(t *testing.T, ws *websocket.Conn) []*pb.ServerMessage {
	t.Helper()
	typ, data, err := ws.Read(ctxT(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageBinary {
		t.Fatalf("a %v frame in protobuf mode: %q", typ, data)
	}
	var out []*pb.ServerMessage
	for len(data) > 0 {
		n, w := protowire.ConsumeVarint(data)
		if w < 0 || n > uint64(len(data)-w) {
			t.Fatalf("bad framing: %x", data)
		}
		m := &pb.ServerMessage{}
		if err := proto.Unmarshal(data[w:w+int(n)], m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		data = data[w+int(n):]
	}
	return out
}

func authPB(t *testing.T, ws *websocket.Conn, tok string) *pb.Welcome {
	t.Helper()
	sendPB(t, ws, &pb.ClientMessage{Op: &pb.ClientMessage_Auth{Auth: &pb.Auth{Token: tok}}})
	msgs := readPB(t, ws)
	if len(msgs) == 0 || msgs[0].GetWelcome() == nil {
		t.Fatalf("want welcome, got %v", msgs)
	}
	return msgs[0].GetWelcome()
}

// TestSubprotocolNegotiation: no subprotocol or eventedge.v1.json is JSON,
// eventedge.v1.protobuf is protobuf (the client's first known choice wins),
// and a client that offers only unknown ones is refused at the handshake
// with a 400 that says what the node speaks.
func TestSubprotocolNegotiation(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	tok := edgetest.Token(t, "u1", nil, nil, time.Hour)

	for _, tc := range []struct {
		offer  []string
		answer string
		binary bool
	}{
		{nil, "", false},
		{[]string{"eventedge.v1.json"}, "eventedge.v1.json", false},
		{[]string{"eventedge.v1.protobuf"}, "eventedge.v1.protobuf", true},
		{[]string{"eventedge.v1.protobuf", "eventedge.v1.json"}, "eventedge.v1.protobuf", true},
		{[]string{"mqtt", "eventedge.v1.json", "eventedge.v1.protobuf"}, "eventedge.v1.json", false},
	} {
		ws, _, err := rawDial(t, e, tc.offer...)
		if err != nil {
			t.Fatalf("offer %v: %v", tc.offer, err)
		}
		if ws.Subprotocol() != tc.answer {
			t.Fatalf("offer %v: answered %q, want %q", tc.offer, ws.Subprotocol(), tc.answer)
		}
		if tc.binary {
			if w := authPB(t, ws, tok); w.User != "u1" {
				t.Fatalf("welcome %v", w)
			}
		} else {
			if err := ws.Write(ctxT(t), websocket.MessageText, []byte(`{"op":"auth","token":"`+tok+`"}`)); err != nil {
				t.Fatal(err)
			}
			typ, data, err := ws.Read(ctxT(t))
			if err != nil || typ != websocket.MessageText || !bytes.HasPrefix(data, []byte(`{"op":"welcome"`)) {
				t.Fatalf("offer %v: %v %s %v", tc.offer, typ, data, err)
			}
		}
		ws.Close(websocket.StatusNormalClosure, "")
	}

	// Connections by wire format, while one of each is open.
	jc := edgetest.DialWith(t, e, client.Options{Token: tok})
	pc := edgetest.DialWith(t, e, client.Options{Token: tok, Protocol: client.Protobuf})
	edgetest.Eventually(t, 5*time.Second, func() bool {
		return e.Metric(t, `eventedge_connections_by_protocol{protocol="json"}`) == 1 &&
			e.Metric(t, `eventedge_connections_by_protocol{protocol="protobuf"}`) == 1
	}, "one connection of each protocol counted")
	jc.Close()
	pc.Close()
	edgetest.Eventually(t, 5*time.Second, func() bool {
		return e.Metric(t, `eventedge_connections_by_protocol{protocol="json"}`) == 0 &&
			e.Metric(t, `eventedge_connections_by_protocol{protocol="protobuf"}`) == 0
	}, "closed connections uncounted")

	_, resp, err := rawDial(t, e, "eventedge.v2.json", "graphql-ws")
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown subprotocols: %v, %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	want := `unsupported WebSocket subprotocol "eventedge.v2.json", "graphql-ws": this node speaks eventedge.v1.json (the default) and eventedge.v1.protobuf`
	if !strings.Contains(string(body), want) {
		t.Fatalf("body %q, want %q", body, want)
	}
	if got := e.Metric(t, `eventedge_handshakes_rejected_total{reason="subprotocol"}`); got != 1 {
		t.Fatalf("subprotocol refusals counted %v", got)
	}
	if got := e.Metric(t, "eventedge_connections"); got != 0 {
		t.Fatalf("a refused handshake left %v connections", got)
	}
}

// TestMalformedBinaryFrame: a malformed binary frame, a text frame on a
// protobuf connection and a binary frame on a JSON one each close that
// connection with 4400 and a reason; an invalid message with an id is
// answered with bad_request instead; other clients of the room, in both
// modes, go on receiving every event.
func TestMalformedBinaryFrame(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	bystanders := []*client.Conn{
		edgetest.DialWith(t, e, client.Options{Token: tok}),
		edgetest.DialWith(t, e, client.Options{Token: tok, Protocol: client.Protobuf}),
	}
	for _, c := range bystanders {
		if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	publish := func() {
		seqs = append(seqs, edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1")).Sequence)
	}

	// An invalid message that carries an id: a bad_request reply, and the
	// connection stays.
	ws, _, err := rawDial(t, e, protocol.SubprotocolProtobuf)
	if err != nil {
		t.Fatal(err)
	}
	authPB(t, ws, tok)
	sendPB(t, ws, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: ptr(7)}}})
	r := readPB(t, ws)[0].GetReply()
	if r == nil || r.GetId() != 7 || r.Ok || r.Error.GetCode() != protocol.CodeBadRequest || r.Error.GetMessage() != "subscribe: room is required" {
		t.Fatalf("want a bad_request reply to 7, got %v", r)
	}
	// An ack with an id is answered.
	sendPB(t, ws, &pb.ClientMessage{Op: &pb.ClientMessage_Subscribe{Subscribe: &pb.Subscribe{Id: ptr(8), Room: "project:p1"}}},
		&pb.ClientMessage{Op: &pb.ClientMessage_Ack{Ack: &pb.Ack{Id: ptr(9), Room: "project:p1", Seq: ptr(0)}}})
	var replies []uint64
	for len(replies) < 2 {
		for _, m := range readPB(t, ws) {
			if r := m.GetReply(); r != nil && r.Ok {
				replies = append(replies, r.GetId())
			}
		}
	}
	if !reflect.DeepEqual(replies, []uint64{8, 9}) {
		t.Fatalf("replies %v, want 8 then 9", replies)
	}
	publish()

	cases := []struct {
		name   string
		proto  string
		typ    websocket.MessageType
		frame  []byte
		reason string
	}{
		{"length past the end", protocol.SubprotocolProtobuf, websocket.MessageBinary, []byte{0x09, 0x12, 0x00}, "malformed binary frame: message 1: length 9 runs past the frame's end (2 bytes left)"},
		{"not a protobuf", protocol.SubprotocolProtobuf, websocket.MessageBinary, []byte{0x03, 0xff, 0xff, 0xff}, "malformed message: not a ClientMessage protobuf"},
		{"text on protobuf", protocol.SubprotocolProtobuf, websocket.MessageText, []byte(`{"op":"ping"}`), "text frame on an eventedge.v1.protobuf connection"},
		{"binary on JSON", "", websocket.MessageBinary, []byte{0x02, 0x22, 0x00}, "binary frame on a JSON connection"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var offer []string
			if tc.proto != "" {
				offer = []string{tc.proto}
			}
			bad, _, err := rawDial(t, e, offer...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.proto != "" {
				authPB(t, bad, tok)
			} else {
				if err := bad.Write(ctxT(t), websocket.MessageText, []byte(`{"op":"auth","token":"`+tok+`"}`)); err != nil {
					t.Fatal(err)
				}
				if _, _, err := bad.Read(ctxT(t)); err != nil {
					t.Fatal(err)
				}
			}
			if err := bad.Write(ctxT(t), tc.typ, tc.frame); err != nil {
				t.Fatal(err)
			}
			ce := readClose(t, bad)
			if ce.Code != 4400 || !strings.HasPrefix(ce.Reason, tc.reason) {
				t.Fatalf("closed %d %q, want 4400 %q", ce.Code, ce.Reason, tc.reason)
			}
			publish()
		})
	}
	// Every bystander got every event, in order; the raw protobuf client
	// that sent the bad_request is still served too.
	for i, c := range bystanders {
		for _, want := range seqs {
			if m := edgetest.NextEvent(t, c, 5*time.Second); m.Seq != want {
				t.Fatalf("bystander %d: seq %d, want %d", i, m.Seq, want)
			}
		}
	}
	var got []uint64
	for len(got) < len(seqs) {
		for _, m := range readPB(t, ws) {
			if ev := m.GetEvent(); ev != nil {
				got = append(got, ev.Seq)
			}
		}
	}
	if !reflect.DeepEqual(got, seqs) {
		t.Fatalf("raw protobuf client: seqs %v, want %v", got, seqs)
	}
}

// TestProtobufForwardsStoredBytes: a protobuf publisher's event reaches a
// protobuf client byte for byte, with fields the edge does not know.
func TestProtobufForwardsStoredBytes(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.DialWith(t, e, client.Options{Token: edgetest.Token(t, "u1", nil, nil, time.Hour), Protocol: client.Protobuf})
	if err := c.Subscribe(ctxT(t), "user:u1"); err != nil {
		t.Fatal(err)
	}
	ev := events.TaskDeleted(room.User("u1"), "u1", "t1")
	ev.Timestamp = timestamppb.Now()
	events.Normalize(ev)
	body, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	body = protowire.AppendTag(body, 99, protowire.BytesType) // a newer publisher's field
	body = protowire.AppendString(body, "from a newer contract")
	publishRaw(t, js, ev, body, events.ContentTypeProtobuf)

	m := edgetest.NextEvent(t, c, 5*time.Second)
	if !bytes.Contains(m.Raw, body) {
		t.Fatalf("the stored bytes are not in the message: %x", m.Raw)
	}
	if u := m.Event.Proto.ProtoReflect().GetUnknown(); !bytes.Contains(u, []byte("from a newer contract")) {
		t.Fatalf("unknown fields %q", u)
	}
}
