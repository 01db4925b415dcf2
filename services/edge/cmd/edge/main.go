// Command edge runs an eventedge edge node: it holds WebSocket connections
// from dashboards, authenticates them with JWT, subscribes to NATS per room
// and pushes each event to the clients allowed to see it.
//
// Usage:
//
//	edge [flags]                 run a node (every flag has an EDGE_* env mirror; -h lists them)
//	edge token [flags]           print a signed token for local use and tests
//	edge publish [flags] JSON    publish one event (its JSON form) to NATS
//	edge listen [flags]          connect like a dashboard and print what arrives
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

// subcommands are the tools bundled with the node binary.
var subcommands = map[string]func(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error{
	"token": func(_ context.Context, args []string, getenv func(string) string, out io.Writer) error {
		return runToken(args, getenv, out)
	},
	"publish": runPublish,
	"listen":  runListen,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 {
		if sub, ok := subcommands[os.Args[1]]; ok {
			if err := sub(ctx, os.Args[2:], os.Getenv, os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(os.Stderr, "edge %s: %v\n", os.Args[1], err)
				stop()
				os.Exit(2)
			}
			return
		}
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "edge: config:", err)
		stop()
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
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

// run starts a node and serves until ctx ends (SIGINT/SIGTERM) or an admin
// asks for a drain (POST /v1/admin/drain), then shuts it down: clients get
// 1012 and the process exits 0.
func run(ctx context.Context, cfg *config, logOut io.Writer) error {
	log := newLogger(cfg, logOut)
	n, err := node.New(cfg.node, log)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received")
	case <-n.DrainRequested():
		log.Info().Str("admin", n.DrainRequestedBy()).Msg("drain requested by admin")
	case err := <-n.Errors():
		_ = n.Shutdown()
		return err
	}
	return n.Shutdown()
}

// runToken implements `edge token`.
func runToken(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("edge token", flag.ContinueOnError)
	sub := fs.String("sub", "", "user id (sub claim), required")
	projects := fs.String("projects", "", "comma-separated project ids, or * for all")
	perms := fs.String("permissions", "", "comma-separated permissions, e.g. tasks:read,logs:read,system:read,admin")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	secret := fs.String("jwt-secret", getenv("EDGE_JWT_SECRET"), "HS256 secret (env EDGE_JWT_SECRET)")
	keyPath := fs.String("jwt-private-key", getenv("EDGE_JWT_PRIVATE_KEY"), "path of a PEM private key for RS256/ES256/EdDSA (env EDGE_JWT_PRIVATE_KEY)")
	iss := fs.String("jwt-issuer", getenv("EDGE_JWT_ISSUER"), "iss claim (env EDGE_JWT_ISSUER)")
	aud := fs.String("jwt-audience", getenv("EDGE_JWT_AUDIENCE"), "aud claim (env EDGE_JWT_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *sub == "" {
		return errors.New("--sub is required")
	}
	if !room.ValidID(*sub) {
		return fmt.Errorf("--sub %q: want 1-64 characters of A-Z a-z 0-9 _ -", *sub)
	}
	if *ttl <= 0 {
		return fmt.Errorf("--ttl %s: must be positive", *ttl)
	}
	var (
		signer *auth.Signer
		err    error
	)
	switch {
	case *keyPath != "":
		pem, rerr := os.ReadFile(*keyPath)
		if rerr != nil {
			return fmt.Errorf("--jwt-private-key: %w", rerr)
		}
		signer, err = auth.NewKeySigner(pem)
	case *secret != "":
		signer, err = auth.NewHMACSigner([]byte(*secret))
	default:
		return errors.New("no key: set EDGE_JWT_SECRET or --jwt-private-key")
	}
	if err != nil {
		return err
	}
	tok, err := signer.Sign(auth.TokenSpec{
		Subject:     *sub,
		Permissions: splitList(*perms),
		Projects:    splitList(*projects),
		TTL:         *ttl,
		Issuer:      *iss,
		Audience:    *aud,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
