package load

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestConfigJSON(t *testing.T) {
	c := Config{Scenario: "broadcast", JWTSecret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t", Duration: 2 * time.Second}.WithDefaults()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["duration"] != "2s" || m["maxDuration"] != "5m0s" || m["clients"] != float64(100) || m["scenario"] != "broadcast" ||
		m["protocol"] != ProtocolJSON {
		t.Errorf("parameters: %s", b)
	}
	if strings.Contains(string(b), "s3cr3t") || strings.Contains(string(b), "ProcRoot") {
		t.Errorf("the secret or ProcRoot is in the record: %s", b)
	}
}

func TestLoopbackURL(t *testing.T) {
	for raw, want := range map[string]bool{
		"ws://127.0.0.1:8080/v1/ws": true, "ws://127.3.2.1/v1/ws": true, "ws://localhost:1/x": true,
		"ws://[::1]:8080/v1/ws": true, "nats://10.0.0.1:4222": false, "ws://example.com/v1/ws": false,
	} {
		got, err := loopbackURL(raw)
		if err != nil || got != want {
			t.Errorf("loopbackURL(%q) = %v, %v; want %v", raw, got, err, want)
		}
	}
	if _, err := loopbackURL("no-host"); err == nil {
		t.Error("a URL without a host is accepted")
	}
}

func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		n    int
		f    float64
		want int
	}{{20, 0.5, 10}, {20, 0.25, 5}, {10, 0.1, 1}, {7, 0, 0}, {7, 1, 7}, {3, 0.5, 1}} {
		got, run := 0, 0
		for i := range tc.n {
			if spread(i, tc.f) {
				got++
				run = 0
			} else if run++; tc.f > 0 && float64(run) > 1/tc.f+1 {
				t.Errorf("spread(n %d, %g): %d misses in a row", tc.n, tc.f, run)
			}
		}
		if got != tc.want {
			t.Errorf("spread(n %d, %g): %d, want %d", tc.n, tc.f, got, tc.want)
		}
	}
}

func TestValidateNewScenarios(t *testing.T) {
	base := Config{JWTSecret: "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t", Project: "p"}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Scenario: "rooms", Rooms: 1001}, "--rooms"},
		{Config{Scenario: "rooms", LogsFraction: -0.1}, "--logs-fraction"},
		{Config{Scenario: "slow"}, "--slow-fraction"},
		{Config{Scenario: "slow", SlowFraction: 0.1, SlowReadDelay: -time.Second}, "--slow-read-delay"},
		{Config{Scenario: "churn", ChurnRate: -1}, "--churn-rate"},
		{Config{Scenario: "churn", ChurnLife: -time.Second}, "--churn-life"},
		{Config{Scenario: "rooms", Project: strings.Repeat("x", 62)}, "too long"},
		{Config{Scenario: "slow", SlowFraction: 0.1, Mix: MixJob}, "--mix job: for broadcast only"},
		{Config{Scenario: "churn", Mix: MixJob}, "--mix job: for broadcast only"},
	} {
		c := tc.c
		c.JWTSecret = base.JWTSecret
		if c.Project == "" {
			c.Project = base.Project
		}
		err := c.WithDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	for _, sc := range []string{"rooms", "churn"} {
		if err := (Config{Scenario: sc, JWTSecret: base.JWTSecret}).WithDefaults().Validate(); err != nil {
			t.Errorf("%s with defaults: %v", sc, err)
		}
	}
	if err := (Config{Scenario: "slow", SlowFraction: 0.1, JWTSecret: base.JWTSecret}).WithDefaults().Validate(); err != nil {
		t.Errorf("slow: %v", err)
	}
}
