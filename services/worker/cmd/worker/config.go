package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventedge/eventedge/services/worker/internal/jobrun"
	"github.com/eventedge/eventedge/services/worker/internal/service"
	"github.com/eventedge/eventedge/services/worker/internal/worker"
)

// config is everything the worker reads from flags and the environment.
type config struct {
	service   service.Options
	logLevel  string
	logFormat string
}

// parseConfig reads args and the environment (through getenv) into a
// validated config. A set variable applies before the command line, so a
// flag wins over its variable. Errors name the flag and its variable.
func parseConfig(args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	envOf := map[string]string{}
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	integer := func(p *int, name, env string, def int, usage string) {
		fs.IntVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	var (
		adminAddr, natsURL, name, allow                      string
		concurrency, maxDeliver                              int
		ackWait, heartbeat, grace, demo, maxRun, statsPeriod time.Duration
	)
	str(&adminAddr, "admin-addr", "WORKER_ADMIN_ADDR", service.DefaultAdminAddr, "admin listen address (/metrics, /healthz, /readyz)")
	str(&natsURL, "nats-url", "NATS_URL", service.DefaultNATSURL, "NATS server URL(s), comma separated")
	str(&name, "name", "WORKER_NAME", defaultName(), "worker name in stats and logs (1-64 printable ASCII, no spaces)")
	integer(&concurrency, "concurrency", "WORKER_CONCURRENCY", worker.DefaultConcurrency, "jobs run at once")
	str(&allow, "exec-allow", "WORKER_EXEC_ALLOW", jobrun.DefaultAllowList, "commands exec jobs may run: comma-separated name=/absolute/path[ args] entries; empty: none")
	integer(&maxDeliver, "max-deliver", "WORKER_MAX_DELIVER", worker.DefaultMaxDeliver, "deliveries of a job before its task is failed")
	dur(&ackWait, "ack-wait", "WORKER_ACK_WAIT", worker.DefaultAckWait, "time a job may go without a heartbeat before it is redelivered")
	dur(&heartbeat, "heartbeat", "WORKER_HEARTBEAT", worker.DefaultHeartbeat, "interval of in-progress heartbeats while a job runs (below --ack-wait)")
	dur(&grace, "shutdown-grace", "WORKER_SHUTDOWN_GRACE", worker.DefaultShutdownGrace, "on SIGTERM, time running jobs get to finish before they are requeued")
	dur(&demo, "demo-duration", "WORKER_DEMO_DURATION", jobrun.DefaultDemoDuration, "total time of a demo job")
	dur(&maxRun, "exec-max-run-time", "WORKER_EXEC_MAX_RUN_TIME", jobrun.DefaultMaxRunTime, "longest an exec job may run")
	dur(&statsPeriod, "stats-interval", "WORKER_STATS_INTERVAL", worker.DefaultStatsInterval, "interval of the ctl.worker.stats messages")
	str(&c.logLevel, "log-level", "WORKER_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.logFormat, "log-format", "WORKER_LOG_FORMAT", "json", "log format: json or console")

	for flagName, env := range envOf {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := fs.Set(flagName, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %v", env, clip(v), err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	if _, _, err := net.SplitHostPort(adminAddr); err != nil {
		return nil, fmt.Errorf("--admin-addr (WORKER_ADMIN_ADDR): %q is not host:port", adminAddr)
	}
	if !worker.ValidName(name) {
		return nil, fmt.Errorf("--name (WORKER_NAME): %q: want 1-64 printable ASCII characters without spaces", clip(name))
	}
	if concurrency < 1 || concurrency > 256 {
		return nil, fmt.Errorf("--concurrency (WORKER_CONCURRENCY): %d must be between 1 and 256", concurrency)
	}
	if maxDeliver < 1 {
		return nil, fmt.Errorf("--max-deliver (WORKER_MAX_DELIVER): %d must be at least 1", maxDeliver)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ack-wait", ackWait}, {"heartbeat", heartbeat}, {"shutdown-grace", grace}, {"demo-duration", demo}, {"exec-max-run-time", maxRun}, {"stats-interval", statsPeriod}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("--%s (%s): %s must be positive", d.name, envOf[d.name], d.v)
		}
	}
	if heartbeat >= ackWait {
		return nil, fmt.Errorf("--heartbeat (WORKER_HEARTBEAT) %s must be shorter than --ack-wait (WORKER_ACK_WAIT) %s", heartbeat, ackWait)
	}
	list, err := jobrun.ParseAllowList(allow)
	if err != nil {
		return nil, fmt.Errorf("--exec-allow (WORKER_EXEC_ALLOW): %w", err)
	}
	if err := list.Check(); err != nil {
		return nil, fmt.Errorf("--exec-allow (WORKER_EXEC_ALLOW): %w", err)
	}
	switch c.logFormat {
	case "json", "console":
	default:
		return nil, fmt.Errorf("--log-format (WORKER_LOG_FORMAT): %q, want json or console", c.logFormat)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("--log-level (WORKER_LOG_LEVEL): %q, want debug, info, warn or error", c.logLevel)
	}
	c.service = service.Options{
		AdminAddr: adminAddr,
		NATSURL:   natsURL,
		Worker: worker.Options{
			Name:          name,
			Concurrency:   concurrency,
			AckWait:       ackWait,
			Heartbeat:     heartbeat,
			MaxDeliver:    maxDeliver,
			ShutdownGrace: grace,
			StatsInterval: statsPeriod,
			AllowList:     list,
			Demo:          jobrun.Demo{Duration: demo},
			Exec:          jobrun.Exec{MaxRunTime: maxRun},
		},
	}
	return c, nil
}

// defaultName is the host name and process id: unique per process, as
// several workers may share a host.
func defaultName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "worker"
	}
	h = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return '-'
		}
		return r
	}, h)
	suffix := "-" + strconv.Itoa(os.Getpid())
	if len(h)+len(suffix) > 64 {
		h = h[:64-len(suffix)]
	}
	return h + suffix
}

func clip(v string) string {
	if len(v) > 60 {
		return v[:60] + "…"
	}
	return v
}
