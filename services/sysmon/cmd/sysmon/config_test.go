package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
	"github.com/eventedge/eventedge/services/sysmon/internal/service"
)

// env is a fake environment for parseConfig.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env{}.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := service.Options{
		NATSURL: "nats://127.0.0.1:4222", AdminAddr: ":9093", Interval: 10 * time.Second,
		CheckInterval: time.Second, ProbeInterval: 2 * time.Second,
		Monitor: monitor.Options{NodeSilence: 15 * time.Second, NodeForget: time.Hour, MaxP99: 100 * time.Millisecond, MaxDrops: 10, MaxStreamFill: 0.9},
	}
	got := c.service
	if got.NATSURL != want.NATSURL || got.AdminAddr != want.AdminAddr || got.NATSMonitorURL != "" || got.Interval != want.Interval ||
		got.CheckInterval != want.CheckInterval || got.ProbeInterval != want.ProbeInterval ||
		got.Monitor.NodeSilence != want.Monitor.NodeSilence || got.Monitor.NodeForget != want.Monitor.NodeForget ||
		got.Monitor.MaxP99 != want.Monitor.MaxP99 || got.Monitor.MaxDrops != want.Monitor.MaxDrops || got.Monitor.MaxStreamFill != want.Monitor.MaxStreamFill {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
	if c.logLevel != "info" || c.logFormat != "json" {
		t.Errorf("log %s/%s, want info/json", c.logLevel, c.logFormat)
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	e := env{
		"NATS_URL": "nats://10.0.0.1:4222", "SYSMON_ADMIN_ADDR": "127.0.0.1:9999",
		"SYSMON_NATS_MONITOR_URL": "http://127.0.0.1:8222/varz", "SYSMON_INTERVAL": "30s",
		"SYSMON_NODE_SILENCE": "20s", "SYSMON_MAX_P99": "250ms", "SYSMON_MAX_DROPS": "3.5",
		"SYSMON_MAX_STREAM_FILL": "0.75", "SYSMON_LOG_LEVEL": "debug",
	}
	// Flags win over their variables.
	c, err := parseConfig([]string{"--interval", "5s", "--max-drops", "0", "--log-format", "console"}, e.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := c.service
	if o.NATSURL != "nats://10.0.0.1:4222" || o.AdminAddr != "127.0.0.1:9999" || o.NATSMonitorURL != "http://127.0.0.1:8222/varz" {
		t.Errorf("addresses = %q %q %q", o.NATSURL, o.AdminAddr, o.NATSMonitorURL)
	}
	if o.Interval != 5*time.Second || o.Monitor.NodeSilence != 20*time.Second || o.Monitor.MaxP99 != 250*time.Millisecond || o.Monitor.MaxStreamFill != 0.75 {
		t.Errorf("thresholds = %+v", o)
	}
	if o.Monitor.MaxDrops != -1 {
		t.Errorf("--max-drops 0 → MaxDrops %v, want -1 (any drop)", o.Monitor.MaxDrops)
	}
	if c.logLevel != "debug" || c.logFormat != "console" {
		t.Errorf("log %s/%s, want debug/console", c.logLevel, c.logFormat)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want string
	}{
		{[]string{"--bogus"}, nil, "flag provided but not defined: -bogus"},
		{[]string{"--interval", "soon"}, nil, `invalid value "soon" for flag -interval`},
		{nil, env{"SYSMON_INTERVAL": "soon"}, `SYSMON_INTERVAL="soon": want a duration`},
		{nil, env{"SYSMON_MAX_DROPS": "many"}, `SYSMON_MAX_DROPS="many": want a number`},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--interval", "0s"}, nil, "--interval (SYSMON_INTERVAL): 0s must be positive"},
		{[]string{"--node-silence", "-1s"}, nil, "--node-silence (SYSMON_NODE_SILENCE): -1s must be positive"},
		{[]string{"--max-p99", "0s"}, nil, "--max-p99 (SYSMON_MAX_P99): 0s must be positive"},
		{[]string{"--interval", "500ms"}, nil, "must not be shorter than --check-interval"},
		{[]string{"--node-forget", "10s"}, nil, "must not be shorter than --node-silence"},
		{[]string{"--max-drops", "-1"}, nil, "--max-drops (SYSMON_MAX_DROPS): -1 must be a number >= 0"},
		{[]string{"--max-stream-fill", "1.5"}, nil, "--max-stream-fill (SYSMON_MAX_STREAM_FILL): 1.5 must be greater than 0 and at most 1"},
		{[]string{"--max-stream-fill", "0"}, nil, "must be greater than 0"},
		{[]string{"--nats-url", " "}, nil, "--nats-url (NATS_URL): required"},
		{[]string{"--admin-addr", "9093"}, nil, `--admin-addr (SYSMON_ADMIN_ADDR): "9093" is not host:port`},
		{[]string{"--nats-monitor-url", "127.0.0.1:8222/varz"}, nil, "is not an http(s) URL"},
		{[]string{"--nats-monitor-url", "ftp://x/varz"}, nil, "is not an http(s) URL"},
		{[]string{"--log-format", "xml"}, nil, `--log-format (SYSMON_LOG_FORMAT): "xml", want json or console`},
		{[]string{"--log-level", "loud"}, nil, `--log-level (SYSMON_LOG_LEVEL): "loud"`},
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

func TestConfigHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env{}.get, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseConfig(-h) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-nats-url", "NATS_URL", "-node-silence", "SYSMON_NODE_SILENCE", "-max-p99", "-max-drops", "-nats-monitor-url"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}
