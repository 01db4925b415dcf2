package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// fakeEdge is a WebSocket server that speaks just enough of the protocol
// for a lean client: welcome after auth, a reply to each subscribe (seq
// 100, or forbidden for a room named "project:no"), then frames from
// send, then the close code closeWith (0: none, wait for the client).
// With binary it speaks the protobuf mode (and takes only that
// subprotocol).
type fakeEdge struct {
	frames    [][]byte
	closeWith websocket.StatusCode
	binary    bool
}

// fakeCmd is a client message as fakeEdge reads it.
type fakeCmd struct {
	Op   string `json:"op"`
	ID   uint64 `json:"id"`
	Room string `json:"room"`
}

func (f *fakeEdge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	opts := &websocket.AcceptOptions{}
	typ := websocket.MessageText
	if f.binary {
		opts.Subprotocols = []string{subprotocolProtobuf}
		typ = websocket.MessageBinary
	}
	ws, err := websocket.Accept(w, r, opts)
	if err != nil {
		return
	}
	defer ws.CloseNow()
	ctx := r.Context()
	// Messages may share frames (the lean client sends auth and its
	// subscribes in one): handle them one by one, in order.
	var cmds []fakeCmd
	next := func() (fakeCmd, bool) {
		for len(cmds) == 0 {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return fakeCmd{}, false
			}
			if cmds, err = f.parse(data); err != nil {
				return fakeCmd{}, false
			}
		}
		c := cmds[0]
		cmds = cmds[1:]
		return c, true
	}
	if _, ok := next(); !ok { // auth
		return
	}
	if ws.Write(ctx, typ, f.enc(`{"op":"welcome","session":"s","node":"n","user":"u"}`,
		&pb.ServerMessage{Op: &pb.ServerMessage_Welcome{Welcome: &pb.Welcome{Session: "s", Node: "n", User: "u"}}})) != nil {
		return
	}
	for {
		c, ok := next()
		if !ok {
			return
		}
		id := strconv.FormatUint(c.ID, 10)
		if c.Room == "project:no" {
			_ = ws.Write(ctx, typ, f.enc(`{"op":"reply","id":`+id+`,"ok":false,"error":{"code":"forbidden","message":"no \"tasks:read\""}}`,
				&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: &c.ID, Error: &pb.ReplyError{Code: "forbidden", Message: `no "tasks:read"`}}}}))
			continue
		}
		// The reply and a first message in one frame, as the edge batches.
		reply := f.enc(`{"op":"reply","id":`+id+`,"ok":true,"seq":100}`,
			&pb.ServerMessage{Op: &pb.ServerMessage_Reply{Reply: &pb.Reply{Id: &c.ID, Ok: true, Seq: proto.Uint64(100)}}})
		expiring := f.enc(`{"op":"expiring","in":60}`, &pb.ServerMessage{Op: &pb.ServerMessage_Expiring{Expiring: &pb.Expiring{In: 60}}})
		if !f.binary {
			reply = append(reply, '\n')
		}
		if ws.Write(ctx, typ, append(reply, expiring...)) != nil {
			return
		}
		if c.Room == "project:last" {
			break
		}
	}
	for _, fr := range f.frames {
		if ws.Write(ctx, typ, fr) != nil {
			return
		}
	}
	if f.closeWith != 0 {
		ws.Close(f.closeWith, "slow consumer")
		return
	}
	_, _, _ = ws.Read(ctx) // until the client closes
}

// parse reads the client messages of one frame.
func (f *fakeEdge) parse(data []byte) ([]fakeCmd, error) {
	var out []fakeCmd
	if !f.binary {
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			var c fakeCmd
			if err := json.Unmarshal(line, &c); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}
	for len(data) > 0 {
		msg, rest, err := nextBinary(data)
		if err != nil {
			return nil, err
		}
		data = rest
		var m pb.ClientMessage
		if err := proto.Unmarshal(msg, &m); err != nil {
			return nil, err
		}
		switch op := m.Op.(type) {
		case *pb.ClientMessage_Auth:
			out = append(out, fakeCmd{Op: "auth"})
		case *pb.ClientMessage_Subscribe:
			out = append(out, fakeCmd{Op: "subscribe", ID: op.Subscribe.GetId(), Room: op.Subscribe.Room})
		default:
			return nil, fmt.Errorf("unexpected %T", op)
		}
	}
	return out, nil
}

// enc is one server message in f's mode: js, or m length-prefixed.
func (f *fakeEdge) enc(js string, m *pb.ServerMessage) []byte {
	if !f.binary {
		return []byte(js)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return protowire.AppendBytes(nil, b)
}

// eventFrame is k event lines of room, seqs from seq on, with a timestamp
// of now.
func eventFrame(room string, seq uint64, k int) []byte {
	var b []byte
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	for j := range k {
		if j > 0 {
			b = append(b, '\n')
		}
		b = append(b, `{"op":"event","room":"`+room+`","seq":`+strconv.FormatUint(seq+uint64(j), 10)+
			`,"event":{"id":"01M8B99NJ36E69F4YTKRXZHPMK","type":"task_updated","timestamp":"`+ts+
			`","priority":"normal","metadata":{"lgseq":"1","seq":"7"},"data":{"task":{"title":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"fields":["title"]}}}`...)
	}
	return b
}

// binaryEventFrame is eventFrame in the protobuf mode.
func binaryEventFrame(room string, seq uint64, k int) []byte {
	ev := &pb.Event{Id: "01M8B99NJ36E69F4YTKRXZHPMK", Type: "task_updated", Timestamp: timestamppb.Now(), Priority: pb.Priority_PRIORITY_NORMAL,
		Metadata: map[string]string{"lgseq": "1", "seq": "7"},
		Payload:  &pb.Event_TaskUpdated{TaskUpdated: &pb.TaskUpdated{Changes: &pb.Task{Title: strings.Repeat("x", 51)}, ChangedFields: []string{"title"}}}}
	raw, err := proto.Marshal(ev)
	if err != nil {
		panic(err)
	}
	var b []byte
	for j := range k {
		b = append(b, binaryEvent(room, seq+uint64(j), raw, "")...)
	}
	return b
}

func wsURL(s *httptest.Server) string { return "ws" + s.URL[len("http"):] }

func TestLeanConn(t *testing.T) {
	for _, binary := range []bool{false, true} {
		t.Run(map[bool]string{false: ProtocolJSON, true: ProtocolProtobuf}[binary], func(t *testing.T) {
			testLeanConn(t, binary)
		})
	}
}

func testLeanConn(t *testing.T, binary bool) {
	fe := &fakeEdge{closeWith: 4008, binary: binary, frames: [][]byte{
		eventFrame("project:a", 101, 3),
		[]byte(`{"op":"reset","room":"project:last","seq":150,"reason":"history_gone"}` + "\n\n" + `not json` + "\n" + `{"op":"pong","id":1}`),
		eventFrame("project:last", 151, 1),
		eventFrame("project:other", 5, 1),
	}}
	if binary {
		reset := fe.enc("", &pb.ServerMessage{Op: &pb.ServerMessage_Reset_{Reset_: &pb.Reset{Room: "project:last", Seq: 150, Reason: "history_gone"}}})
		pong := fe.enc("", &pb.ServerMessage{Op: &pb.ServerMessage_Pong{Pong: &pb.Pong{Id: proto.Uint64(1)}}})
		notProto := []byte{0x02, 0x1a, 0x05} // a message whose event runs past its end
		brokenPrefix := []byte{0x09, 0x1a}   // a prefix past the frame's end: the rest of the frame is lost
		fe.frames = [][]byte{
			binaryEventFrame("project:a", 101, 3),
			append(append(reset, notProto...), pong...),
			append(binaryEventFrame("project:last", 151, 1), brokenPrefix...),
			binaryEventFrame("project:other", 5, 1),
		}
	}
	srv := httptest.NewServer(fe)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, pos, err := dialLean(ctx, wsURL(srv), srv.Client(), "tok", []string{"project:a", "project:last"}, leanOptions{binary: binary})
	if err != nil {
		t.Fatal(err)
	}
	if len(pos) != 2 || pos[0] != 100 || pos[1] != 100 {
		t.Fatalf("positions %v", pos)
	}
	var got []string
	var malformed int
	c.start(&leanHandler{
		msg: func(m *leanMsg) {
			got = append(got, m.RoomName+" "+strconv.FormatUint(m.Seq, 10)+" "+map[Op]string{OpEvent: "event", OpReset: "reset"}[m.Op])
			if m.Op == OpEvent && (m.TS == 0 || m.Now.UnixNano()-m.TS < 0 || m.Now.UnixNano()-m.TS > int64(time.Minute)) {
				t.Errorf("event %d: timestamp %d, now %v", m.Seq, m.TS, m.Now)
			}
		},
		malformed: func([]byte, error) { malformed++ },
	})
	<-c.Done()
	want := []string{"project:a 101 event", "project:a 102 event", "project:a 103 event", "project:last 150 reset", "project:last 151 event", "project:other 5 event"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if wantMalformed := map[bool]int{false: 1, true: 2}[binary]; malformed != wantMalformed {
		t.Errorf("malformed %d, want %d", malformed, wantMalformed)
	}
	if cls := classifyClose(c.Err()); cls != "read: close 4008" {
		t.Errorf("close: %q (%v)", cls, c.Err())
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close after the server's close: %v", err)
	}

	// A refused subscribe is a *client.ReplyError, as the Go client's.
	_, _, err = dialLean(ctx, wsURL(srv), srv.Client(), "tok", []string{"project:no"}, leanOptions{binary: binary})
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Code != "forbidden" || re.Message != `no "tasks:read"` || classify(err) != "subscribe: forbidden" {
		t.Errorf("refused subscribe: %v (%s)", err, classify(err))
	}
}

// TestLeanConnNoProtobufMode: a server that does not take the protobuf
// subprotocol (an edge without the mode) is refused at once, with a
// reason, instead of being sent binary frames it would not understand.
func TestLeanConnNoProtobufMode(t *testing.T) {
	srv := httptest.NewServer(&fakeEdge{})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := dialLean(ctx, wsURL(srv), srv.Client(), "tok", []string{"project:a"}, leanOptions{binary: true})
	if err == nil || !strings.Contains(err.Error(), "no protobuf mode") || classify(err) != "dial: other" {
		t.Fatalf("err %v (%s)", err, classify(err))
	}
}

// BenchmarkLeanReceive is the load generator's own cost per message on
// the lean path over real loopback WebSockets: frames of 8 events (the
// edge batches under load), read, scanned and recorded as broadcast does.
// ns/op is per message: at 2 µs one core takes 500k messages/s.
func BenchmarkLeanReceive(b *testing.B) { benchmarkLeanReceive(b, false) }

// BenchmarkLeanReceiveBinary is BenchmarkLeanReceive in the protobuf mode.
func BenchmarkLeanReceiveBinary(b *testing.B) { benchmarkLeanReceive(b, true) }

func benchmarkLeanReceive(b *testing.B, binary bool) {
	const perFrame = 8
	frames := make([][]byte, b.N/perFrame+1)
	for i := range frames {
		if binary {
			frames[i] = binaryEventFrame("project:a", uint64(101+i*perFrame), perFrame)
		} else {
			frames[i] = eventFrame("project:a", uint64(101+i*perFrame), perFrame)
		}
	}
	srv := httptest.NewServer(&fakeEdge{frames: frames, closeWith: websocket.StatusNormalClosure, binary: binary})
	defer srv.Close()
	c, _, err := dialLean(context.Background(), wsURL(srv), srv.Client(), "tok", []string{"project:a", "project:last"}, leanOptions{binary: binary})
	if err != nil {
		b.Fatal(err)
	}
	r := &runner{}
	var n atomic.Int64
	h := r.leanRead(deliverycheck.NewReceived("bench"), new(hist.Histogram), func(*leanMsg) { n.Add(1) })
	b.ReportAllocs()
	b.ResetTimer()
	c.start(h)
	<-c.Done()
	b.StopTimer()
	if got := n.Load(); got < int64(b.N) {
		b.Fatalf("received %d of %d (%v)", got, b.N, c.Err())
	}
	c.Close()
}

// BenchmarkGoClientReceive is BenchmarkLeanReceive through the Go client
// (client.Conn and runner.read), the path the scenarios used before.
func BenchmarkGoClientReceive(b *testing.B) {
	const perFrame = 8
	frames := make([][]byte, b.N/perFrame+1)
	for i := range frames {
		frames[i] = eventFrame("project:a", uint64(101+i*perFrame), perFrame)
	}
	srv := httptest.NewServer(&fakeEdge{frames: frames, closeWith: websocket.StatusNormalClosure})
	defer srv.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, wsURL(srv), client.Options{Token: "tok", HTTPClient: srv.Client(), MessageBuffer: messageBuffer})
	if err != nil {
		b.Fatal(err)
	}
	for _, rm := range []string{"project:a", "project:last"} {
		if _, err := c.SubscribeFrom(ctx, rm, nil); err != nil {
			b.Fatal(err)
		}
	}
	r := &runner{}
	var n atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	r.read(c, deliverycheck.NewReceived("bench"), new(hist.Histogram), func() { n.Add(1) })
	b.StopTimer()
	if got := n.Load(); got < int64(b.N) {
		b.Fatalf("received %d of %d (%v)", got, b.N, c.Err())
	}
	c.Close()
}
