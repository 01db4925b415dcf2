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
	if m["duration"] != "2s" || m["maxDuration"] != "5m0s" || m["clients"] != float64(100) || m["scenario"] != "broadcast" {
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
