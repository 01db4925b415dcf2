package node_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// dialErr dials with opts and returns the close error the server answered
// with; it fails the test if the connection was accepted.
func dialErr(t *testing.T, url string, opts client.Options) *client.CloseError {
	t.Helper()
	c, err := client.Dial(ctxT(t), url, opts)
	if err == nil {
		c.Close()
		t.Fatalf("dial succeeded; want a close")
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("dial error %v (%T); want a close error", err, err)
	}
	return ce
}

func signHS(t *testing.T, claims jwt.MapClaims, secret []byte) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAuthOutcomes(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Auth.Issuer = "eventedge-test"
		o.Auth.Audience = "dashboards"
	})
	now := time.Now()
	base := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u1", "iss": "eventedge-test", "aud": "dashboards", "exp": now.Add(time.Hour).Unix(), "permissions": []string{"tasks:read"}}
	}
	secret := []byte(edgetest.Secret)
	with := func(k string, v any) string {
		c := base()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return signHS(t, c, secret)
	}
	none := func() string {
		enc := base64.RawURLEncoding
		h := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		p := enc.EncodeToString([]byte(`{"sub":"u1","iss":"eventedge-test","aud":"dashboards","exp":` + itoa(now.Add(time.Hour).Unix()) + `}`))
		return h + "." + p + "."
	}()

	t.Run("valid via auth message", func(t *testing.T) {
		c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: signHS(t, base(), secret), DeviceID: "d1", ClientVersion: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Welcome().User != "u1" {
			t.Fatalf("welcome %+v", c.Welcome())
		}
		if got := c.Welcome().ExpiresAt.Unix(); got != now.Add(time.Hour).Unix() {
			t.Fatalf("expiresAt %d, want %d", got, now.Add(time.Hour).Unix())
		}
	})
	t.Run("valid via Authorization header", func(t *testing.T) {
		c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: signHS(t, base(), secret), HeaderAuth: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Subscribe(ctxT(t), "user:u1"); err != nil {
			t.Fatal(err)
		}
	})

	cases := []struct {
		name, token, reason string
	}{
		{"expired", with("exp", now.Add(-time.Minute).Unix()), "expired"},
		{"missing exp", with("exp", nil), "missing_exp"},
		{"not yet valid", with("nbf", now.Add(time.Hour).Unix()), "not_yet_valid"},
		{"bad signature", signHS(t, base(), []byte("another-secret-of-enough-length-0123456789")), "bad_signature"},
		{"alg none", none, "bad_algorithm"},
		{"wrong issuer", with("iss", "someone-else"), "wrong_issuer"},
		{"wrong audience", with("aud", "other-app"), "wrong_audience"},
		{"garbage", "not-a-jwt", "malformed"},
		{"bad sub", with("sub", "u.1"), "bad_claims"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, header := range []bool{false, true} {
				ce := dialErr(t, e.URL, client.Options{Token: tc.token, HeaderAuth: header})
				if ce.Code != 4001 || !strings.Contains(ce.Reason, tc.reason) {
					t.Fatalf("header=%v: close %d %q; want 4001 containing %q", header, ce.Code, ce.Reason, tc.reason)
				}
				if strings.Contains(ce.Reason, tc.token) {
					t.Fatalf("close reason echoes the token")
				}
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestAuthHSTokenAgainstRSAKeyRefused(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Auth = auth.Options{PublicKeyPEM: pubPEM} })

	claims := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}
	// The classic confusion attack: HS256 "signed" with the public key.
	forged := signHS(t, claims, pubPEM)
	ce := dialErr(t, e.URL, client.Options{Token: forged})
	if ce.Code != 4001 || !strings.Contains(ce.Reason, "bad_algorithm") {
		t.Fatalf("close %d %q; want 4001 bad_algorithm", ce.Code, ce.Reason)
	}
	// A real RS256 token works.
	good, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctxT(t), e.URL, client.Options{Token: good})
	if err != nil {
		t.Fatalf("RS256 token refused: %v", err)
	}
	c.Close()
}

func TestAuthTimeout(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Session = session.Options{AuthTimeout: 300 * time.Millisecond} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, _, err = ws.Read(ctx)
	if s := websocket.CloseStatus(err); s != 4001 {
		t.Fatalf("read error %v; want close 4001", err)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "no auth message") {
		t.Fatalf("close reason %q", ce.Reason)
	}
}

func TestTokenRefresh(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	exp, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, 2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(exp); d < 110*time.Minute {
		t.Fatalf("refreshed expiry in %s; want about 2h", d)
	}
	// Another user's token cannot take over the session.
	_, err = c.Refresh(ctxT(t), edgetest.Token(t, "u2", nil, nil, time.Hour))
	var re *client.ReplyError
	if !errors.As(err, &re) || re.Code != "unauthorized" {
		t.Fatalf("refresh as another user: %v; want unauthorized", err)
	}
	// The session goes on.
	if _, err := c.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// TestTokenRefreshChangesEventPermissions: events that require a
// permission follow the session's current token: after a refresh without
// logs:read the client's subscription no longer gets logs:read events
// (the others still come), and after one with it again they come again.
func TestTokenRefreshChangesEventPermissions(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	withLogs := func() string {
		return edgetest.Token(t, "u1", []string{"tasks:read", "logs:read"}, []string{"p1"}, time.Hour)
	}
	c := edgetest.Dial(t, e, withLogs())
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatal(err)
	}
	// publish publishes a logs:read event (normal priority: never
	// coalesced or throttled) and a task_updated after it, and returns
	// their ids.
	publish := func(i int) (logs, updated string) {
		ev := events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", Progress: 0.5, Logs: []*pb.LogEntry{{Line: fmt.Sprint("line ", i)}}})
		ev.RequiredPermission = "logs:read"
		ev.Priority = pb.Priority_PRIORITY_NORMAL
		events.Normalize(ev)
		edgetest.Publish(t, js, ev)
		up := events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: fmt.Sprint("title ", i)}, "title")
		events.Normalize(up)
		edgetest.Publish(t, js, up)
		return ev.Id, up.Id
	}
	// want reads the next events: ids, in order.
	want := func(step string, ids ...string) {
		t.Helper()
		for _, id := range ids {
			if m := edgetest.NextEvent(t, c, 10*time.Second); m.Event.ID != id {
				t.Fatalf("%s: got event %s (%s); want %s", step, m.Event.ID, m.Event.Type, id)
			}
		}
	}
	logs, up := publish(1)
	want("with logs:read", logs, up)
	if _, err := c.Refresh(ctxT(t), edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, up = publish(2)
	want("after a refresh without logs:read", up) // the logs:read event is not sent
	if _, err := c.Refresh(ctxT(t), withLogs()); err != nil {
		t.Fatal(err)
	}
	logs, up = publish(3)
	want("after a refresh with logs:read again", logs, up)
}

func TestTokenExpiryClosesConnection(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Auth.Leeway = -1 })
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", nil, nil, 1500*time.Millisecond))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection outlived its token")
	}
	var ce *client.CloseError
	if !errors.As(c.Err(), &ce) || ce.Code != 4001 || !strings.Contains(ce.Reason, "expired") {
		t.Fatalf("closed with %v; want 4001 token expired", c.Err())
	}
}

// TestPingsAndExpiryShareOneClock: a session's pings, its expiring notice
// and its token's expiry share one timer (session/clock.go), which pings
// every 50 ms re-arm all along. The notice and the expiry must still come,
// a refresh must move them to the new token's, and the pings must go on
// after the welcome, after the refresh and after each notice.
func TestPingsAndExpiryShareOneClock(t *testing.T) {
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, func(o *node.Options) {
		o.Session.PingInterval = 50 * time.Millisecond
		o.Session.ExpiringNotice = 2 * time.Second
		o.Auth.Leeway = -1
	})
	var pings atomic.Int64
	ctx := ctxT(t)
	ws, _, err := websocket.Dial(ctx, e.URL, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// Each token expires 3–4 s after it is made (exp is in whole seconds),
	// so its notice comes 1–2 s after, and the refresh has 2 s to arrive.
	token := func() string { return edgetest.Token(t, "u1", nil, nil, 4*time.Second) }
	write := func(msg string) {
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	// next reads the next message, which must have op (pings are control
	// frames, not messages): the welcome, the first notice, the refresh's
	// reply, the second notice, in that order and nothing between. A read
	// error is returned as the connection's end.
	next := func(op string) (string, error) {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			return "", err
		}
		if !strings.Contains(string(msg), `"op":"`+op+`"`) {
			t.Fatalf("got %s, want op %s", msg, op)
		}
		return string(msg), nil
	}
	// Two pings in a window show the clock was re-armed for the ping
	// after the last event, whatever the machine's load (the windows are
	// a second or more, the pings 50 ms apart).
	const minPings = 2
	write(`{"op":"auth","token":"` + token() + `"}`)
	if _, err := next("welcome"); err != nil {
		t.Fatal(err)
	}
	start := pings.Load()
	if _, err := next("expiring"); err != nil {
		t.Fatalf("no expiring notice for the first token: %v", err)
	}
	if p := pings.Load() - start; p < minPings {
		t.Fatalf("%d pings between welcome and the first notice; want at least %d", p, minPings)
	}
	write(`{"op":"auth","id":1,"token":"` + token() + `"}`)
	if reply, err := next("reply"); err != nil || !strings.Contains(reply, `"ok":true`) {
		t.Fatalf("refresh: %s %v", reply, err)
	}
	atRefresh := pings.Load()
	if _, err := next("expiring"); err != nil {
		t.Fatalf("no expiring notice for the refreshed token (the first token's expiry closed it?): %v", err)
	}
	if p := pings.Load() - atRefresh; p < minPings {
		t.Fatalf("%d pings between the refresh and the second notice; want at least %d", p, minPings)
	}
	atNotice := pings.Load()
	_, _, err = ws.Read(ctx) // the close
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || !strings.Contains(ce.Reason, "expired") {
		t.Fatalf("closed with %v; want 4001 token expired", err)
	}
	if p := pings.Load() - atNotice; p < minPings {
		t.Fatalf("%d pings between the second notice and the expiry; want at least %d", p, minPings)
	}
}

// TestTokenExpiringCenturiesAhead: a token whose exp is in the year 9999
// (a common "never expires") keeps its connection, with the default
// leeway and with none: the session's clock caps how far ahead it sets
// the expiry, where the sum had overflowed and closed the connection at
// once as expired.
func TestTokenExpiringCenturiesAhead(t *testing.T) {
	n := edgetest.StartNATS(t)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u1", "iat": time.Now().Unix(), "exp": int64(253402300799), // 9999-12-31T23:59:59Z
	}).SignedString([]byte(edgetest.Secret))
	if err != nil {
		t.Fatal(err)
	}
	for _, leeway := range []time.Duration{0, -1} { // the default (2 s), none
		e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Auth.Leeway = leeway })
		c := edgetest.Dial(t, e, tok)
		time.Sleep(300 * time.Millisecond) // a timer due at once has fired by now
		if _, err := c.Ping(ctxT(t)); err != nil {
			t.Fatalf("leeway %v: connection closed: %v", leeway, err)
		}
		if got := e.Metric(t, `eventedge_auth_failures_total{reason="expired"}`); got != 0 {
			t.Fatalf("leeway %v: %v expired auth failures, want 0", leeway, got)
		}
	}
}
