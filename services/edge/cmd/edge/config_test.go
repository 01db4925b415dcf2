package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/broker"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
	"github.com/eventedge/eventedge/services/edge/internal/server"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// testSecret is a valid (32+ byte) HS256 secret; its value must never appear
// in an error.
const testSecret = "s3cr3t-value-0123456789abcdef-XYZ"

// env is a fake environment for parseConfig and runToken.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// quietStderr sends what the flag package prints (usage on a bad flag) to
// /dev/null for the rest of the test. Tests using it must not be parallel.
func quietStderr(t *testing.T) {
	t.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = null
	t.Cleanup(func() {
		os.Stderr = old
		null.Close()
	})
}

func mustParse(t *testing.T, args []string, e env) *config {
	t.Helper()
	c, err := parseConfig(args, e.get)
	if err != nil {
		t.Fatalf("parseConfig(%q): %v", args, err)
	}
	return c
}

func TestParseConfigDefaults(t *testing.T) {
	c := mustParse(t, nil, env{"EDGE_JWT_SECRET": testSecret})
	n := c.node
	checks := []struct {
		name      string
		got, want any
	}{
		{"Addr", n.Addr, ":8080"},
		{"AdminAddr", n.AdminAddr, ":9090"},
		{"NATSURL", n.NATSURL, ""},
		{"Name", n.Name, ""},
		{"Embedded", n.Embedded, broker.EmbeddedOptions{Host: "127.0.0.1", Port: 4222, StoreDir: "./.data", Name: "eventedge-embedded"}},
		{"dataDir", c.dataDir, "./.data"},
		{"logLevel", c.logLevel, "info"},
		{"logFormat", c.logFormat, "json"},
		{"Auth.HMACSecret", string(n.Auth.HMACSecret), testSecret},
		{"Auth.PublicKeyPEM", len(n.Auth.PublicKeyPEM), 0},
		{"Auth.Issuer", n.Auth.Issuer, ""},
		{"Auth.Audience", n.Auth.Audience, ""},
		{"Auth.Leeway", n.Auth.Leeway, auth.DefaultLeeway},
		{"Server.ReadLimit", n.Server.ReadLimit, int64(server.DefaultReadLimit)},
		{"Server.ReadHeaderTimeout", n.Server.ReadHeaderTimeout, server.DefaultReadHeaderTimeout},
		{"Server.AllowedOrigins", len(n.Server.AllowedOrigins), 0},
		{"Session.AuthTimeout", n.Session.AuthTimeout, session.DefaultAuthTimeout},
		{"Session.WriteTimeout", n.Session.WriteTimeout, session.DefaultWriteTimeout},
		{"Session.PingInterval", n.Session.PingInterval, session.DefaultPingInterval},
		{"Session.PingTimeout", n.Session.PingTimeout, session.DefaultPingTimeout},
		{"Session.QueueMessages", n.Session.QueueMessages, session.DefaultQueueMessages},
		{"Session.QueueBytes", n.Session.QueueBytes, session.DefaultQueueBytes},
		{"Session.MaxSubscriptions", n.Session.MaxSubscriptions, session.DefaultMaxSubscriptions},
		{"Session.HighWater", n.Session.HighWater, session.DefaultHighWater},
		{"Session.ClientRate", n.Session.ClientRate, float64(session.DefaultClientRate)},
		{"Session.ClientBurst", n.Session.ClientBurst, session.DefaultClientBurst},
		{"Session.ProgressRate", n.Session.ProgressRate, float64(session.DefaultProgressRate)},
		{"Session.MaxCoalescedLogs", n.Session.MaxCoalescedLogs, session.DefaultMaxCoalescedLogs},
		{"Session.CommandRate", n.Session.CommandRate, float64(session.DefaultCommandRate)},
		{"Session.CommandBurst", n.Session.CommandBurst, session.DefaultCommandBurst},
		{"Session.AckRate", n.Session.AckRate, float64(session.DefaultAckRate)},
		{"Session.AckBurst", n.Session.AckBurst, session.DefaultAckBurst},
		{"Server.MaxConns", n.Server.MaxConns, server.DefaultMaxConns},
		{"Server.MaxConnsPerUser", n.Server.MaxConnsPerUser, server.DefaultMaxConnsPerUser},
		{"Server.MaxConnsPerIP", n.Server.MaxConnsPerIP, server.DefaultMaxConnsPerIP},
		{"Server.ReadyFill", n.Server.ReadyFill, server.DefaultReadyFill},
		{"Server.TrustForwardedFor", n.Server.TrustForwardedFor, false},
		{"DrainDuration", n.DrainDuration, node.DefaultDrainDuration},
		{"StatsInterval", n.StatsInterval, nodestats.DefaultInterval},
		{"LowPriorityBudget", n.LowPriorityBudget, float64(node.DefaultLowPriorityBudget)},
		{"ShutdownTimeout", n.ShutdownTimeout, node.DefaultDrainDuration + 10*time.Second},
		{"Stream", n.Stream, events.StreamConfig{MaxAge: events.DefaultMaxAge, MaxMsgsPerSubject: events.DefaultMaxMsgsPerSubject,
			Duplicates: events.DefaultDuplicates, Replicas: events.DefaultReplicas}},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	if _, err := auth.NewVerifier(n.Auth); err != nil {
		t.Errorf("NewVerifier(parsed auth options): %v", err)
	}
}

func TestParseConfigEnv(t *testing.T) {
	cases := []struct {
		name  string
		env   env
		check func(t *testing.T, c *config)
	}{
		{"EDGE_ADDR", env{"EDGE_ADDR": "127.0.0.1:18080"}, func(t *testing.T, c *config) {
			eq(t, "Addr", c.node.Addr, "127.0.0.1:18080")
		}},
		{"EDGE_ADMIN_ADDR", env{"EDGE_ADMIN_ADDR": ":19090"}, func(t *testing.T, c *config) {
			eq(t, "AdminAddr", c.node.AdminAddr, ":19090")
		}},
		{"NATS_URL", env{"NATS_URL": "nats://a:4222,nats://b:4222"}, func(t *testing.T, c *config) {
			eq(t, "NATSURL", c.node.NATSURL, "nats://a:4222,nats://b:4222")
			eq(t, "Embedded", c.node.Embedded, broker.EmbeddedOptions{}) // no embedded server
		}},
		{"NATS_URL skips the embedded address check", env{"NATS_URL": "nats://a:4222", "EDGE_EMBEDDED_NATS_ADDR": "nonsense"}, func(t *testing.T, c *config) {
			eq(t, "NATSURL", c.node.NATSURL, "nats://a:4222")
		}},
		{"EDGE_EMBEDDED_NATS_ADDR and EDGE_DATA_DIR", env{"EDGE_EMBEDDED_NATS_ADDR": "0.0.0.0:14222", "EDGE_DATA_DIR": "/var/lib/edge"}, func(t *testing.T, c *config) {
			eq(t, "Embedded", c.node.Embedded, broker.EmbeddedOptions{Host: "0.0.0.0", Port: 14222, StoreDir: "/var/lib/edge", Name: "eventedge-embedded"})
		}},
		{"EDGE_NODE_NAME", env{"EDGE_NODE_NAME": "edge-1"}, func(t *testing.T, c *config) {
			eq(t, "Name", c.node.Name, "edge-1")
		}},
		{"EDGE_ALLOWED_ORIGINS", env{"EDGE_ALLOWED_ORIGINS": " dash.example.com, *.example.org ,,https://x.example.net "}, func(t *testing.T, c *config) {
			eq(t, "AllowedOrigins", c.node.Server.AllowedOrigins, []string{"dash.example.com", "*.example.org", "https://x.example.net"})
		}},
		{"EDGE_JWT_ISSUER and EDGE_JWT_AUDIENCE", env{"EDGE_JWT_ISSUER": "https://id.example.com", "EDGE_JWT_AUDIENCE": "eventedge"}, func(t *testing.T, c *config) {
			eq(t, "Issuer", c.node.Auth.Issuer, "https://id.example.com")
			eq(t, "Audience", c.node.Auth.Audience, "eventedge")
		}},
		{"EDGE_JWT_LEEWAY", env{"EDGE_JWT_LEEWAY": "10s"}, func(t *testing.T, c *config) {
			eq(t, "Leeway", c.node.Auth.Leeway, 10*time.Second)
		}},
		{"EDGE_JWT_LEEWAY=0s means no leeway", env{"EDGE_JWT_LEEWAY": "0s"}, func(t *testing.T, c *config) {
			if c.node.Auth.Leeway >= 0 {
				t.Errorf("Leeway = %v, want negative (none)", c.node.Auth.Leeway)
			}
		}},
		{"EDGE_LOG_LEVEL and EDGE_LOG_FORMAT", env{"EDGE_LOG_LEVEL": "debug", "EDGE_LOG_FORMAT": "console"}, func(t *testing.T, c *config) {
			eq(t, "logLevel", c.logLevel, "debug")
			eq(t, "logFormat", c.logFormat, "console")
		}},
		{"EDGE_READ_LIMIT", env{"EDGE_READ_LIMIT": "2048"}, func(t *testing.T, c *config) {
			eq(t, "ReadLimit", c.node.Server.ReadLimit, int64(2048))
		}},
		{"session durations", env{"EDGE_AUTH_TIMEOUT": "3s", "EDGE_WRITE_TIMEOUT": "4s", "EDGE_PING_INTERVAL": "30s", "EDGE_PING_TIMEOUT": "7s"}, func(t *testing.T, c *config) {
			eq(t, "AuthTimeout", c.node.Session.AuthTimeout, 3*time.Second)
			eq(t, "WriteTimeout", c.node.Session.WriteTimeout, 4*time.Second)
			eq(t, "PingInterval", c.node.Session.PingInterval, 30*time.Second)
			eq(t, "PingTimeout", c.node.Session.PingTimeout, 7*time.Second)
		}},
		{"queue limits", env{"EDGE_QUEUE_MESSAGES": "10", "EDGE_QUEUE_BYTES": "4096", "EDGE_MAX_SUBSCRIPTIONS": "3"}, func(t *testing.T, c *config) {
			eq(t, "QueueMessages", c.node.Session.QueueMessages, 10)
			eq(t, "QueueBytes", c.node.Session.QueueBytes, 4096)
			eq(t, "MaxSubscriptions", c.node.Session.MaxSubscriptions, 3)
		}},
		{"EDGE_SHUTDOWN_TIMEOUT", env{"EDGE_SHUTDOWN_TIMEOUT": "1m"}, func(t *testing.T, c *config) {
			eq(t, "ShutdownTimeout", c.node.ShutdownTimeout, time.Minute)
		}},
		{"connection limits", env{"EDGE_MAX_CONNS": "500", "EDGE_MAX_CONNS_PER_USER": "7", "EDGE_MAX_CONNS_PER_IP": "50", "EDGE_READY_FILL": "0.75"}, func(t *testing.T, c *config) {
			eq(t, "MaxConns", c.node.Server.MaxConns, 500)
			eq(t, "MaxConnsPerUser", c.node.Server.MaxConnsPerUser, 7)
			eq(t, "MaxConnsPerIP", c.node.Server.MaxConnsPerIP, 50)
			eq(t, "ReadyFill", c.node.Server.ReadyFill, 0.75)
		}},
		{"EDGE_READY_FILL=1", env{"EDGE_READY_FILL": "1"}, func(t *testing.T, c *config) {
			eq(t, "ReadyFill", c.node.Server.ReadyFill, 1.0)
		}},
		{"EDGE_TRUST_FORWARDED_FOR", env{"EDGE_TRUST_FORWARDED_FOR": "true"}, func(t *testing.T, c *config) {
			eq(t, "TrustForwardedFor", c.node.Server.TrustForwardedFor, true)
		}},
		{"EDGE_DRAIN_DURATION", env{"EDGE_DRAIN_DURATION": "45s"}, func(t *testing.T, c *config) {
			eq(t, "DrainDuration", c.node.DrainDuration, 45*time.Second)
		}},
		{"EDGE_DRAIN_DURATION=0s closes at once", env{"EDGE_DRAIN_DURATION": "0s"}, func(t *testing.T, c *config) {
			if c.node.DrainDuration >= 0 {
				t.Errorf("DrainDuration = %v, want negative (no spreading)", c.node.DrainDuration)
			}
		}},
		{"flow control", env{
			"EDGE_QUEUE_HIGH_WATER": "0.5", "EDGE_CLIENT_RATE": "100.5", "EDGE_CLIENT_BURST": "150", "EDGE_PROGRESS_RATE": "2",
			"EDGE_MAX_COALESCED_LOGS": "20", "EDGE_COMMAND_RATE": "10", "EDGE_COMMAND_BURST": "30", "EDGE_LOW_PRIORITY_BUDGET": "1e4",
			"EDGE_ACK_RATE": "500", "EDGE_ACK_BURST": "250",
		}, func(t *testing.T, c *config) {
			s := c.node.Session
			eq(t, "HighWater", s.HighWater, 0.5)
			eq(t, "ClientRate", s.ClientRate, 100.5)
			eq(t, "ClientBurst", s.ClientBurst, 150)
			eq(t, "ProgressRate", s.ProgressRate, 2.0)
			eq(t, "MaxCoalescedLogs", s.MaxCoalescedLogs, 20)
			eq(t, "CommandRate", s.CommandRate, 10.0)
			eq(t, "CommandBurst", s.CommandBurst, 30)
			eq(t, "AckRate", s.AckRate, 500.0)
			eq(t, "AckBurst", s.AckBurst, 250)
			eq(t, "LowPriorityBudget", c.node.LowPriorityBudget, 1e4)
		}},
		{"stream", env{"EDGE_STREAM_MAX_AGE": "48h", "EDGE_STREAM_MAX_MSGS_PER_SUBJECT": "50", "EDGE_STREAM_DUPLICATES": "30s", "EDGE_STREAM_REPLICAS": "3"}, func(t *testing.T, c *config) {
			eq(t, "Stream", c.node.Stream, events.StreamConfig{MaxAge: 48 * time.Hour, MaxMsgsPerSubject: 50, Duplicates: 30 * time.Second, Replicas: 3})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := env{"EDGE_JWT_SECRET": testSecret}
			for k, v := range tc.env {
				e[k] = v
			}
			tc.check(t, mustParse(t, nil, e))
		})
	}
}

func eq(t *testing.T, name string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}

func TestParseConfigFlagBeatsEnv(t *testing.T) {
	e := env{
		"EDGE_JWT_SECRET": testSecret,
		"EDGE_ADDR":       ":1111",
		"EDGE_LOG_LEVEL":  "debug",
		"EDGE_READ_LIMIT": "2048",
		"NATS_URL":        "nats://env:4222",
	}
	flagSecret := "flag-secret-0123456789abcdef-0123456789"
	c := mustParse(t, []string{"--addr", ":2222", "-log-level=warn", "--read-limit=4096", "--nats-url", "nats://flag:4222", "--jwt-secret", flagSecret}, e)
	eq(t, "Addr", c.node.Addr, ":2222")
	eq(t, "logLevel", c.logLevel, "warn")
	eq(t, "ReadLimit", c.node.Server.ReadLimit, int64(4096))
	eq(t, "NATSURL", c.node.NATSURL, "nats://flag:4222")
	eq(t, "HMACSecret", string(c.node.Auth.HMACSecret), flagSecret)

	c = mustParse(t, []string{"--max-conns=20", "--ready-fill", "0.5", "--trust-forwarded-for", "--drain-duration", "3s", "--client-rate=7"},
		env{"EDGE_JWT_SECRET": testSecret, "EDGE_MAX_CONNS": "10", "EDGE_READY_FILL": "0.8", "EDGE_TRUST_FORWARDED_FOR": "false", "EDGE_DRAIN_DURATION": "1s", "EDGE_CLIENT_RATE": "9"})
	eq(t, "MaxConns", c.node.Server.MaxConns, 20)
	eq(t, "ReadyFill", c.node.Server.ReadyFill, 0.5)
	eq(t, "TrustForwardedFor", c.node.Server.TrustForwardedFor, true)
	eq(t, "DrainDuration", c.node.DrainDuration, 3*time.Second)
	eq(t, "ClientRate", c.node.Session.ClientRate, 7.0)

	c = mustParse(t, nil, env{"EDGE_JWT_SECRET": testSecret, "EDGE_STATS_INTERVAL": "250ms"})
	eq(t, "StatsInterval", c.node.StatsInterval, 250*time.Millisecond)
}

func TestParseConfigPublicKey(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := writePublicKey(t, dir, "ec.pem", &ec.PublicKey)
	c := mustParse(t, nil, env{"EDGE_JWT_PUBLIC_KEY": path})
	if len(c.node.Auth.HMACSecret) != 0 {
		t.Error("HMACSecret set with a public key")
	}
	v, err := auth.NewVerifier(c.node.Auth)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if v.Algorithm() != "ES256" {
		t.Errorf("Algorithm = %s, want ES256", v.Algorithm())
	}
	// The flag beats the variable here too.
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPath := writePublicKey(t, dir, "ed.pem", pub)
	c = mustParse(t, []string{"--jwt-public-key", edPath}, env{"EDGE_JWT_PUBLIC_KEY": path})
	if v, err := auth.NewVerifier(c.node.Auth); err != nil || v.Algorithm() != "EdDSA" {
		t.Errorf("with --jwt-public-key: verifier %v, %v; want EdDSA", v, err)
	}
}

func writePublicKey(t *testing.T, dir, name string, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestParseConfigErrors(t *testing.T) {
	dir := t.TempDir()
	garbagePEM := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbagePEM, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortSecret := "short-s3cr3t-value"
	cases := []struct {
		name string
		args []string
		env  env // EDGE_JWT_SECRET=testSecret is added unless noSecret
		// noSecret leaves EDGE_JWT_SECRET unset.
		noSecret bool
		want     []string // substrings of the error
	}{
		{name: "missing JWT key", noSecret: true, want: []string{"no JWT key", "EDGE_JWT_SECRET", "EDGE_JWT_PUBLIC_KEY"}},
		{name: "secret too short", noSecret: true, env: env{"EDGE_JWT_SECRET": shortSecret}, want: []string{"--jwt-secret", "want at least 32"}},
		{name: "secret too short as flag", noSecret: true, args: []string{"--jwt-secret", shortSecret}, want: []string{"--jwt-secret", "want at least 32"}},
		{name: "secret and public key", env: env{"EDGE_JWT_PUBLIC_KEY": garbagePEM}, want: []string{"--jwt-secret (EDGE_JWT_SECRET)", "--jwt-public-key (EDGE_JWT_PUBLIC_KEY)", "not both"}},
		{name: "public key path missing", noSecret: true, env: env{"EDGE_JWT_PUBLIC_KEY": filepath.Join(dir, "nope.pem")}, want: []string{"--jwt-public-key (EDGE_JWT_PUBLIC_KEY)", "nope.pem"}},
		{name: "public key garbage", noSecret: true, args: []string{"--jwt-public-key", garbagePEM}, want: []string{"--jwt-public-key", "not a PEM"}},
		{name: "read limit not an integer", env: env{"EDGE_READ_LIMIT": "abc"}, want: []string{`EDGE_READ_LIMIT="abc"`, "want an integer"}},
		{name: "queue messages not an integer", env: env{"EDGE_QUEUE_MESSAGES": "1e3"}, want: []string{"EDGE_QUEUE_MESSAGES", "want an integer"}},
		{name: "read limit too small", env: env{"EDGE_READ_LIMIT": "100"}, want: []string{"--read-limit (EDGE_READ_LIMIT)", "between 1024 and 16777216"}},
		{name: "read limit too large", args: []string{"--read-limit", "16777217"}, want: []string{"--read-limit", "between"}},
		{name: "auth timeout without unit", env: env{"EDGE_AUTH_TIMEOUT": "5"}, want: []string{`EDGE_AUTH_TIMEOUT="5"`, "want a duration"}},
		{name: "auth timeout negative", env: env{"EDGE_AUTH_TIMEOUT": "-1s"}, want: []string{"--auth-timeout (EDGE_AUTH_TIMEOUT)", "must be positive"}},
		{name: "read header timeout zero", env: env{"EDGE_READ_HEADER_TIMEOUT": "0s"}, want: []string{"--read-header-timeout (EDGE_READ_HEADER_TIMEOUT)", "must be positive"}},
		{name: "write timeout zero", args: []string{"--write-timeout=0s"}, want: []string{"--write-timeout (EDGE_WRITE_TIMEOUT)", "must be positive"}},
		{name: "ping interval negative", env: env{"EDGE_PING_INTERVAL": "-5m"}, want: []string{"--ping-interval (EDGE_PING_INTERVAL)", "must be positive"}},
		{name: "ping timeout negative", args: []string{"-ping-timeout", "-1ms"}, want: []string{"--ping-timeout", "must be positive"}},
		{name: "shutdown timeout negative", env: env{"EDGE_SHUTDOWN_TIMEOUT": "-1s"}, want: []string{"--shutdown-timeout", "must be positive"}},
		{name: "stream max age negative", env: env{"EDGE_STREAM_MAX_AGE": "-1h"}, want: []string{"--stream-max-age", "must be positive"}},
		{name: "history reads zero", args: []string{"--history-reads=0"}, want: []string{"--history-reads (EDGE_HISTORY_READS): 0 must be between 1 and 10000"}},
		{name: "history reads too many", env: env{"EDGE_HISTORY_READS": "10001"}, want: []string{"--history-reads (EDGE_HISTORY_READS): 10001 must be between 1 and 10000"}},
		{name: "revocation ttl below 1s", args: []string{"--revocation-ttl=500ms"}, want: []string{"--revocation-ttl (EDGE_REVOCATION_TTL): 500ms must be at least 1s"}},
		{name: "expiring notice zero", env: env{"EDGE_EXPIRING_NOTICE": "0s"}, want: []string{"--expiring-notice (EDGE_EXPIRING_NOTICE) must be positive"}},
		{name: "leeway negative", env: env{"EDGE_JWT_LEEWAY": "-1s"}, want: []string{"--jwt-leeway (EDGE_JWT_LEEWAY)", "between 0s and 1m"}},
		{name: "leeway too large", env: env{"EDGE_JWT_LEEWAY": "2m"}, want: []string{"--jwt-leeway", "between 0s and 1m"}},
		{name: "queue bytes too small", env: env{"EDGE_QUEUE_BYTES": "100"}, want: []string{"--queue-bytes"}},
		{name: "max subscriptions zero", env: env{"EDGE_MAX_SUBSCRIPTIONS": "0"}, want: []string{"--max-subscriptions"}},
		{name: "bad log format", env: env{"EDGE_LOG_FORMAT": "xml"}, want: []string{"--log-format (EDGE_LOG_FORMAT)", `"xml"`, "want json or console"}},
		{name: "bad log level", args: []string{"--log-level", "trace"}, want: []string{"--log-level (EDGE_LOG_LEVEL)", `"trace"`}},
		{name: "bad addr", args: []string{"--addr", "8080"}, want: []string{"--addr (EDGE_ADDR)", `"8080" is not host:port`}},
		{name: "bad admin addr", env: env{"EDGE_ADMIN_ADDR": "localhost"}, want: []string{"--admin-addr (EDGE_ADMIN_ADDR)", "not host:port"}},
		{name: "bad embedded addr port", env: env{"EDGE_EMBEDDED_NATS_ADDR": "127.0.0.1:99999"}, want: []string{"--embedded-nats-addr (EDGE_EMBEDDED_NATS_ADDR)"}},
		{name: "embedded addr without port", env: env{"EDGE_EMBEDDED_NATS_ADDR": "127.0.0.1"}, want: []string{"--embedded-nats-addr"}},
		{name: "empty data dir", args: []string{"--data-dir="}, want: []string{"--data-dir (EDGE_DATA_DIR)", "required"}},
		{name: "node name with space", env: env{"EDGE_NODE_NAME": "edge 1"}, want: []string{"--node-name (EDGE_NODE_NAME)"}},
		{name: "node name too long", args: []string{"--node-name", strings.Repeat("n", 65)}, want: []string{"--node-name"}},
		{name: "stream replicas", env: env{"EDGE_STREAM_REPLICAS": "7"}, want: []string{"--stream-*", "replicas"}},
		{name: "stream duplicates beyond max age", env: env{"EDGE_STREAM_MAX_AGE": "1m", "EDGE_STREAM_DUPLICATES": "2m"}, want: []string{"--stream-*", "duplicate"}},
		{name: "max conns zero", env: env{"EDGE_MAX_CONNS": "0"}, want: []string{"--max-conns (EDGE_MAX_CONNS)", "at least 1"}},
		{name: "max conns per user negative", args: []string{"--max-conns-per-user", "-1"}, want: []string{"--max-conns-per-user (EDGE_MAX_CONNS_PER_USER)", "at least 1"}},
		{name: "max conns per ip not an integer", env: env{"EDGE_MAX_CONNS_PER_IP": "lots"}, want: []string{`EDGE_MAX_CONNS_PER_IP="lots"`, "want an integer"}},
		{name: "ready fill not a number", env: env{"EDGE_READY_FILL": "ninety"}, want: []string{`EDGE_READY_FILL="ninety"`, "want a number"}},
		{name: "ready fill zero", env: env{"EDGE_READY_FILL": "0"}, want: []string{"--ready-fill (EDGE_READY_FILL)", "greater than 0 and at most 1"}},
		{name: "ready fill above 1", args: []string{"--ready-fill", "1.01"}, want: []string{"--ready-fill", "at most 1"}},
		{name: "ready fill NaN", env: env{"EDGE_READY_FILL": "NaN"}, want: []string{"--ready-fill"}},
		{name: "high water above 1", env: env{"EDGE_QUEUE_HIGH_WATER": "2"}, want: []string{"--queue-high-water (EDGE_QUEUE_HIGH_WATER)", "at most 1"}},
		{name: "trust forwarded for not a bool", env: env{"EDGE_TRUST_FORWARDED_FOR": "maybe"}, want: []string{`EDGE_TRUST_FORWARDED_FOR="maybe"`, "want true or false"}},
		{name: "stats interval too short", args: []string{"--stats-interval", "10ms"}, want: []string{"--stats-interval (EDGE_STATS_INTERVAL)", "between 100ms and 1m"}},
		{name: "drain duration negative", env: env{"EDGE_DRAIN_DURATION": "-5s"}, want: []string{"--drain-duration (EDGE_DRAIN_DURATION)", "must not be negative"}},
		{name: "drain duration without unit", env: env{"EDGE_DRAIN_DURATION": "20"}, want: []string{`EDGE_DRAIN_DURATION="20"`, "want a duration"}},
		{name: "client rate zero", env: env{"EDGE_CLIENT_RATE": "0"}, want: []string{"--client-rate (EDGE_CLIENT_RATE)", "positive number"}},
		{name: "progress rate negative", args: []string{"--progress-rate=-1"}, want: []string{"--progress-rate (EDGE_PROGRESS_RATE)", "positive number"}},
		{name: "command rate infinite", env: env{"EDGE_COMMAND_RATE": "Inf"}, want: []string{"--command-rate (EDGE_COMMAND_RATE)", "positive number"}},
		{name: "low priority budget zero", env: env{"EDGE_LOW_PRIORITY_BUDGET": "0"}, want: []string{"--low-priority-budget (EDGE_LOW_PRIORITY_BUDGET)", "positive number"}},
		{name: "client burst zero", env: env{"EDGE_CLIENT_BURST": "0"}, want: []string{"--client-burst (EDGE_CLIENT_BURST)", "at least 1"}},
		{name: "command burst not an integer", env: env{"EDGE_COMMAND_BURST": "1.5"}, want: []string{"EDGE_COMMAND_BURST", "want an integer"}},
		{name: "ack rate zero", env: env{"EDGE_ACK_RATE": "0"}, want: []string{"--ack-rate (EDGE_ACK_RATE)", "positive number"}},
		{name: "ack burst zero", env: env{"EDGE_ACK_BURST": "0"}, want: []string{"--ack-burst (EDGE_ACK_BURST)", "at least 1"}},
		{name: "max coalesced logs zero", args: []string{"--max-coalesced-logs", "0"}, want: []string{"--max-coalesced-logs (EDGE_MAX_COALESCED_LOGS)", "at least 1"}},
		{name: "unknown flag", args: []string{"--bogus"}, want: []string{"bogus"}},
		{name: "bad flag value", args: []string{"--read-limit", "lots"}, want: []string{"read-limit", "lots"}},
		{name: "unexpected argument", args: []string{"serve"}, want: []string{`unexpected argument "serve"`}},
		{name: "long bad value clipped", env: env{"EDGE_AUTH_TIMEOUT": strings.Repeat("9", 200)}, want: []string{"EDGE_AUTH_TIMEOUT", strings.Repeat("9", 60) + "…"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			quietStderr(t)
			e := env{}
			if !tc.noSecret {
				e["EDGE_JWT_SECRET"] = testSecret
			}
			for k, v := range tc.env {
				e[k] = v
			}
			c, err := parseConfig(tc.args, e.get)
			if err == nil {
				t.Fatalf("parseConfig succeeded: %+v", c)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q, want it to contain %q", msg, w)
				}
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, secret := range []string{testSecret, shortSecret} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains the secret", msg)
				}
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	quietStderr(t)
	_, err := parseConfig([]string{"-h"}, env{}.get)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseConfig(-h) = %v, want flag.ErrHelp", err)
	}
}

func TestParseConfigPolicyAndNotice(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(good, []byte("rooms:\n  - match: project\n    maxClients: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rooms:\n  - match: project\n    maxClient: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := map[string]string{"EDGE_JWT_SECRET": strings.Repeat("s", 32)}
	getenv := func(k string) string { return secret[k] }
	c, err := parseConfig([]string{"--room-policy", good, "--expiring-notice", "30s", "--socket-send-buffer", "65536",
		"--compression", "on", "--compression-threshold", "256", "--admin-pprof", "--read-header-timeout", "3s", "--history-reads", "16"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.node.Policy == nil || c.node.Session.ExpiringNotice != 30*time.Second || c.node.SocketSendBuffer != 65536 ||
		!c.node.Server.Compression || c.node.Server.CompressionThreshold != 256 || !c.node.AdminPprof ||
		c.node.Server.ReadHeaderTimeout != 3*time.Second || c.node.History.MaxInFlight != 16 {
		t.Fatalf("options %+v", c.node)
	}
	if c, err := parseConfig(nil, getenv); err != nil || c.node.Server.Compression || c.node.AdminPprof || c.node.History.MaxInFlight != history.DefaultMaxInFlight {
		t.Fatalf("defaults: compression %v, pprof %v, history reads %d, %v; want both off and %d", c.node.Server.Compression, c.node.AdminPprof, c.node.History.MaxInFlight, err, history.DefaultMaxInFlight)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--room-policy", bad}, "maxClient"},
		{[]string{"--room-policy", filepath.Join(dir, "missing.yaml")}, "EDGE_ROOM_POLICY"},
		{[]string{"--expiring-notice", "0s"}, "EDGE_EXPIRING_NOTICE"},
		{[]string{"--socket-send-buffer", "-1"}, "EDGE_SOCKET_SEND_BUFFER"},
		{[]string{"--compression", "gzip"}, "EDGE_COMPRESSION"},
		{[]string{"--compression-threshold", "0"}, "EDGE_COMPRESSION_THRESHOLD"},
	} {
		_, err := parseConfig(tc.args, getenv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
