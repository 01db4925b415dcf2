package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// env is a fake environment for parseConfig.
type env map[string]string

func (e env) get(k string) string { return e[k] }

// secret is a development secret of the minimum length.
const secret = "config-test-secret-0123456789abc"

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env{}.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := c.service
	if o.Addr != ":8082" || o.AdminAddr != ":9094" || o.ShutdownTimeout != 10*time.Second {
		t.Errorf("listeners %q %q, shutdown %s; want :8082 :9094 10s", o.Addr, o.AdminAddr, o.ShutdownTimeout)
	}
	s := o.Server
	if s.EdgeURL != "ws://localhost:8080/v1/ws" || s.APIURL != "http://localhost:8081" || s.Dev || s.DevSecret != nil ||
		s.DevTokenTTL != time.Hour || s.LoginURL != "" {
		t.Errorf("server options %+v", s)
	}
	if c.logLevel != "info" || c.logFormat != "json" {
		t.Errorf("log %s/%s, want info/json", c.logLevel, c.logFormat)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	e := env{
		"DASHBOARD_ADDR": "127.0.0.1:9000", "DASHBOARD_ADMIN_ADDR": "127.0.0.1:9001",
		"DASHBOARD_EDGE_URL": "wss://edge.example.com/v1/ws", "DASHBOARD_API_URL": "https://api.example.com/",
		"DASHBOARD_DEV": "true", "DASHBOARD_DEV_JWT_SECRET": secret, "DASHBOARD_DEV_TOKEN_TTL": "2h",
		"DASHBOARD_LOGIN_URL": "https://app.example.com/login", "DASHBOARD_SHUTDOWN_TIMEOUT": "3s",
		"DASHBOARD_LOG_LEVEL": "debug", "DASHBOARD_LOG_FORMAT": "console",
	}
	c, err := parseConfig(nil, e.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := c.service
	s := o.Server
	if o.Addr != "127.0.0.1:9000" || o.AdminAddr != "127.0.0.1:9001" || o.ShutdownTimeout != 3*time.Second ||
		s.EdgeURL != "wss://edge.example.com/v1/ws" || s.APIURL != "https://api.example.com" || !s.Dev ||
		string(s.DevSecret) != secret || s.DevTokenTTL != 2*time.Hour || s.LoginURL != "https://app.example.com/login" ||
		c.logLevel != "debug" || c.logFormat != "console" {
		t.Errorf("from the environment: %+v, log %s/%s", o, c.logLevel, c.logFormat)
	}

	// Flags win over their variables.
	c, err = parseConfig([]string{
		"--addr", "127.0.0.1:8000", "--admin-addr", "127.0.0.1:8001", "--edge-url", "/v1/ws", "--api-url", "/api/",
		"--dev=false", "--dev-jwt-secret", "", "--dev-token-ttl", "1m", "--login-url", "/sso", "--shutdown-timeout", "1s",
		"--log-level", "warn", "--log-format", "json",
	}, e.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, s = c.service, c.service.Server
	if o.Addr != "127.0.0.1:8000" || o.AdminAddr != "127.0.0.1:8001" || o.ShutdownTimeout != time.Second ||
		s.EdgeURL != "/v1/ws" || s.APIURL != "/api" || s.Dev || s.DevSecret != nil || s.DevTokenTTL != time.Minute ||
		s.LoginURL != "/sso" || c.logLevel != "warn" || c.logFormat != "json" {
		t.Errorf("flags over the environment: %+v, log %s/%s", o, c.logLevel, c.logFormat)
	}

	// --dev as a flag with the secret from the environment, as devrun runs it.
	c, err = parseConfig([]string{"--dev"}, env{"DASHBOARD_DEV_JWT_SECRET": secret}.get, io.Discard)
	if err != nil || !c.service.Server.Dev || string(c.service.Server.DevSecret) != secret {
		t.Errorf("--dev with DASHBOARD_DEV_JWT_SECRET: %v, %+v", err, c)
	}
	// Port 0 twice: two free ports.
	if _, err := parseConfig([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, env{}.get, io.Discard); err != nil {
		t.Errorf("both on port 0: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dev := env{"DASHBOARD_DEV": "1", "DASHBOARD_DEV_JWT_SECRET": secret}
	for _, tc := range []struct {
		args []string
		env  env
		want string
	}{
		{[]string{"--bogus"}, nil, "flag provided but not defined: -bogus"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--dev-token-ttl", "soon"}, nil, `invalid value "soon" for flag -dev-token-ttl`},
		{nil, env{"DASHBOARD_DEV_TOKEN_TTL": "soon"}, `DASHBOARD_DEV_TOKEN_TTL="soon": want a duration`},
		{nil, env{"DASHBOARD_SHUTDOWN_TIMEOUT": "long"}, `DASHBOARD_SHUTDOWN_TIMEOUT="long": want a duration`},
		{nil, env{"DASHBOARD_DEV": "maybe"}, `DASHBOARD_DEV="maybe": want true or false`},
		{[]string{"--addr", "8082"}, nil, `--addr (DASHBOARD_ADDR): "8082" is not host:port`},
		{[]string{"--addr", ":http"}, nil, `--addr (DASHBOARD_ADDR): ":http" is not host:port`},
		{[]string{"--admin-addr", "localhost"}, nil, `--admin-addr (DASHBOARD_ADMIN_ADDR): "localhost" is not host:port`},
		{nil, env{"DASHBOARD_ADMIN_ADDR": ":99999"}, `--admin-addr (DASHBOARD_ADMIN_ADDR): ":99999" is not host:port`},
		{[]string{"--addr", ":9000", "--admin-addr", ":9000"}, nil, `--admin-addr (DASHBOARD_ADMIN_ADDR): ":9000" is also the --addr`},
		{[]string{"--edge-url", "http://localhost:8080/v1/ws"}, nil, "--edge-url (DASHBOARD_EDGE_URL): \"http://localhost:8080/v1/ws\": want a ws:// or wss:// URL or a path starting with /"},
		{[]string{"--edge-url", "ws://localhost:8080/ws"}, nil, "--edge-url (DASHBOARD_EDGE_URL): \"ws://localhost:8080/ws\": path must end in /v1/ws"},
		{[]string{"--edge-url", "ws://localhost:8080/v1/ws?x=1"}, nil, "--edge-url (DASHBOARD_EDGE_URL): \"ws://localhost:8080/v1/ws?x=1\": a query or fragment is not allowed"},
		{[]string{"--edge-url", "ws://localhost:8080/v1/ws#x"}, nil, "a query or fragment is not allowed"},
		{[]string{"--edge-url", "v1/ws"}, nil, "--edge-url (DASHBOARD_EDGE_URL): \"v1/ws\": want a ws:// or wss:// URL"},
		{[]string{"--edge-url", ""}, nil, "--edge-url (DASHBOARD_EDGE_URL): empty"},
		{[]string{"--api-url", "ws://api"}, nil, "--api-url (DASHBOARD_API_URL): \"ws://api\": want a http:// or https:// URL or a path starting with /"},
		{[]string{"--api-url", "/"}, nil, `--api-url (DASHBOARD_API_URL): "/": "/" is the root path`},
		{[]string{"--api-url", "http://api/?q"}, nil, "--api-url (DASHBOARD_API_URL): \"http://api/?q\": a query or fragment is not allowed"},
		{[]string{"--login-url", "login"}, nil, "--login-url (DASHBOARD_LOGIN_URL): \"login\": want a http:// or https:// URL or a path starting with /"},
		{[]string{"--login-url", "javascript:alert(1)"}, nil, "--login-url (DASHBOARD_LOGIN_URL): "},
		{[]string{"--dev"}, nil, "--dev-jwt-secret (DASHBOARD_DEV_JWT_SECRET): required with --dev"},
		{[]string{"--dev", "--dev-jwt-secret", "short-secret"}, nil, "--dev-jwt-secret (DASHBOARD_DEV_JWT_SECRET): 12 bytes, want at least 32"},
		{nil, env{"DASHBOARD_DEV_JWT_SECRET": secret}, "--dev-jwt-secret (DASHBOARD_DEV_JWT_SECRET): set without --dev (DASHBOARD_DEV)"},
		{[]string{"--dev=false"}, dev, "--dev-jwt-secret (DASHBOARD_DEV_JWT_SECRET): set without --dev"},
		{[]string{"--dev-token-ttl", "59s"}, dev, "--dev-token-ttl (DASHBOARD_DEV_TOKEN_TTL): 59s, want 1m to 24h"},
		{[]string{"--dev-token-ttl", "25h"}, dev, "--dev-token-ttl (DASHBOARD_DEV_TOKEN_TTL): 25h0m0s, want 1m to 24h"},
		{[]string{"--dev-token-ttl", "-1h"}, nil, "--dev-token-ttl (DASHBOARD_DEV_TOKEN_TTL): -1h0m0s, want 1m to 24h"},
		{[]string{"--shutdown-timeout", "0s"}, nil, "--shutdown-timeout (DASHBOARD_SHUTDOWN_TIMEOUT): 0s must be positive"},
		{[]string{"--log-format", "xml"}, nil, `--log-format (DASHBOARD_LOG_FORMAT): "xml", want json or console`},
		{[]string{"--log-level", "loud"}, nil, `--log-level (DASHBOARD_LOG_LEVEL): "loud", want debug, info, warn or error`},
	} {
		_, err := parseConfig(tc.args, tc.env.get, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error containing %q", tc.args, tc.env, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("parseConfig(%q): error spans lines: %q", tc.args, err)
		}
	}
}

// TestConfigNeverEchoesTheSecret: an error about the secret names its
// length, never its value.
func TestConfigNeverEchoesTheSecret(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
	}{
		{[]string{"--dev", "--dev-jwt-secret", "hunter2-hunter2"}, nil},
		{nil, env{"DASHBOARD_DEV_JWT_SECRET": "hunter2-hunter2"}},
		{[]string{"--dev-jwt-secret", "hunter2-hunter2"}, nil},
	} {
		_, err := parseConfig(tc.args, tc.env.get, io.Discard)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseConfig(%v, %v) = %v: want an error without the secret", tc.args, tc.env, err)
		}
	}
}

func TestConfigHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env{}.get, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseConfig(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{
		"-addr", "DASHBOARD_ADDR", "-admin-addr", "DASHBOARD_ADMIN_ADDR", "-edge-url", "DASHBOARD_EDGE_URL",
		"-api-url", "DASHBOARD_API_URL", "-dev", "DASHBOARD_DEV", "-dev-jwt-secret", "DASHBOARD_DEV_JWT_SECRET",
		"-dev-token-ttl", "DASHBOARD_DEV_TOKEN_TTL", "-login-url", "DASHBOARD_LOGIN_URL",
		"-shutdown-timeout", "DASHBOARD_SHUTDOWN_TIMEOUT", "-log-level", "DASHBOARD_LOG_LEVEL", "-log-format", "DASHBOARD_LOG_FORMAT",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
