// Command worker runs eventedge jobs: it pulls task runs from the JOBS
// work queue (shared by every replica), runs them (demo, or an
// allow-listed command), publishes their progress and logs as task_progress
// events, and records each task's status through the task store.
//
// Usage:
//
//	worker [flags]   every flag has an env mirror (WORKER_*, NATS_URL); -h lists them
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

	"github.com/eventedge/eventedge/services/worker/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "worker: config:", err)
		stop()
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		stop()
		os.Exit(1)
	}
}

func newLogger(cfg *config, w io.Writer) zerolog.Logger {
	if cfg.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	level, _ := zerolog.ParseLevel(cfg.logLevel) // validated by parseConfig
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", "worker").Logger()
}

// run starts the worker and runs until ctx ends (SIGINT/SIGTERM): then it
// stops fetching, lets running jobs finish (or requeues them after the
// grace) and returns.
func run(ctx context.Context, cfg *config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	s, err := service.New(cfg.service, log)
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
