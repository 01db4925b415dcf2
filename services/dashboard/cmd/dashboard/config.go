package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
	"github.com/eventedge/eventedge/services/dashboard/internal/service"
)

// config is everything the dashboard reads from flags and the environment.
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
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	// Errors are returned, not printed with the whole usage: the caller
	// prints them as one line.
	fs.SetOutput(io.Discard)
	// envOf maps flag names to their environment mirrors. A set variable is
	// applied before the command line, so a flag wins over its variable.
	envOf := map[string]string{}

	var (
		addr, adminAddr, edgeURL, apiURL, loginURL, devSecret string
		dev                                                   bool
		devTTL, shutdownTimeout                               time.Duration
	)
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
		envOf[name] = env
	}

	str(&addr, "addr", "DASHBOARD_ADDR", service.DefaultAddr, "public listen address (the app, /config.json, the development login)")
	str(&adminAddr, "admin-addr", "DASHBOARD_ADMIN_ADDR", service.DefaultAdminAddr, "admin listen address (/metrics, /healthz, /readyz)")
	str(&edgeURL, "edge-url", "DASHBOARD_EDGE_URL", server.DefaultEdgeURL, "edge WebSocket URL the app connects to: ws(s)://host[:port]/…/v1/ws, or a path on this origin such as /v1/ws; client.js is loaded from …/v1/client.js beside it")
	str(&apiURL, "api-url", "DASHBOARD_API_URL", server.DefaultAPIURL, "task API base URL: http(s)://host[:port][/prefix], or a path on this origin such as /api")
	fs.BoolVar(&dev, "dev", false, "development mode: serve /login and the development login API, which lets ANYONE mint tokens; never in production (env DASHBOARD_DEV)")
	envOf["dev"] = "DASHBOARD_DEV"
	str(&devSecret, "dev-jwt-secret", "DASHBOARD_DEV_JWT_SECRET", "", fmt.Sprintf("HS256 secret of the development tokens, at least %d bytes, the one the edge and the task API verify with; required with --dev, refused without (prefer the variable: a flag shows in the process list)", server.MinDevSecretLen))
	dur(&devTTL, "dev-token-ttl", "DASHBOARD_DEV_TOKEN_TTL", server.DefaultDevTokenTTL, "lifetime of a development token, 1m to 24h")
	str(&loginURL, "login-url", "DASHBOARD_LOGIN_URL", "", "where \"log in again\" sends a user in production: an http(s) URL or a path; empty: the app asks to reopen the dashboard from the application")
	dur(&shutdownTimeout, "shutdown-timeout", "DASHBOARD_SHUTDOWN_TIMEOUT", service.DefaultShutdownTimeout, "how long requests in flight may take to finish at shutdown")
	str(&c.logLevel, "log-level", "DASHBOARD_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.logFormat, "log-format", "DASHBOARD_LOG_FORMAT", "json", "log format: json or console")

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
			fmt.Fprintln(usage, "Usage: dashboard [flags]\n\ndashboard serves eventedge's browser dashboard.\nEvery flag has an environment mirror; a flag wins over its variable.")
			fs.SetOutput(usage)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", clip(fs.Arg(0)))
	}
	flagName := func(name string) string { return "--" + name + " (" + envOf[name] + ")" }

	for _, a := range []struct{ name, v string }{{"addr", addr}, {"admin-addr", adminAddr}} {
		if !validAddr(a.v) {
			return nil, fmt.Errorf("%s: %q is not host:port", flagName(a.name), clip(a.v))
		}
	}
	if addr == adminAddr {
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return nil, fmt.Errorf("%s: %q is also the --addr (DASHBOARD_ADDR)", flagName("admin-addr"), clip(adminAddr))
		}
	}
	if _, err := server.ClientURL(edgeURL); err != nil {
		return nil, fmt.Errorf("%s: %w", flagName("edge-url"), err)
	}
	apiURL, err := server.CleanAPIURL(apiURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName("api-url"), err)
	}
	if err := server.CheckLoginURL(loginURL); err != nil {
		return nil, fmt.Errorf("%s: %w", flagName("login-url"), err)
	}
	// The secret is never echoed: only its length.
	switch {
	case dev && devSecret == "":
		return nil, fmt.Errorf("%s: required with --dev", flagName("dev-jwt-secret"))
	case dev && len(devSecret) < server.MinDevSecretLen:
		return nil, fmt.Errorf("%s: %d bytes, want at least %d", flagName("dev-jwt-secret"), len(devSecret), server.MinDevSecretLen)
	case !dev && devSecret != "":
		return nil, fmt.Errorf("%s: set without --dev (DASHBOARD_DEV); the development login is off, so remove the secret", flagName("dev-jwt-secret"))
	}
	if devTTL < server.MinDevTokenTTL || devTTL > server.MaxDevTokenTTL {
		return nil, fmt.Errorf("%s: %s, want 1m to 24h", flagName("dev-token-ttl"), devTTL)
	}
	if shutdownTimeout <= 0 {
		return nil, fmt.Errorf("%s: %s must be positive", flagName("shutdown-timeout"), shutdownTimeout)
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

	var secret []byte
	if dev {
		secret = []byte(devSecret)
	}
	c.service = service.Options{
		Addr:            addr,
		AdminAddr:       adminAddr,
		ShutdownTimeout: shutdownTimeout,
		Server: server.Options{
			EdgeURL:     edgeURL,
			APIURL:      apiURL,
			Dev:         dev,
			DevSecret:   secret,
			DevTokenTTL: devTTL,
			LoginURL:    loginURL,
		},
	}
	return c, nil
}

// validAddr accepts host:port with a numeric port (0 picks a free one).
func validAddr(a string) bool {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// wantOf describes the values flag f accepts, for error messages.
func wantOf(f *flag.Flag) string {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return "want a duration such as 30s, 10m or 1h"
	case bool:
		return "want true or false"
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
