package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
	"github.com/eventedge/eventedge/services/sysmon/internal/service"
)

// config is everything sysmon reads from flags and the environment.
type config struct {
	service   service.Options
	logLevel  string
	logFormat string
}

// parseConfig reads args and the environment (through getenv) into a
// validated config. Errors are one line naming the flag and its variable.
// With -h the usage goes to usage and the error is flag.ErrHelp.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("sysmon", flag.ContinueOnError)
	// Errors are returned, not printed with the whole usage: the caller
	// prints them as one line.
	fs.SetOutput(io.Discard)
	// envOf maps flag names to their environment mirrors. A set variable is
	// applied before the command line, so a flag wins over its variable.
	envOf := map[string]string{}

	var (
		natsURL, monitorURL, adminAddr         string
		interval, checkInterval, probeInterval time.Duration
		nodeSilence, nodeForget, maxP99        time.Duration
		maxDrops, maxStreamFill                float64
	)
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	float := func(p *float64, name, env string, def float64, usage string) {
		fs.Float64Var(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}

	str(&natsURL, "nats-url", "NATS_URL", service.DefaultNATSURL, "NATS server URL(s), comma separated")
	str(&adminAddr, "admin-addr", "SYSMON_ADMIN_ADDR", service.DefaultAdminAddr, "admin listen address (/metrics, /healthz, /readyz)")
	str(&monitorURL, "nats-monitor-url", "SYSMON_NATS_MONITOR_URL", "", "NATS monitoring endpoint read at every probe, e.g. http://127.0.0.1:8222/varz; empty: not read")
	dur(&interval, "interval", "SYSMON_INTERVAL", service.DefaultInterval, "how often system_status is published when nothing changes (a change is published at once)")
	dur(&checkInterval, "check-interval", "SYSMON_CHECK_INTERVAL", service.DefaultCheckInterval, "how often the status is decided again without new input (bounds how late a silent node is noticed)")
	dur(&probeInterval, "probe-interval", "SYSMON_PROBE_INTERVAL", service.DefaultProbeInterval, "how often NATS, JetStream, the monitoring endpoint and the host are probed")
	dur(&nodeSilence, "node-silence", "SYSMON_NODE_SILENCE", monitor.DefaultNodeSilence, "an edge node (or worker) without stats this long is silent: degraded, with an alert")
	dur(&nodeForget, "node-forget", "SYSMON_NODE_FORGET", monitor.DefaultNodeForget, "a node silent this long is forgotten and its alert cleared (scaled-away nodes)")
	dur(&maxP99, "max-p99", "SYSMON_MAX_P99", monitor.DefaultMaxP99, "p99 delivery latency of an edge node above which the system is degraded")
	float(&maxDrops, "max-drops", "SYSMON_MAX_DROPS", monitor.DefaultMaxDrops, "dropped events per second of an edge node above which the system is degraded (0: any drop)")
	float(&maxStreamFill, "max-stream-fill", "SYSMON_MAX_STREAM_FILL", monitor.DefaultMaxStreamFill, "fill (0-1] of an EVENTS stream or JetStream account limit above which the system is degraded")
	str(&c.logLevel, "log-level", "SYSMON_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.logFormat, "log-format", "SYSMON_LOG_FORMAT", "json", "log format: json or console")

	for name, env := range envOf {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %s", env, clip(v), wantOf(fs.Lookup(name)))
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(usage, "Usage: sysmon [flags]\n\nsysmon decides the health of eventedge and publishes system_status to the global room.\nEvery flag has an environment mirror; a flag wins over its variable.")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", clip(fs.Arg(0)))
	}
	flagName := func(name string) string { return "--" + name + " (" + envOf[name] + ")" }

	for _, p := range []struct {
		name string
		d    time.Duration
	}{
		{"interval", interval}, {"check-interval", checkInterval}, {"probe-interval", probeInterval},
		{"node-silence", nodeSilence}, {"node-forget", nodeForget}, {"max-p99", maxP99},
	} {
		if p.d <= 0 {
			return nil, fmt.Errorf("%s: %s must be positive", flagName(p.name), p.d)
		}
	}
	if interval < checkInterval {
		return nil, fmt.Errorf("%s: %s must not be shorter than --check-interval %s", flagName("interval"), interval, checkInterval)
	}
	if nodeForget < nodeSilence {
		return nil, fmt.Errorf("%s: %s must not be shorter than --node-silence %s", flagName("node-forget"), nodeForget, nodeSilence)
	}
	if maxDrops < 0 || math.IsNaN(maxDrops) || math.IsInf(maxDrops, 0) {
		return nil, fmt.Errorf("%s: %g must be a number >= 0", flagName("max-drops"), maxDrops)
	}
	if !(maxStreamFill > 0 && maxStreamFill <= 1) {
		return nil, fmt.Errorf("%s: %g must be greater than 0 and at most 1", flagName("max-stream-fill"), maxStreamFill)
	}
	if strings.TrimSpace(natsURL) == "" {
		return nil, fmt.Errorf("%s: required", flagName("nats-url"))
	}
	if _, _, err := net.SplitHostPort(adminAddr); err != nil {
		return nil, fmt.Errorf("%s: %q is not host:port", flagName("admin-addr"), clip(adminAddr))
	}
	if monitorURL != "" {
		u, err := url.Parse(monitorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not an http(s) URL", flagName("nats-monitor-url"), clip(monitorURL))
		}
	}
	switch c.logFormat {
	case "json", "console":
	default:
		return nil, fmt.Errorf("%s: %q, want json or console", flagName("log-format"), clip(c.logFormat))
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("%s: %q, want debug, info, warn or error", flagName("log-level"), clip(c.logLevel))
	}

	if maxDrops == 0 {
		maxDrops = -1 // explicit zero: any drop degrades (the options' zero means the default)
	}
	c.service = service.Options{
		NATSURL:        natsURL,
		NATSMonitorURL: monitorURL,
		AdminAddr:      adminAddr,
		Interval:       interval,
		CheckInterval:  checkInterval,
		ProbeInterval:  probeInterval,
		Monitor: monitor.Options{
			NodeSilence:   nodeSilence,
			NodeForget:    nodeForget,
			MaxP99:        maxP99,
			MaxDrops:      maxDrops,
			MaxStreamFill: maxStreamFill,
		},
	}
	return c, nil
}

// wantOf describes the values flag f accepts, for error messages.
func wantOf(f *flag.Flag) string {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return "want a duration such as 500ms, 5s or 1m"
	case float64:
		return "want a number"
	}
	return "invalid value"
}

// clip bounds a value echoed in an error message.
func clip(v string) string {
	if len(v) > 60 {
		return v[:60] + "…"
	}
	return v
}
