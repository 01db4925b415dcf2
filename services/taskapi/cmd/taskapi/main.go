// Command taskapi serves the eventedge task API: REST/JSON tasks of project
// boards stored in JetStream, runs of tasks queued for the job workers, and
// the events of every change published for the edge to fan out.
//
// Usage:
//
//	taskapi [flags]   every flag has an env mirror (TASKAPI_*, NATS_URL); -h lists them
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

	"github.com/eventedge/eventedge/services/taskapi/internal/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "taskapi: config:", err)
		stop()
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "taskapi:", err)
		stop()
		os.Exit(1)
	}
}

func newLogger(cfg *config, w io.Writer) zerolog.Logger {
	if cfg.logFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	level, _ := zerolog.ParseLevel(cfg.logLevel) // validated by parseConfig
	return zerolog.New(w).Level(level).With().Timestamp().Str("service", "taskapi").Logger()
}

// run starts the service and serves until ctx ends (SIGINT/SIGTERM), then
// shuts it down.
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
