package server_test

import (
	"strings"
	"testing"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
)

func TestClientURL(t *testing.T) {
	for _, tc := range []struct {
		edge, client string
	}{
		{"ws://localhost:8080/v1/ws", "http://localhost:8080/v1/client.js"},
		{"wss://edge.example.com/v1/ws", "https://edge.example.com/v1/client.js"},
		{"wss://edge.example.com:8443/realtime/v1/ws", "https://edge.example.com:8443/realtime/v1/client.js"},
		{"WSS://Edge.Example.com/v1/ws", "https://Edge.Example.com/v1/client.js"},
		{"ws://127.0.0.1:8080/v1/ws", "http://127.0.0.1:8080/v1/client.js"},
		{"ws://[::1]:8080/v1/ws", "http://[::1]:8080/v1/client.js"},
		{"ws://edge_1:8080/v1/ws", "http://edge_1:8080/v1/client.js"},
		{"/v1/ws", "/v1/client.js"},
		{"/edge/v1/ws", "/edge/v1/client.js"},
		{"/a%20b/v1/ws", "/a%20b/v1/client.js"},
	} {
		got, err := server.ClientURL(tc.edge)
		if err != nil || got != tc.client {
			t.Errorf("ClientURL(%q) = %q, %v; want %q", tc.edge, got, err, tc.client)
		}
	}
}

func TestClientURLErrors(t *testing.T) {
	for _, tc := range []struct {
		edge, want string
	}{
		{"", "empty"},
		{"http://localhost:8080/v1/ws", "want a ws:// or wss:// URL or a path starting with /"},
		{"localhost:8080/v1/ws", "want a ws:// or wss:// URL or a path"},
		{"v1/ws", "want a ws:// or wss:// URL or a path"},
		{"//evil.example/v1/ws", "want a ws:// or wss:// URL or a path"},
		{`/\evil.example/v1/ws`, "spaces and backslashes are not allowed"},
		{"/a b/v1/ws", "spaces and backslashes are not allowed"},
		{"ws:opaque/v1/ws", "want a ws:// or wss:// URL"},
		{"ws:///v1/ws", "want a ws:// or wss:// URL"},
		{"ws://localhost:8080/ws", "path must end in /v1/ws"},
		{"ws://localhost:8080/v1/ws/", "path must end in /v1/ws"},
		{"ws://localhost:8080", "path must end in /v1/ws"},
		{"/v1/wss", "path must end in /v1/ws"},
		{"ws://localhost:8080/v1/ws?token=x", "a query or fragment is not allowed"},
		{"ws://localhost:8080/v1/ws?", "a query or fragment is not allowed"},
		{"ws://localhost:8080/v1/ws#x", "a query or fragment is not allowed"},
		{"/v1/ws#", "a query or fragment is not allowed"},
		{"ws://user:pw@localhost:8080/v1/ws", "user info is not allowed"},
		{"ws://a;b/v1/ws", `host "a;b"`},
		{"ws://a'b/v1/ws", `host "a'b"`},
		{"ws://-a/v1/ws", `host "-a"`},
		{"ws://[1.2.3.4]/v1/ws", "not a URL"},
		{"ws://[fe80::1%25en0]/v1/ws", "is not an IPv6 address"},
		{"ws://localhost:/v1/ws", "empty port"},
		{"ws://localhost:0/v1/ws", `port "0"`},
		{"ws://localhost:70000/v1/ws", `port "70000"`},
		{"ws://local\x7fhost/v1/ws", "not a URL"},
	} {
		got, err := server.ClientURL(tc.edge)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ClientURL(%q) = %q, %v; want an error containing %q", tc.edge, got, err, tc.want)
		}
	}
}

func TestCleanAPIURL(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "http://localhost:8081", want: "http://localhost:8081"},
		{in: "http://localhost:8081/", want: "http://localhost:8081"},
		{in: "https://api.example.com/tasks//", want: "https://api.example.com/tasks"},
		{in: "HTTPS://api.example.com", want: "https://api.example.com"},
		{in: "/api", want: "/api"},
		{in: "/api/", want: "/api"},
		{in: "/", err: `"/" is the root path`},
		{in: "//", err: "want a http:// or https:// URL or a path"},
		{in: "", err: "empty"},
		{in: "ws://localhost:8081", err: "want a http:// or https:// URL or a path"},
		{in: "api", err: "want a http:// or https:// URL or a path"},
		{in: "http://localhost:8081/?x=1", err: "a query or fragment is not allowed"},
		{in: "http://localhost:8081#top", err: "a query or fragment is not allowed"},
		{in: "http://u@localhost:8081", err: "user info is not allowed"},
		{in: "http://a b", err: "spaces and backslashes"},
		{in: "http://a,b", err: `host "a,b"`},
	} {
		got, err := server.CleanAPIURL(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("CleanAPIURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CleanAPIURL(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestCheckLoginURL(t *testing.T) {
	for _, ok := range []string{"", "https://app.example.com/login", "http://localhost:3000/login?next=dashboard#top", "/login", "/sso/start?to=dashboard"} {
		if err := server.CheckLoginURL(ok); err != nil {
			t.Errorf("CheckLoginURL(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"login", "//evil.example/login", "javascript:alert(1)", "ftp://x/login", "https://u:p@x/login", "https:///login", `/\evil.example`} {
		if err := server.CheckLoginURL(bad); err == nil {
			t.Errorf("CheckLoginURL(%q) = nil, want an error", bad)
		}
	}
}
