package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env{}.get)
	if err != nil {
		t.Fatal(err)
	}
	s, w := c.service, c.service.Worker
	if s.AdminAddr != ":9092" || s.NATSURL != "nats://127.0.0.1:4222" || w.Concurrency != 2 || w.MaxDeliver != 5 ||
		w.AckWait != 30*time.Second || w.Heartbeat != 10*time.Second || w.Demo.Duration != 6500*time.Millisecond ||
		!slices.Equal(w.AllowList.Names(), []string{"echo-ok", "fail", "sleep"}) || w.Name == "" {
		t.Errorf("defaults = %+v", s)
	}
	if args := w.AllowList["echo-ok"]; args.Path != "/bin/echo" || !slices.Equal(args.Args, []string{"ok"}) {
		t.Errorf("echo-ok = %+v", args)
	}
}

func TestParseConfigEnvAndFlags(t *testing.T) {
	e := env{
		"WORKER_CONCURRENCY": "4",
		"WORKER_NAME":        "env-name",
		"WORKER_EXEC_ALLOW":  "hi=/bin/echo hi",
		"NATS_URL":           "nats://10.0.0.2:4222",
		"WORKER_ACK_WAIT":    "1m",
	}
	c, err := parseConfig([]string{"--name", "flag-name", "--demo-duration", "1s"}, e.get)
	if err != nil {
		t.Fatal(err)
	}
	w := c.service.Worker
	if w.Name != "flag-name" || w.Concurrency != 4 || !slices.Equal(w.AllowList.Names(), []string{"hi"}) ||
		c.service.NATSURL != "nats://10.0.0.2:4222" || w.AckWait != time.Minute || w.Demo.Duration != time.Second {
		t.Errorf("config = %+v", c.service)
	}
	c, err = parseConfig([]string{"--exec-allow", ""}, env{}.get)
	if err != nil || len(c.service.Worker.AllowList) != 0 {
		t.Errorf("empty allow-list: %v %v", c, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want string
	}{
		{[]string{"--concurrency", "0"}, env{}, "--concurrency"},
		{nil, env{"WORKER_CONCURRENCY": "many"}, "WORKER_CONCURRENCY"},
		{[]string{"--name", "a b"}, env{}, "--name"},
		{[]string{"--exec-allow", "x=relative"}, env{}, "--exec-allow"},
		{[]string{"--exec-allow", "x=/nonexistent/bin"}, env{}, "--exec-allow"},
		{[]string{"--heartbeat", "30s"}, env{}, "--heartbeat"},
		{[]string{"--ack-wait", "0s"}, env{}, "--ack-wait"},
		{[]string{"--max-deliver", "0"}, env{}, "--max-deliver"},
		{[]string{"--admin-addr", "9092"}, env{}, "--admin-addr"},
		{[]string{"--log-format", "xml"}, env{}, "--log-format"},
		{[]string{"extra"}, env{}, "unexpected argument"},
	} {
		if _, err := parseConfig(tc.args, tc.env.get); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestDefaultName(t *testing.T) {
	if n := defaultName(); len(n) == 0 || len(n) > 64 || strings.ContainsAny(n, " \t") {
		t.Errorf("defaultName() = %q", n)
	}
}
