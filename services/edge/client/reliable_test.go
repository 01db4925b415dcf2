package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// backoffCap is min(maxDelay, base·2^attempt) computed without overflow.
func backoffCap(base, maxDelay time.Duration, attempt int) time.Duration {
	if attempt >= 63 || base > maxDelay>>attempt {
		return maxDelay
	}
	return min(maxDelay, base<<attempt)
}

// callBackoff returns c.backoff(attempt), or the panic it raised.
func callBackoff(c *Client, attempt int) (d time.Duration, panicked any) {
	defer func() { panicked = recover() }()
	return c.backoff(attempt), nil
}

func TestBackoffBounds(t *testing.T) {
	cases := []struct {
		name            string
		base, maxDelay  time.Duration
		wantDefaultBase bool
	}{
		{name: "defaults", wantDefaultBase: true},
		{name: "20ms to 1s", base: 20 * time.Millisecond, maxDelay: time.Second},
		{name: "base above max", base: 5 * time.Second, maxDelay: time.Second},
		{name: "1s to 10m", base: time.Second, maxDelay: 10 * time.Minute},
		// A base above ~17.2s makes base<<29 overflow int64 (the shift is
		// only guarded for attempt >= 30).
		{name: "20s to 10m", base: 20 * time.Second, maxDelay: 10 * time.Minute},
		{name: "1m to 1h", base: time.Minute, maxDelay: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(Config{URLs: []string{"ws://127.0.0.1:1/v1/ws"}, BaseDelay: tc.base, MaxDelay: tc.maxDelay})
			base, maxDelay := c.cfg.BaseDelay, c.cfg.MaxDelay
			if tc.wantDefaultBase && (base != 250*time.Millisecond || maxDelay != 30*time.Second) {
				t.Fatalf("defaults %s, %s; want 250ms, 30s", base, maxDelay)
			}
			for attempt := 0; attempt <= 40; attempt++ {
				capD := backoffCap(base, maxDelay, attempt)
				for range 200 {
					d, p := callBackoff(c, attempt)
					if p != nil {
						t.Fatalf("backoff(%d) with base %s, max %s panicked: %v", attempt, base, maxDelay, p)
					}
					if d <= 0 || d > capD+time.Millisecond {
						t.Fatalf("backoff(%d) = %s, want in (0, %s]", attempt, d, capD+time.Millisecond)
					}
					if d > maxDelay+time.Millisecond {
						t.Fatalf("backoff(%d) = %s exceeds max %s + 1ms", attempt, d, maxDelay)
					}
				}
			}
		})
	}
}

// TestBackoffJitter: full jitter spreads the delays over the whole range
// rather than around the cap.
func TestBackoffJitter(t *testing.T) {
	c := NewClient(Config{URLs: []string{"ws://127.0.0.1:1/v1/ws"}, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second})
	for _, attempt := range []int{0, 3, 40} {
		capD := backoffCap(c.cfg.BaseDelay, c.cfg.MaxDelay, attempt)
		seen := map[time.Duration]bool{}
		low := 0
		for range 1000 {
			d := c.backoff(attempt)
			seen[d] = true
			if d < capD/2 {
				low++
			}
		}
		// With 1000 uniform samples, fewer than 10 distinct values or no
		// value in the lower half has a probability below 2^-900.
		if len(seen) < 10 {
			t.Errorf("attempt %d: only %d distinct delays in 1000 samples", attempt, len(seen))
		}
		if low == 0 {
			t.Errorf("attempt %d: no delay below half the cap %s", attempt, capD)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"retry-after=3", 3 * time.Second, true},
		{"retry-after=0", 0, true},
		{"retry-after=3600", time.Hour, true},
		{"retry-after=3601", 0, false},
		{"retry-after=99999999999999999999999", 0, false},
		{"retry-after=-1", 0, false},
		{"retry-after=", 0, false},
		{"retry-after=abc", 0, false},
		{"retry-after=1.5", 0, false},
		{"retry-after=3s", 0, false},
		{"retry-after= 3", 0, false},
		{"Retry-After=3", 0, false},
		{"3", 0, false},
		{"", 0, false},
		{"service restart", 0, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			d, ok := retryAfter(tc.in)
			if ok != tc.wantOK || d != tc.want {
				t.Fatalf("retryAfter(%q) = %s, %v; want %s, %v", tc.in, d, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	cases := map[State]string{
		StateConnecting:   "connecting",
		StateConnected:    "connected",
		StateReconnecting: "reconnecting",
		StateUnauthorized: "unauthorized",
		StateOffline:      "offline",
		State(0):          "unknown",
		State(99):         "unknown",
	}
	for s, want := range cases {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestClientDropsRepeatedSeqs: against a server that sends an event twice
// and an older seq after a newer one (a scripted server on a real
// loopback WebSocket: a correct edge never does this), the client hands
// each seq on once, in order, and counts the copies it dropped.
func TestClientDropsRepeatedSeqs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx := r.Context()
		var m struct {
			Op string `json:"op"`
			ID uint64 `json:"id"`
		}
		for m.Op != "subscribe" {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("client sent %q: %v", data, err)
				return
			}
			if m.Op == "auth" {
				_ = ws.Write(ctx, websocket.MessageText, []byte(`{"op":"welcome","session":"s1","node":"n1","user":"u1"}`))
			}
		}
		script := fmt.Sprintf(`{"op":"reply","id":%d,"ok":true,"seq":0}`, m.ID)
		for _, seq := range []int{1, 2, 2, 1, 3} {
			script += fmt.Sprintf("\n"+`{"op":"event","room":"global","seq":%d,"event":{"id":"e%d","type":"system.status"}}`, seq, seq)
		}
		_ = ws.Write(ctx, websocket.MessageText, []byte(script))
		for { // answer nothing more; read until the client leaves
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewClient(Config{URLs: []string{"ws" + strings.TrimPrefix(srv.URL, "http")}, Token: "t", AckInterval: -1})
	c.Subscribe("global")
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	var got []uint64
	for len(got) < 3 {
		select {
		case m := <-c.Events():
			got = append(got, m.Seq)
		case <-ctx.Done():
			t.Fatalf("got seqs %v, want 1 2 3", got)
		}
	}
	if !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("delivered seqs %v, want [1 2 3]", got)
	}
	if d := c.Duplicates(); d != 2 {
		t.Errorf("Duplicates() = %d, want 2 (seq 2 again, then seq 1)", d)
	}
	cancel()
	<-done
}

func TestRetryAfterHeader(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1": time.Second, " 7 ": 7 * time.Second, "3600": time.Hour, "0": 0,
		"": 0, "3601": 0, "-1": 0, "1.5": 0, "abc": 0, "Wed, 21 Oct 2015 07:28:00 GMT": 0,
	} {
		if got := retryAfterHeader(in); got != want {
			t.Errorf("retryAfterHeader(%q) = %s; want %s", in, got, want)
		}
	}
}
