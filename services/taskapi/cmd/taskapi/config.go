package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/eventedge/eventedge/services/taskapi/internal/api"
	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/internal/service"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// config is everything taskapi reads from flags and the environment.
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
	fs := flag.NewFlagSet("taskapi", flag.ContinueOnError)
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
	var (
		addr, adminAddr, natsURL, secret, publicKey, issuer, audience string
		origins, execCmds                                             string
		leeway, sweep, shutdown, start                                time.Duration
	)
	str(&addr, "addr", "TASKAPI_ADDR", service.DefaultAddr, "API listen address")
	str(&adminAddr, "admin-addr", "TASKAPI_ADMIN_ADDR", service.DefaultAdminAddr, "admin listen address (/metrics, /healthz, /readyz)")
	str(&natsURL, "nats-url", "NATS_URL", service.DefaultNATSURL, "NATS server URL(s), comma separated")
	str(&secret, "jwt-secret", "TASKAPI_JWT_SECRET", "", "HS256 secret, at least 32 bytes (prefer the env variable: flags show in ps)")
	str(&publicKey, "jwt-public-key", "TASKAPI_JWT_PUBLIC_KEY", "", "path of a PEM public key: RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)")
	str(&issuer, "jwt-issuer", "TASKAPI_JWT_ISSUER", "", "required token issuer (iss); empty: not checked")
	str(&audience, "jwt-audience", "TASKAPI_JWT_AUDIENCE", "", "required token audience (aud); empty: not checked")
	dur(&leeway, "jwt-leeway", "TASKAPI_JWT_LEEWAY", auth.DefaultLeeway, "allowed clock skew for exp, nbf and iat")
	str(&origins, "allowed-origins", "TASKAPI_ALLOWED_ORIGINS", strings.Join(api.DefaultAllowedOrigins, ","), "comma-separated browser origins allowed by CORS (scheme://host:port); \"*\" allows any (development only)")
	str(&execCmds, "exec-commands", "TASKAPI_EXEC_COMMANDS", strings.Join(api.DefaultExecCommands, ","), "comma-separated names exec runs may use: the workers' --exec-allow names")
	dur(&sweep, "sweep-interval", "TASKAPI_SWEEP_INTERVAL", service.DefaultSweepInterval, "pause between outbox sweeps (republishing events a write left unpublished)")
	dur(&start, "start-timeout", "TASKAPI_START_TIMEOUT", service.DefaultStartTimeout, "how long to wait for NATS and JetStream at start")
	dur(&shutdown, "shutdown-timeout", "TASKAPI_SHUTDOWN_TIMEOUT", service.DefaultShutdownTimeout, "how long shutdown waits for in-flight requests")
	str(&c.logLevel, "log-level", "TASKAPI_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.logFormat, "log-format", "TASKAPI_LOG_FORMAT", "json", "log format: json or console")

	for name, env := range envOf {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %v", env, clip(v, name), err)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	for _, a := range []struct{ name, v string }{{"addr", addr}, {"admin-addr", adminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return nil, fmt.Errorf("--%s (%s): %q is not host:port", a.name, envOf[a.name], a.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"sweep-interval", sweep}, {"start-timeout", start}, {"shutdown-timeout", shutdown}} {
		if d.v <= 0 {
			return nil, fmt.Errorf("--%s (%s): %s must be positive", d.name, envOf[d.name], d.v)
		}
	}
	if leeway < 0 || leeway > time.Minute {
		return nil, fmt.Errorf("--jwt-leeway (TASKAPI_JWT_LEEWAY): %s must be between 0s and 1m", leeway)
	}
	switch c.logFormat {
	case "json", "console":
	default:
		return nil, fmt.Errorf("--log-format (TASKAPI_LOG_FORMAT): %q, want json or console", c.logFormat)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("--log-level (TASKAPI_LOG_LEVEL): %q, want debug, info, warn or error", c.logLevel)
	}

	a := auth.Options{Issuer: issuer, Audience: audience, Leeway: leeway}
	if leeway == 0 {
		a.Leeway = -1 // explicit zero: no leeway
	}
	switch {
	case secret != "" && publicKey != "":
		return nil, errors.New("--jwt-secret (TASKAPI_JWT_SECRET) and --jwt-public-key (TASKAPI_JWT_PUBLIC_KEY): set one, not both")
	case secret != "":
		a.HMACSecret = []byte(secret)
	case publicKey != "":
		pem, err := os.ReadFile(publicKey)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key (TASKAPI_JWT_PUBLIC_KEY): %w", err)
		}
		a.PublicKeyPEM = pem
	default:
		return nil, errors.New("no JWT key: set TASKAPI_JWT_SECRET (HS256) or TASKAPI_JWT_PUBLIC_KEY (path of a PEM public key)")
	}
	if _, err := auth.NewVerifier(a); err != nil {
		return nil, fmt.Errorf("--jwt-secret/--jwt-public-key: %w", err)
	}

	allowed := splitList(origins)
	for _, o := range allowed {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return nil, fmt.Errorf("--allowed-origins (TASKAPI_ALLOWED_ORIGINS): %q: want scheme://host[:port] or *", o)
		}
	}
	cmds := splitList(execCmds)
	for _, n := range cmds {
		if !taskstore.ValidID(n) {
			return nil, fmt.Errorf("--exec-commands (TASKAPI_EXEC_COMMANDS): %q: want 1-64 characters of A-Z a-z 0-9 _ -", n)
		}
	}
	if cmds == nil {
		cmds = []string{} // explicitly none
	}
	if allowed == nil {
		allowed = []string{}
	}
	c.service = service.Options{
		Addr:            addr,
		AdminAddr:       adminAddr,
		NATSURL:         natsURL,
		Auth:            a,
		AllowedOrigins:  allowed,
		ExecCommands:    cmds,
		SweepInterval:   sweep,
		StartTimeout:    start,
		ShutdownTimeout: shutdown,
	}
	return c, nil
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

// clip hides secrets in error messages and bounds echoed values.
func clip(v, flagName string) string {
	if strings.Contains(flagName, "secret") {
		return "…"
	}
	if len(v) > 60 {
		return v[:60] + "…"
	}
	return v
}
