// Command dashboard serves eventedge's browser dashboard: a live task
// board, the system status and recent activity of a project, built on the
// edge's browser client and the task API. It serves the app (embedded in
// the binary), the app's configuration and — with --dev only — a
// development login that mints tokens for demo users.
//
// Usage:
//
//	dashboard [flags]   every flag has a DASHBOARD_* env mirror; -h lists them
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
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/dashboard/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "dashboard: config:", err)
		stop()
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		stop()
		os.Exit(1)
	}
}

func newLogger(cfg *config, w io.Writer) zerolog.Logger {
	if cfg.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	level, _ := zerolog.ParseLevel(cfg.logLevel) // validated by parseConfig
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", "dashboard").Logger()
}

// version is the module version the binary was built from, or "dev" for a
// build from a work tree.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// run starts the dashboard and serves until ctx ends (SIGINT/SIGTERM) or a
// listener fails, then shuts it down.
func run(ctx context.Context, cfg *config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	opts := cfg.service
	opts.Server.Version = version()
	s, err := service.New(opts, log)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received; stopping")
	case err := <-s.Errors():
		_ = s.Shutdown(context.Background())
		return err
	}
	return s.Shutdown(context.Background())
}
