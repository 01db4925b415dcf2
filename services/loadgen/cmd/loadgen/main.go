// Command loadgen loads an eventedge node with many WebSocket clients and
// reports what they saw: latency, delivery correctness, connect rate, and
// the edge's CPU and memory. See services/loadgen/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/eventedge/eventedge/services/loadgen/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errCheckFailed):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

// errCheckFailed: the run was made, but a client failed or the delivery
// check found a problem (the table says which). Exit status 1.
var errCheckFailed = errors.New("check failed")

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, jsonPath, quiet, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	// Restored on return: tests call run in their own process.
	defer debug.SetGCPercent(debug.SetGCPercent(cfg.GCPercent))
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	var progress io.Writer = stderr
	if quiet {
		progress = nil
	}
	rec, err := load.Run(ctx, cfg, progress)
	if err != nil {
		return err
	}
	if err := load.WriteTable(stdout, rec); err != nil {
		return err
	}
	if jsonPath != "" {
		f, err := os.Create(jsonPath)
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		if err := load.WriteJSON(f, rec); err != nil {
			f.Close()
			return fmt.Errorf("--json %s: %w", jsonPath, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--json %s: %w", jsonPath, err)
		}
	}
	if !rec.Results.OK {
		fmt.Fprintln(stderr, "loadgen: FAIL (see the table)")
		return errCheckFailed
	}
	return nil
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (cfg load.Config, jsonPath string, quiet bool, err error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080/v1/ws", "edge WebSocket URL")
	fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS URL the publisher uses (JetStream; broadcast, rooms, slow, churn, resume)")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", getenv("LOADGEN_JWT_SECRET"), "HS256 secret of the edge, at least 32 bytes (env LOADGEN_JWT_SECRET; prefer it: flags show in ps)")
	scenarios := "scenario: " + strings.Join(load.Scenarios, ", ")
	fs.StringVar(&cfg.Scenario, "scenario", "broadcast", scenarios)
	fs.IntVar(&cfg.Clients, "clients", 100, "WebSocket clients")
	fs.Float64Var(&cfg.Rate, "rate", 10, "events per second published (broadcast, rooms, slow, churn; resume: the gap, before the clients connect)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "publishing time (broadcast, rooms, slow, churn; resume: the gap, before the clients connect); holding time before memory is sampled (idle)")
	fs.IntVar(&cfg.Rooms, "rooms", 10, "rooms: project rooms the clients are spread over")
	fs.Float64Var(&cfg.LogsFraction, "logs-fraction", 0.25, "rooms: share of events with requiredPermission logs:read")
	fs.Float64Var(&cfg.NoLogsFraction, "no-logs-fraction", 0.5, "rooms: share of clients without logs:read")
	fs.Float64Var(&cfg.UserFraction, "user-fraction", 0.1, "rooms: share of events published to a client's user room")
	fs.Float64Var(&cfg.SlowFraction, "slow-fraction", 0.1, "slow: share of clients that read slowly")
	fs.DurationVar(&cfg.SlowReadDelay, "slow-read-delay", 10*time.Millisecond, "slow: a slow client's pause after each event")
	fs.Float64Var(&cfg.ChurnRate, "churn-rate", 10, "churn: churning clients connected per second")
	fs.DurationVar(&cfg.ChurnLife, "churn-life", time.Second, "churn: how long each churning client stays")
	fs.IntVar(&cfg.Dialers, "dialers", 50, "clients connecting at once")
	fs.IntVar(&cfg.SourceAddrs, "source-addrs", 1, "spread clients over 127.0.0.1 … 127.0.0.K as source addresses (1-254)")
	fs.IntVar(&cfg.PayloadBytes, "payload-bytes", 200, "approximate size of one event's JSON (mix padded)")
	fs.StringVar(&cfg.Mix, "mix", load.MixPadded, "events published (broadcast, slow, churn): padded (task_updated padded to --payload-bytes) or dashboard (the dashboard's mix of task_updated, task_progress with log lines, task_created, task_deleted and system_status, from a fixed seed; the clients get logs:read) or job (broadcast only: one job's task_progress with 1-6 log lines each, which the edge coalesces above its --progress-rate; the check expects the last event)")
	fs.BoolVar(&cfg.Compression, "compression", false, "clients offer permessage-deflate (the edge compresses only with --compression=on); churn's clients never do")
	fs.StringVar(&cfg.Protocol, "protocol", load.ProtocolJSON, "clients' wire format: json, or protobuf (subprotocol eventedge.v1.protobuf: binary frames of length-delimited protobufs)")
	fs.IntVar(&cfg.EdgePID, "edge-pid", 0, "edge process id: sample its CPU and RSS from /proc every second (0: off)")
	fs.StringVar(&cfg.EdgeMetrics, "edge-metrics", "", "edge /metrics URL read at start and end, e.g. http://127.0.0.1:9090/metrics (empty: off)")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 5*time.Minute, "hard bound on the whole run")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", 10*time.Second, "bound on one client's connect + auth + subscribe")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "broadcast, rooms, slow, churn: how long to wait after the last publish for in-flight events; resume: for every client to hold the whole gap")
	fs.StringVar(&cfg.Project, "project", "", "project id of the room, or the prefix of the rooms' (<project>-r<j>) (default: a fresh lg-<random> per run)")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow non-loopback URLs (default: loopback only)")
	fs.StringVar(&cfg.Preset, "preset", "", "a standard workload (issue #8's L1-L5, and resume): "+strings.Join(load.PresetNames(), ", ")+" (sets scenario and parameters; flags given override it)")
	fs.StringVar(&jsonPath, "json", "", "write the JSON record to this file")
	fs.StringVar(&cfg.CPUProfile, "cpu-profile", "", "write the load generator's own CPU profile to this file (is it the bottleneck?)")
	fs.BoolVar(&quiet, "quiet", false, "no progress line on stderr")
	fs.IntVar(&cfg.GCPercent, "gc-percent", load.DefaultGCPercent, "the load generator's own GC target (runtime/debug.SetGCPercent, over GOGC): "+
		"-1 (off) or 10-10000; its memory is not measured, its CPU is on the path of every figure")
	if err := fs.Parse(args); err != nil {
		return cfg, "", false, err
	}
	if fs.NArg() > 0 {
		return cfg, "", false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if g := cfg.GCPercent; g != -1 && (g < 10 || g > 10000) {
		return cfg, "", false, fmt.Errorf("--gc-percent %d: -1 (GC off) or 10-10000", g)
	}
	if cfg.Preset != "" {
		p, err := load.Preset(cfg.Preset)
		if err != nil {
			return cfg, "", false, err
		}
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for _, name := range load.PresetFlags(p) {
			if given[name] {
				continue // an explicit flag wins over the preset
			}
			if err := fs.Set(name, p[name]); err != nil {
				return cfg, "", false, fmt.Errorf("--preset %s: --%s %s: %w", cfg.Preset, name, p[name], err)
			}
		}
	}
	return cfg, jsonPath, quiet, nil
}
