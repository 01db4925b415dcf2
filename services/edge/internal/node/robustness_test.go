package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
)

// TestNATSRestartKeepsClients: NATS goes away while clients are connected;
// the edge keeps them, resubscribes when NATS is back, and later events
// arrive.
func TestNATSRestartKeepsClients(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	first := events.TaskDeleted(room.Project("p1"), "u1", "t1")
	edgetest.Publish(t, js, first)
	if m := edgetest.NextEvent(t, c, 5*time.Second); m.Event.ID != first.Id {
		t.Fatalf("got %s", m.Raw)
	}

	n.Stop()
	edgetest.Eventually(t, 10*time.Second, func() bool { return e.Ready() != nil }, "edge not ready while NATS is down")
	code, body := edgetest.Get(t, e.AdminURL+"/readyz")
	if code != 503 || !strings.Contains(body, "NATS") {
		t.Fatalf("/readyz while NATS is down: %d %q", code, body)
	}
	// The client is still connected and served.
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("client lost while NATS was down: %v", err)
	}

	n.Start()
	edgetest.Eventually(t, 15*time.Second, func() bool { return e.Ready() == nil }, "edge ready after NATS restart")
	later := events.TaskDeleted(room.Project("p1"), "u1", "t2")
	// The publisher's own connection reconnects too; retry until it does.
	edgetest.Eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := events.Publish(ctx, js, later)
		return err == nil
	}, "publish after NATS restart")
	if m := edgetest.NextEvent(t, c, 10*time.Second); m.Event.ID != later.Id {
		t.Fatalf("after restart got %s", m.Raw)
	}
}

// rawConn authenticates a plain WebSocket connection, for sending frames
// the client package would never send.
func rawConn(t *testing.T, e *edgetest.Edge) *websocket.Conn {
	t.Helper()
	ctx := ctxT(t)
	ws, _, err := websocket.Dial(ctx, e.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"op":"auth","token":"`+tok+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || !strings.Contains(string(msg), `"welcome"`) {
		t.Fatalf("auth: %s %v", msg, err)
	}
	return ws
}

func readMsg(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_, msg, err := ws.Read(ctxT(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(msg)
}

func readClose(t *testing.T, ws *websocket.Conn) websocket.CloseError {
	t.Helper()
	for {
		_, msg, err := ws.Read(ctxT(t))
		if err == nil {
			t.Logf("before close: %s", msg)
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("read error %v; want a close frame", err)
		}
		return ce
	}
}

// TestBadInputIsAnsweredAndIsolated: malformed messages, unknown ops and
// oversize frames get the specified reply or close, and a bystander in the
// same room keeps receiving events.
func TestBadInputIsAnsweredAndIsolated(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	bystander := edgetest.Dial(t, e, edgetest.Token(t, "b", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := bystander.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}

	replies := []struct{ send, want string }{
		{`{"op":"frobnicate","id":1}`, `{"op":"reply","id":1,"ok":false,"error":{"code":"bad_request","message":"unknown op \"frobnicate\""}}`},
		{`{"op":"subscribe","id":2,"room":"project:p1","colour":"red"}`, `"id":2,"ok":false,"error":{"code":"bad_request","message":"malformed message: json: unknown field \"colour\""}`},
		{`{"op":"subscribe","id":3}`, `"id":3,"ok":false,"error":{"code":"bad_request","message":"subscribe: room is required"}`},
		{`{"op":"subscribe","id":4,"room":"project:p1.>"}`, `"id":4,"ok":false,"error":{"code":"bad_request"`},
		{`{"op":"unsubscribe","id":5,"room":"project:p1"}`, `"id":5,"ok":false,"error":{"code":"not_found"`},
		{`{"op":"ping","id":6}`, `{"op":"pong","id":6}`},
	}
	ws := rawConn(t, e)
	for _, r := range replies {
		if err := ws.Write(ctxT(t), websocket.MessageText, []byte(r.send)); err != nil {
			t.Fatal(err)
		}
		if got := readMsg(t, ws); !strings.Contains(got, r.want) {
			t.Fatalf("sent %s\n got %s\nwant %s", r.send, got, r.want)
		}
	}

	closes := []struct {
		name   string
		typ    websocket.MessageType
		send   string
		code   websocket.StatusCode
		reason string
	}{
		{"invalid JSON without id", websocket.MessageText, `{"op":`, 4400, "invalid JSON"},
		{"unknown op without id", websocket.MessageText, `{"op":"frobnicate"}`, 4400, "unknown op"},
		{"binary frame", websocket.MessageBinary, "\x00\x01", 4400, "binary"},
		{"oversize frame", websocket.MessageText, `{"op":"ping","pad":"` + strings.Repeat("x", 70<<10) + `"}`, 1009, ""},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			ws := rawConn(t, e)
			if err := ws.Write(ctxT(t), tc.typ, []byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			ce := readClose(t, ws)
			if ce.Code != tc.code || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("close %d %q; want %d containing %q", ce.Code, ce.Reason, tc.code, tc.reason)
			}
		})
	}

	// The bystander saw none of it.
	ev := events.TaskCreated(room.Project("p1"), "u1", &pb.Task{Id: "t1"})
	edgetest.Publish(t, js, ev)
	if m := edgetest.NextEvent(t, bystander, 5*time.Second); m.Event.ID != ev.Id {
		t.Fatalf("bystander got %s", m.Raw)
	}
	if _, err := bystander.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestCommandsBeforeAuth: commands before auth are refused without closing.
func TestCommandsBeforeAuth(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	ws, _, err := websocket.Dial(ctxT(t), e.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctxT(t), websocket.MessageText, []byte(`{"op":"subscribe","id":1,"room":"global"}`)); err != nil {
		t.Fatal(err)
	}
	if got := readMsg(t, ws); !strings.Contains(got, `"code":"unauthorized"`) {
		t.Fatalf("got %s", got)
	}
}

// TestOriginCheck: a page from a foreign origin cannot open a connection
// (cross-site WebSocket hijacking); the same host and configured origins can.
func TestOriginCheck(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.AllowedOrigins = []string{"dash.example.com"} })
	tok := edgetest.Token(t, "u1", nil, nil, time.Hour)
	dial := func(origin string) error {
		c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: tok, Header: map[string][]string{"Origin": {origin}}})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("https://evil.example.net"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: %v; want HTTP 403", err)
	}
	if err := dial("https://dash.example.com"); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	if err := dial("http://" + e.Addr().String()); err != nil {
		t.Fatalf("same host: %v", err)
	}
}

// TestAdminEndpoints: /healthz, /readyz and /metrics on the admin listener.
func TestAdminEndpoints(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1"))
	edgetest.NextEvent(t, c, 5*time.Second)
	_ = dialErr(t, e.URL, client.Options{Token: "bad"})

	if code, body := edgetest.Get(t, e.AdminURL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz %d %q", code, body)
	}
	if code, body := edgetest.Get(t, e.AdminURL+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d %q", code, body)
	}
	var body string
	edgetest.Eventually(t, 5*time.Second, func() bool {
		_, body = edgetest.Get(t, e.AdminURL+"/metrics")
		return strings.Contains(body, `eventedge_delivery_latency_seconds_count{path="live"} 1`) &&
			strings.Contains(body, "eventedge_connections 1\n") // the refused client's session has ended
	}, "delivery latency observed once, one connection")
	for _, want := range []string{
		"eventedge_connections 1",
		"eventedge_rooms 1",
		"eventedge_nats_subscriptions 1",
		"eventedge_events_in_total 1",
		"eventedge_frames_out_total",
		"eventedge_bytes_out_total",
		`eventedge_auth_failures_total{reason="malformed"} 1`,
		"eventedge_nats_connected 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Nothing admin is served on the public listener.
	if code, _ := edgetest.Get(t, "http://"+e.Addr().String()+"/metrics"); code != 404 {
		t.Fatalf("/metrics on the public listener: %d", code)
	}
	// Profiles only when asked for (AdminPprof, --admin-pprof).
	if code, _ := edgetest.Get(t, e.AdminURL+"/debug/pprof/"); code != 404 {
		t.Fatalf("/debug/pprof/ without AdminPprof: %d, want 404", code)
	}
}

// TestAdminPprof: with AdminPprof the Go profiles are served on the admin
// listener, and never on the public one.
func TestAdminPprof(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.AdminPprof = true })
	if code, body := edgetest.Get(t, e.AdminURL+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.100q", code, body)
	}
	if code, body := edgetest.Get(t, e.AdminURL+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.100q", code, body)
	}
	if code, _ := edgetest.Get(t, "http://"+e.Addr().String()+"/debug/pprof/"); code != 404 {
		t.Fatalf("/debug/pprof/ on the public listener: %d", code)
	}
}

// TestFrameSentWithHandshake: a client that sends its first frame (auth)
// in the same packet as its handshake, before the server's answer, is
// served: the bytes net/http read ahead survive the hand-over to the
// WebSocket connection (and its smaller buffers).
func TestFrameSentWithHandshake(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	conn, err := net.DialTimeout("tcp", e.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	auth, _ := json.Marshal(map[string]string{"op": "auth", "token": edgetest.Token(t, "u1", []string{"tasks:read"}, nil, time.Hour)})
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + e.Addr().String() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	packet := append([]byte(req), maskedTextFrame(auth)...)
	if _, err := conn.Write(packet); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	// The first server frame: an unmasked text frame holding the welcome.
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	size := int(hdr[1] & 0x7f)
	if size == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			t.Fatal(err)
		}
		size = int(binary.BigEndian.Uint16(ext[:]))
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if hdr[0] != 0x81 || !bytes.Contains(payload, []byte(`"op":"welcome"`)) {
		t.Fatalf("first frame %#x %q, want a text frame with the welcome", hdr[0], payload)
	}
}

// maskedTextFrame is payload as one final, masked text frame (a client's).
func maskedTextFrame(payload []byte) []byte {
	key := [4]byte{1, 2, 3, 4}
	f := []byte{0x81}
	switch {
	case len(payload) < 126:
		f = append(f, 0x80|byte(len(payload)))
	default:
		f = append(f, 0x80|126, byte(len(payload)>>8), byte(len(payload)))
	}
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// TestDeadPeerDropped: a client that stops answering WebSocket pings is
// dropped after the ping timeout, and counted.
func TestDeadPeerDropped(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Session.PingInterval = 100 * time.Millisecond
		o.Session.PingTimeout = 200 * time.Millisecond
	})
	// A coder/websocket peer answers pings only while something reads;
	// this one authenticates and then never reads again.
	ws := rawConn(t, e)
	_ = ws
	edgetest.Eventually(t, 10*time.Second, func() bool {
		_, body := edgetest.Get(t, e.AdminURL+"/metrics")
		return strings.Contains(body, `eventedge_connections_closed_total{reason="ping_timeout"} 1`) &&
			strings.Contains(body, "eventedge_connections 0")
	}, "silent peer dropped with reason ping_timeout")

	// A peer that reads answers the pings and stays.
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", nil, nil, time.Hour))
	time.Sleep(time.Second) // several ping intervals
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("live peer dropped: %v", err)
	}
}

// TestSeveralMessagesInOneFrame: a client may send several '\n'-separated
// messages in one frame; each is answered, in order.
func TestSeveralMessagesInOneFrame(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	ws := rawConn(t, e)
	frame := `{"op":"ping","id":1}` + "\n\n" + `{"op":"subscribe","id":2,"room":"user:u1"}` + "\n" + `{"op":"ping","id":3}` + "\n"
	if err := ws.Write(ctxT(t), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		got = append(got, strings.Split(readMsg(t, ws), "\n")...)
	}
	want := []string{`{"op":"pong","id":1}`, `{"op":"reply","id":2,"ok":true,"seq":0}`, `{"op":"pong","id":3}`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestNodeStatsPublished: the node reports its vital signs on
// ctl.edge.stats for the system monitor.
func TestNodeStatsPublished(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.StatsInterval = 200 * time.Millisecond; o.Name = "edge-s" })
	sub, err := nc.SubscribeSync(nodestats.Subject)
	if err != nil {
		t.Fatal(err)
	}
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	edgetest.Publish(t, js, events.TaskDeleted(room.Project("p1"), "u1", "t1"))
	edgetest.NextEvent(t, c, 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var s nodestats.Stats
		if err := json.Unmarshal(msg.Data, &s); err != nil {
			t.Fatal(err)
		}
		if s.Node != "edge-s" {
			t.Fatalf("stats %+v", s)
		}
		if s.Connections == 1 && s.Rooms == 1 && s.EventsInPerSecond > 0 && s.EventsOutPerSecond > 0 && s.P99DeliveryLatencyMs > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last stats %+v: never showed the connection, room and event", s)
		}
	}
}

// TestCompressionNegotiated: with Compression, a client that offers
// permessage-deflate gets it (no context takeover) and receives events
// intact; without, the offer is declined and frames go uncompressed.
func TestCompressionNegotiated(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	eventBytes := map[bool]int64{} // bytes on the wire for the event, by compression
	for _, on := range []bool{true, false} {
		e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.Compression = on; o.Server.CompressionThreshold = 64 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wire atomic.Int64 // bytes read from the socket
		d := &net.Dialer{}
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: &wire}, nil
		}}}
		ws, resp, err := websocket.Dial(ctx, e.URL, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionNoContextTakeover})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		ext := resp.Header.Get("Sec-WebSocket-Extensions")
		if got := strings.Contains(ext, "permessage-deflate"); got != on {
			t.Fatalf("compression %v: Sec-WebSocket-Extensions %q", on, ext)
		}
		if on && !strings.Contains(ext, "server_no_context_takeover") {
			t.Fatalf("extension %q: want server_no_context_takeover", ext)
		}
		tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)
		msg := `{"op":"auth","token":"` + tok + `"}` + "\n" + `{"op":"subscribe","id":1,"room":"project:p1"}`
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for got := ""; !strings.Contains(got, `"op":"reply"`); {
			_, b, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("before the reply: %v", err)
			}
			got = string(b)
		}
		title := strings.Repeat("compressible ", 100)
		ev := events.TaskUpdated(room.Project("p1"), "u1", "t1", &pb.Task{Title: title}, "title")
		before := wire.Load()
		edgetest.Publish(t, js, ev)
		_, b, err := ws.Read(ctx)
		if err != nil || !strings.Contains(string(b), ev.Id) || !strings.Contains(string(b), title) {
			t.Fatalf("compression %v: event frame %.200q, %v", on, b, err)
		}
		eventBytes[on] = wire.Load() - before
		ws.CloseNow()
		cancel()
	}
	// The title repeats: compressed, the frame is a fraction of its size.
	if eventBytes[true]*3 > eventBytes[false] {
		t.Fatalf("event on the wire: %d bytes compressed, %d uncompressed", eventBytes[true], eventBytes[false])
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}
