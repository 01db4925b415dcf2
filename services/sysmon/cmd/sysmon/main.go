// Command sysmon is eventedge's system monitor. It reads the stats edge
// nodes and workers publish on ctl.edge.stats and ctl.worker.stats, probes
// NATS, JetStream, the NATS monitoring endpoint and the host, decides
// whether the system is healthy, degraded or in error, and publishes
// system_status to the global room: at once when the status or its alerts
// change, and every --interval.
//
// Usage:
//
//	sysmon [flags]    every flag has a SYSMON_* env mirror (NATS_URL for --nats-url); -h lists them
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/sysmon/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "sysmon: config:", err)
		stop()
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sysmon:", err)
		stop()
		os.Exit(1)
	}
}

func newLogger(cfg *config, w io.Writer) zerolog.Logger {
	if cfg.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	level, _ := zerolog.ParseLevel(cfg.logLevel) // validated by parseConfig
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// run starts sysmon and serves until ctx ends (SIGINT/SIGTERM), then shuts
// it down.
func run(ctx context.Context, cfg *config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	svc, err := service.New(cfg.service, log)
	if err != nil {
		return err
	}
	if err := svc.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received")
	case err := <-svc.Errors():
		_ = svc.Shutdown()
		return err
	}
	return svc.Shutdown()
}
