package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/admin"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

// adminCall makes one request to base+path with token (none when empty)
// and returns the status, the headers and the body.
func adminCall(t *testing.T, method, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// adminGet GETs path of e's admin API into v and fails unless it answers 200.
func adminGet(t *testing.T, e *edgetest.Edge, token, path string, v any) {
	t.Helper()
	status, _, body := adminCall(t, "GET", e.AdminURL+path, token, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // the test knows every field
	if err := dec.Decode(v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// apiError decodes an error body and fails unless its code is code.
func apiError(t *testing.T, body []byte, code string) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != code || e.Error.Message == "" {
		t.Fatalf("error body %s, want code %s with a message", body, code)
	}
	return e.Error.Message
}

func adminToken(t *testing.T) string {
	return edgetest.Token(t, "ops", []string{"admin"}, nil, time.Hour)
}

// TestAdminRefusesWithoutAdminToken: every endpoint answers 401 without a
// valid token and 403 to a valid one without admin; the public listener
// serves none of them.
func TestAdminRefusesWithoutAdminToken(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	id := c.Welcome().Session
	user := edgetest.Token(t, "u1", []string{"tasks:read", "logs:read", "system:read"}, []string{"*"}, time.Hour)
	expired := edgetest.Token(t, "ops", []string{"admin"}, nil, -time.Hour)
	endpoints := []struct{ method, path string }{
		{"GET", "/v1/admin/connections"},
		{"GET", "/v1/admin/rooms"},
		{"POST", "/v1/admin/connections/" + id + "/close"},
		{"POST", "/v1/admin/drain"},
	}
	for _, ep := range endpoints {
		for _, tok := range []string{"", "garbage", expired} {
			status, h, body := adminCall(t, ep.method, e.AdminURL+ep.path, tok, "")
			if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("%s %s with token %.10q: %d %q", ep.method, ep.path, tok, status, h.Get("WWW-Authenticate"))
			}
			apiError(t, body, admin.CodeUnauthorized)
		}
		status, _, body := adminCall(t, ep.method, e.AdminURL+ep.path, user, "")
		if status != http.StatusForbidden {
			t.Fatalf("%s %s with a non-admin token: %d %s", ep.method, ep.path, status, body)
		}
		if msg := apiError(t, body, admin.CodeForbidden); !strings.Contains(msg, "admin") {
			t.Errorf("403 message %q does not name the permission", msg)
		}
		// The public listener does not know the path, even with an admin token.
		status, _, body = adminCall(t, ep.method, "http://"+e.Addr().String()+ep.path, adminToken(t), "")
		if status != http.StatusNotFound || bytes.Contains(body, []byte(id)) || bytes.Contains(body, []byte("connections")) {
			t.Fatalf("public listener: %s %s: %d %s", ep.method, ep.path, status, body)
		}
	}
	select {
	case <-e.DrainRequested():
		t.Fatal("a drain was requested without an admin token")
	default:
	}
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatalf("the client was affected: %v", err)
	}
}

// adminFixture is a node with three clients:
//   - c1: u1 (tasks:read), device dev-1, client version web/1.2.3, in
//     project:p1 (task_updated only) and user:u1 (all types);
//   - c2: u2 (tasks:read, logs:read), in project:p1 (all types);
//   - c3: u2, in no room, in protobuf mode.
type adminFixture struct {
	e          *edgetest.Edge
	c1, c2, c3 *client.Conn
	lastSeq    uint64 // of the events published to project:p1
}

func newAdminFixture(t *testing.T, mutate func(*node.Options)) *adminFixture {
	t.Helper()
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	f := &adminFixture{e: edgetest.StartEdge(t, n, mutate)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	f.c1, err = client.Dial(ctx, f.e.URL, client.Options{
		Token:    edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour),
		DeviceID: "dev-1", ClientVersion: "web/1.2.3",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.c1.Close() })
	f.c2 = edgetest.Dial(t, f.e, edgetest.Token(t, "u2", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour))
	f.c3 = edgetest.DialWith(t, f.e, client.Options{Token: edgetest.Token(t, "u2", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour), Protocol: client.Protobuf})
	if err := f.c1.Subscribe(ctx, "project:p1", "task_updated"); err != nil {
		t.Fatal(err)
	}
	if err := f.c1.Subscribe(ctx, "user:u1"); err != nil {
		t.Fatal(err)
	}
	if err := f.c2.Subscribe(ctx, "project:p1"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.lastSeq = edgetest.Publish(t, js, events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: "v"}, "title")).Sequence
	}
	for _, c := range []*client.Conn{f.c1, f.c2} {
		edgetest.NextEvent(t, c, 10*time.Second)
		if m := edgetest.NextEvent(t, c, 10*time.Second); m.Seq != f.lastSeq {
			t.Fatalf("event seq %d, want %d", m.Seq, f.lastSeq)
		}
	}
	return f
}

func connections(t *testing.T, e *edgetest.Edge, query string) admin.ConnectionList {
	t.Helper()
	var l admin.ConnectionList
	adminGet(t, e, adminToken(t), "/v1/admin/connections"+query, &l)
	if l.Connections == nil {
		t.Fatalf("connections %s: null list", query)
	}
	return l
}

func sessionIDs(l admin.ConnectionList) []string {
	var ids []string
	for _, c := range l.Connections {
		ids = append(ids, c.Session)
	}
	return ids
}

func sortedIDs(cs ...*client.Conn) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.Welcome().Session)
	}
	slices.Sort(ids)
	return ids
}

// TestAdminConnections: every field of a connection, pagination with the
// cursor, the user and room filters, and refused parameters.
func TestAdminConnections(t *testing.T) {
	f := newAdminFixture(t, nil)
	all := connections(t, f.e, "")
	if all.Total != 3 || all.Next != "" || !slices.Equal(sessionIDs(all), sortedIDs(f.c1, f.c2, f.c3)) {
		t.Fatalf("connections = %+v", all)
	}
	var c1, c3 admin.Connection
	for _, c := range all.Connections {
		switch c.Session {
		case f.c1.Welcome().Session:
			c1 = c
		case f.c3.Welcome().Session:
			c3 = c
		}
	}
	if c3.Mode != "protobuf" || c3.User != "u2" {
		t.Errorf("c3 = %+v, want mode protobuf", c3)
	}
	if c1.User != "u1" || !c1.Authenticated || c1.Device != "dev-1" || c1.ClientVersion != "web/1.2.3" || c1.Mode != "json" ||
		!strings.HasPrefix(c1.RemoteAddr, "127.0.0.1:") || c1.UserAgent == "" ||
		!slices.Equal(c1.Permissions, []string{"tasks:read"}) || !slices.Equal(c1.Projects, []string{"p1"}) || c1.TokenExpiresAt.IsZero() {
		t.Errorf("c1 = %+v", c1)
	}
	if c1.ConnectedSince.IsZero() || c1.LastActivity.Before(c1.ConnectedSince) {
		t.Errorf("connected since %v, last activity %v", c1.ConnectedSince, c1.LastActivity)
	}
	want := []admin.Subscription{
		{Room: "project:p1", Events: []string{"task_updated"}, LastSeq: f.lastSeq},
		{Room: "user:u1", Events: []string{}, LastSeq: 0},
	}
	if !slices.EqualFunc(c1.Rooms, want, func(a, b admin.Subscription) bool {
		return a.Room == b.Room && slices.Equal(a.Events, b.Events) && a.LastSeq == b.LastSeq && a.CatchingUp == b.CatchingUp && a.RoomRateDrops == b.RoomRateDrops
	}) {
		t.Errorf("c1 rooms = %+v, want %+v", c1.Rooms, want)
	}
	if c1.Drops != (admin.Drops{}) || c1.Coalesced != 0 || c1.Throttled != 0 || c1.Closing != "" {
		t.Errorf("c1 counters = %+v", c1)
	}
	// The events were received: nothing is left queued.
	edgetest.Eventually(t, 10*time.Second, func() bool {
		for _, c := range connections(t, f.e, "").Connections {
			if c.Queue != (admin.Queue{}) || c.Held != (admin.Queue{}) {
				return false
			}
		}
		return true
	}, "empty queues")

	// Pagination: one at a time, the cursor walks every session once.
	var walked []string
	cursor := ""
	for page := 0; ; page++ {
		q := "?limit=1"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		l := connections(t, f.e, q)
		if l.Total != 3 || len(l.Connections) > 1 || page > 3 {
			t.Fatalf("page %d: %+v", page, l)
		}
		walked = append(walked, sessionIDs(l)...)
		if l.Next == "" {
			break
		}
		cursor = l.Next
	}
	if !slices.Equal(walked, sortedIDs(f.c1, f.c2, f.c3)) {
		t.Fatalf("walked %q, want %q", walked, sortedIDs(f.c1, f.c2, f.c3))
	}
	if l := connections(t, f.e, "?limit=2"); len(l.Connections) != 2 || l.Next != l.Connections[1].Session {
		t.Fatalf("limit=2: %+v", l)
	}

	// Filters.
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"?user=u1", sortedIDs(f.c1)},
		{"?user=u2", sortedIDs(f.c2, f.c3)},
		{"?user=nobody", nil},
		{"?room=project:p1", sortedIDs(f.c1, f.c2)},
		{"?room=user:u1", sortedIDs(f.c1)},
		{"?room=project:p1&user=u2", sortedIDs(f.c2)},
		{"?room=global", nil},
	} {
		l := connections(t, f.e, tc.query)
		if !slices.Equal(sessionIDs(l), tc.want) || l.Total != len(tc.want) {
			t.Errorf("%s: %q (total %d), want %q", tc.query, sessionIDs(l), l.Total, tc.want)
		}
	}

	// Bad parameters: 400 saying which.
	for _, tc := range []struct{ query, mention string }{
		{"?limit=0", "limit"}, {"?limit=1001", "limit"}, {"?limit=x", "limit"},
		{"?room=project", "room"}, {"?room=project:a%20b", "room"},
		{"?cursor=NOT-A-CURSOR", "cursor"}, {"?user=", "user"}, {"?users=u1", "users"},
	} {
		status, _, body := adminCall(t, "GET", f.e.AdminURL+"/v1/admin/connections"+tc.query, adminToken(t), "")
		if status != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", tc.query, status, body)
		}
		if msg := apiError(t, body, admin.CodeBadRequest); !strings.Contains(msg, tc.mention) {
			t.Errorf("%s: message %q does not mention %q", tc.query, msg, tc.mention)
		}
	}
}

// TestAdminRooms: subscriber counts, permission groups, event filters,
// NATS state and position of each room.
func TestAdminRooms(t *testing.T) {
	f := newAdminFixture(t, nil)
	var l admin.RoomList
	adminGet(t, f.e, adminToken(t), "/v1/admin/rooms", &l)
	if l.Total != 2 || len(l.Rooms) != 2 || l.Rooms[0].Room != "project:p1" || l.Rooms[1].Room != "user:u1" {
		t.Fatalf("rooms = %+v", l)
	}
	p1 := l.Rooms[0]
	if p1.Subscribers != 2 || p1.NATS != (admin.NATS{State: "subscribed"}) || p1.LastSeq != f.lastSeq || !p1.PositionKnown ||
		p1.Repairs != 0 || p1.RepairFailures != 0 || p1.Policy.TTL != "10s" {
		t.Errorf("project:p1 = %+v", p1)
	}
	wantPerms := []admin.PermissionGroup{{Permissions: []string{"logs:read", "tasks:read"}, Subscribers: 1}, {Permissions: []string{"tasks:read"}, Subscribers: 1}}
	if !slices.EqualFunc(p1.PermissionGroups, wantPerms, func(a, b admin.PermissionGroup) bool {
		return a.Subscribers == b.Subscribers && slices.Equal(a.Permissions, b.Permissions)
	}) {
		t.Errorf("permission groups = %+v, want %+v", p1.PermissionGroups, wantPerms)
	}
	wantFilters := []admin.EventFilter{{Events: []string{}, Subscribers: 1}, {Events: []string{"task_updated"}, Subscribers: 1}}
	if !slices.EqualFunc(p1.EventFilters, wantFilters, func(a, b admin.EventFilter) bool {
		return a.Subscribers == b.Subscribers && slices.Equal(a.Events, b.Events)
	}) {
		t.Errorf("event filters = %+v, want %+v", p1.EventFilters, wantFilters)
	}
	if u1 := l.Rooms[1]; u1.Subscribers != 1 || u1.NATS.State != "subscribed" || u1.LastSeq != 0 {
		t.Errorf("user:u1 = %+v", u1)
	}

	var one admin.RoomList
	adminGet(t, f.e, adminToken(t), "/v1/admin/rooms?room=user:u1", &one)
	if one.Total != 1 || one.Rooms[0].Room != "user:u1" {
		t.Errorf("?room=user:u1: %+v", one)
	}
	adminGet(t, f.e, adminToken(t), "/v1/admin/rooms?room=project:p9", &one)
	if one.Total != 0 || one.Rooms == nil || len(one.Rooms) != 0 {
		t.Errorf("?room=project:p9: %+v", one)
	}
	status, _, body := adminCall(t, "GET", f.e.AdminURL+"/v1/admin/rooms?room=p1", adminToken(t), "")
	if status != http.StatusBadRequest || !strings.Contains(apiError(t, body, admin.CodeBadRequest), "room") {
		t.Errorf("?room=p1: %d %s", status, body)
	}
}

// TestAdminRoomRepairs: a gap repaired from the stream (NATS drops live
// messages for a node whose buffer holds one) shows in the room's repair
// counters.
func TestAdminRoomRepairs(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Hub.Shards = 1; o.Hub.ShardBuffer = 1 })
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	// A filter nothing matches: the burst is not sent to the client.
	if err := c.Subscribe(ctxT(t), "project:p1", "task_created"); err != nil {
		t.Fatal(err)
	}
	// A burst, published asynchronously so it arrives faster than one
	// message at a time can be fanned out; another if NATS dropped nothing.
	burst := func() (last uint64) {
		evs := make([]*pb.Event, 1000)
		for i := range evs {
			evs[i] = events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: "v"}, "title")
		}
		for _, seq := range publishAsync(t, js, evs) {
			last = max(last, seq)
		}
		return last
	}
	var (
		r    admin.Room
		last uint64
	)
	// The room is at the last event, and its counters agree with the
	// node's metric (the repair counts after fanning the events out).
	settled := func() bool {
		var l admin.RoomList
		adminGet(t, e, adminToken(t), "/v1/admin/rooms?room=project:p1", &l)
		r = l.Rooms[0]
		return r.LastSeq == last && float64(r.RepairedEvents) == e.Metric(t, "eventedge_gap_repairs_total")
	}
	for try := 0; try < 5 && r.Repairs == 0; try++ {
		last = burst()
		edgetest.Eventually(t, 30*time.Second, settled, "the room at the last event")
	}
	if r.Repairs == 0 || r.RepairedEvents == 0 || r.RepairFailures != 0 {
		t.Fatalf("no repair counted: %+v (metric eventedge_gap_repairs_total %v)", r, e.Metric(t, "eventedge_gap_repairs_total"))
	}
	var l admin.ConnectionList
	adminGet(t, e, adminToken(t), "/v1/admin/connections", &l)
	if got := l.Connections[0].Rooms[0].LastSeq; got != last {
		t.Errorf("the subscription's last seq %d, want %d (filtered events count as delivered)", got, last)
	}
}

// closeErr waits for c to end and returns its close error.
func closeErr(t *testing.T, c *client.Conn) *client.CloseError {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("client not closed")
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) {
		t.Fatalf("client ended with %v, want a close frame", c.Err())
	}
	return ce
}

// TestAdminCloseConnection: a session is closed with the code and reason
// asked for; the others are not affected; unknown sessions are 404.
func TestAdminCloseConnection(t *testing.T) {
	f := newAdminFixture(t, nil)
	closeURL := func(c *client.Conn) string {
		return f.e.AdminURL + "/v1/admin/connections/" + c.Welcome().Session + "/close"
	}
	// Refused bodies close nothing.
	for _, body := range []string{`{"code":1000}`, `{"code":4003,"reason":"` + strings.Repeat("x", 124) + `"}`, `{"code":4003,"why":"x"}`, `nope`} {
		status, _, b := adminCall(t, "POST", closeURL(f.c1), adminToken(t), body)
		if status != http.StatusBadRequest {
			t.Fatalf("body %.30q: %d %s", body, status, b)
		}
		apiError(t, b, admin.CodeBadRequest)
	}

	status, _, b := adminCall(t, "POST", closeURL(f.c1), adminToken(t), `{"code":4003,"reason":"account suspended"}`)
	if status != http.StatusAccepted {
		t.Fatalf("close c1: %d %s", status, b)
	}
	var res admin.CloseResult
	if err := json.Unmarshal(b, &res); err != nil || res != (admin.CloseResult{Session: f.c1.Welcome().Session, Code: 4003, Reason: "account suspended"}) {
		t.Fatalf("close result %s (%v)", b, err)
	}
	if ce := closeErr(t, f.c1); ce.Code != 4003 || ce.Reason != "account suspended" {
		t.Fatalf("c1 closed with %d %q, want 4003 account suspended", ce.Code, ce.Reason)
	}
	status, _, b = adminCall(t, "POST", closeURL(f.c2), adminToken(t), `{"code":1012,"reason":"moving you to another node"}`)
	if status != http.StatusAccepted {
		t.Fatalf("close c2: %d %s", status, b)
	}
	if ce := closeErr(t, f.c2); ce.Code != 1012 || ce.Reason != "moving you to another node" {
		t.Fatalf("c2 closed with %d %q, want 1012 moving you to another node", ce.Code, ce.Reason)
	}
	// c3 is untouched.
	if _, err := f.c3.Ping(ctxT(t)); err != nil {
		t.Fatalf("c3: %v", err)
	}
	edgetest.Eventually(t, 10*time.Second, func() bool { return connections(t, f.e, "").Total == 1 }, "two sessions gone")
	if l := connections(t, f.e, ""); l.Connections[0].Session != f.c3.Welcome().Session {
		t.Fatalf("left: %+v", l)
	}
	// Closed (and never existing) sessions: 404.
	for _, url := range []string{closeURL(f.c1), f.e.AdminURL + "/v1/admin/connections/aaaaaaaaaaaaaaaa/close"} {
		status, _, b = adminCall(t, "POST", url, adminToken(t), "")
		if status != http.StatusNotFound {
			t.Fatalf("%s: %d %s", url, status, b)
		}
		apiError(t, b, admin.CodeNotFound)
	}
	// An empty body closes with 1012 and the default reason.
	status, _, b = adminCall(t, "POST", closeURL(f.c3), adminToken(t), "")
	if status != http.StatusAccepted {
		t.Fatalf("close c3: %d %s", status, b)
	}
	if ce := closeErr(t, f.c3); ce.Code != 1012 || ce.Reason != "closed by an operator" {
		t.Fatalf("c3 closed with %d %q", ce.Code, ce.Reason)
	}
}

// TestAdminDrain: POST /v1/admin/drain answers 202, turns readiness off
// and fires DrainRequested; the owner's Shutdown then closes the clients
// with 1012. A second request is answered 202 too.
func TestAdminDrain(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.DrainDuration = 200 * time.Millisecond })
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))

	status, _, b := adminCall(t, "POST", e.AdminURL+"/v1/admin/drain", adminToken(t), "")
	var res admin.DrainResult
	if status != http.StatusAccepted || json.Unmarshal(b, &res) != nil || res != (admin.DrainResult{Draining: true}) {
		t.Fatalf("drain: %d %s", status, b)
	}
	select {
	case <-e.DrainRequested():
	case <-time.After(10 * time.Second):
		t.Fatal("DrainRequested did not fire")
	}
	if by := e.DrainRequestedBy(); by != "ops" {
		t.Errorf("DrainRequestedBy = %q, want ops", by)
	}
	if code, body := edgetest.Get(t, e.AdminURL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("readyz: %d %s", code, body)
	}
	status, _, b = adminCall(t, "POST", e.AdminURL+"/v1/admin/drain", adminToken(t), "")
	if status != http.StatusAccepted || json.Unmarshal(b, &res) != nil || res != (admin.DrainResult{Draining: true, AlreadyRequested: true}) {
		t.Fatalf("second drain: %d %s", status, b)
	}

	// What edge's run does when DrainRequested fires.
	if err := e.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if ce := closeErr(t, c); ce.Code != 1012 {
		t.Fatalf("client closed with %d %q, want 1012", ce.Code, ce.Reason)
	}
}

// TestAdminClosesIdleConnections: the admin listener closes a keep-alive
// connection that sends no request within its idle timeout.
func TestAdminClosesIdleConnections(t *testing.T) {
	defer node.SetAdminIdleTimeout(200 * time.Millisecond)()
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.AdminURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle admin connection: read %v, want EOF (closed by the server)", err)
	}
}
