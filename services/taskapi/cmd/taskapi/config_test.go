package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testSecret = "taskapi-test-secret-0123456789abcdef-01"

type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env{"TASKAPI_JWT_SECRET": testSecret}.get)
	if err != nil {
		t.Fatal(err)
	}
	s := c.service
	if s.Addr != ":8081" || s.AdminAddr != ":9091" || s.NATSURL != "nats://127.0.0.1:4222" ||
		!slices.Equal(s.AllowedOrigins, []string{"http://localhost:8082"}) || s.SweepInterval != 5*time.Second ||
		!slices.Equal(s.ExecCommands, []string{"echo-ok", "fail", "sleep"}) || string(s.Auth.HMACSecret) != testSecret {
		t.Errorf("defaults = %+v", s)
	}
	if c.logFormat != "json" || c.logLevel != "info" {
		t.Errorf("log = %s %s", c.logFormat, c.logLevel)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	e := env{
		"TASKAPI_JWT_SECRET":      testSecret,
		"TASKAPI_ADDR":            "127.0.0.1:1111",
		"TASKAPI_ADMIN_ADDR":      "127.0.0.1:2222",
		"NATS_URL":                "nats://10.0.0.1:4222",
		"TASKAPI_ALLOWED_ORIGINS": "https://a.example, http://localhost:3000",
		"TASKAPI_EXEC_COMMANDS":   "build,test",
		"TASKAPI_SWEEP_INTERVAL":  "2s",
	}
	c, err := parseConfig([]string{"--addr", "127.0.0.1:3333", "--log-format", "console"}, e.get)
	if err != nil {
		t.Fatal(err)
	}
	s := c.service
	if s.Addr != "127.0.0.1:3333" {
		t.Errorf("addr = %s: the flag must win over TASKAPI_ADDR", s.Addr)
	}
	if s.AdminAddr != "127.0.0.1:2222" || s.NATSURL != "nats://10.0.0.1:4222" || s.SweepInterval != 2*time.Second ||
		!slices.Equal(s.AllowedOrigins, []string{"https://a.example", "http://localhost:3000"}) || !slices.Equal(s.ExecCommands, []string{"build", "test"}) {
		t.Errorf("config = %+v", s)
	}
	if c.logFormat != "console" {
		t.Errorf("log format %s", c.logFormat)
	}
}

func TestParseConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(notPEM, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok := env{"TASKAPI_JWT_SECRET": testSecret}
	for _, tc := range []struct {
		args []string
		env  env
		want string
	}{
		{nil, env{}, "no JWT key"},
		{nil, env{"TASKAPI_JWT_SECRET": "short"}, "at least 32"},
		{[]string{"--jwt-public-key", notPEM}, ok, "not both"},
		{[]string{"--jwt-public-key", notPEM}, env{}, "public key"},
		{[]string{"--jwt-public-key", filepath.Join(dir, "missing")}, env{}, "jwt-public-key"},
		{[]string{"--addr", "8081"}, ok, "--addr"},
		{nil, env{"TASKAPI_JWT_SECRET": testSecret, "TASKAPI_ADMIN_ADDR": "nope"}, "TASKAPI_ADMIN_ADDR"},
		{[]string{"--sweep-interval", "0s"}, ok, "--sweep-interval"},
		{nil, env{"TASKAPI_JWT_SECRET": testSecret, "TASKAPI_SWEEP_INTERVAL": "soon"}, "TASKAPI_SWEEP_INTERVAL"},
		{[]string{"--allowed-origins", "localhost:8082"}, ok, "--allowed-origins"},
		{[]string{"--exec-commands", "rm -rf"}, ok, "--exec-commands"},
		{[]string{"--log-format", "xml"}, ok, "--log-format"},
		{[]string{"--log-level", "loud"}, ok, "--log-level"},
		{[]string{"extra"}, ok, "unexpected argument"},
	} {
		_, err := parseConfig(tc.args, tc.env.get)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("an error echoes the secret: %v", err)
		}
	}
}
