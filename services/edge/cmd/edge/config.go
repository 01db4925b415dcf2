package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/broker"
	"github.com/eventedge/eventedge/services/edge/internal/history"
	"github.com/eventedge/eventedge/services/edge/internal/node"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
	"github.com/eventedge/eventedge/services/edge/internal/policy"
	"github.com/eventedge/eventedge/services/edge/internal/server"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// config is everything the edge reads from flags and the environment.
type config struct {
	node      node.Options
	logLevel  string
	logFormat string
	dataDir   string
}

// parseConfig reads args and the environment (through getenv) into a
// validated config. Errors name the flag or variable and say what is wrong.
func parseConfig(args []string, getenv func(string) string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	// envOf maps flag names to their environment mirrors. A set variable is
	// applied before the command line, so a flag wins over its variable.
	envOf := map[string]string{}
	bindEnv := func(name, env string) { envOf[name] = env }

	var (
		addr, adminAddr, natsURL, embeddedAddr, nodeName         string
		jwtSecret, jwtPublicKey, jwtIssuer, jwtAudience, origins string
		jwtLeeway, authTimeout, writeTimeout, pingInterval       time.Duration
		readHeaderTimeout                                        time.Duration
		pingTimeout, shutdownTimeout, streamMaxAge, streamDup    time.Duration
		readLimit, queueBytes                                    int64
		queueMessages, maxSubs, streamReplicas, historyReads     int
		streamPerSubject                                         int64
		drainDuration, statsInterval                             time.Duration
		maxConns, maxConnsPerUser, maxConnsPerIP                 int
		clientBurst, maxCoalescedLogs, commandBurst, ackBurst    int
		readyFill, highWater, clientRate, progressRate           float64
		commandRate, ackRate, lowBudget                          float64
		trustForwardedFor                                        bool
	)
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}
	i64 := func(p *int64, name, env string, def int64, usage string) {
		fs.Int64Var(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}
	integer := func(p *int, name, env string, def int, usage string) {
		fs.IntVar(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}
	float := func(p *float64, name, env string, def float64, usage string) {
		fs.Float64Var(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}
	boolean := func(p *bool, name, env string, def bool, usage string) {
		fs.BoolVar(p, name, def, usage+" (env "+env+")")
		bindEnv(name, env)
	}

	str(&addr, "addr", "EDGE_ADDR", ":8080", "public listen address (WebSocket at /v1/ws)")
	str(&adminAddr, "admin-addr", "EDGE_ADMIN_ADDR", ":9090", "admin listen address (/metrics, /healthz, /readyz)")
	str(&natsURL, "nats-url", "NATS_URL", "", "NATS server URL(s), comma separated; empty starts an embedded NATS server with JetStream")
	str(&embeddedAddr, "embedded-nats-addr", "EDGE_EMBEDDED_NATS_ADDR", "127.0.0.1:4222", "listen address of the embedded NATS server")
	str(&c.dataDir, "data-dir", "EDGE_DATA_DIR", "./.data", "directory of the embedded NATS server's JetStream store")
	str(&nodeName, "node-name", "EDGE_NODE_NAME", "", "node name shown to clients and in logs (default: host name)")
	str(&jwtSecret, "jwt-secret", "EDGE_JWT_SECRET", "", "HS256 secret, at least 32 bytes (prefer the env variable: flags show in ps)")
	str(&jwtPublicKey, "jwt-public-key", "EDGE_JWT_PUBLIC_KEY", "", "path of a PEM public key: RSA (RS256), ECDSA P-256 (ES256) or Ed25519 (EdDSA)")
	str(&jwtIssuer, "jwt-issuer", "EDGE_JWT_ISSUER", "", "required token issuer (iss); empty: not checked")
	str(&jwtAudience, "jwt-audience", "EDGE_JWT_AUDIENCE", "", "required token audience (aud); empty: not checked")
	dur(&jwtLeeway, "jwt-leeway", "EDGE_JWT_LEEWAY", auth.DefaultLeeway, "allowed clock skew for exp, nbf and iat")
	str(&origins, "allowed-origins", "EDGE_ALLOWED_ORIGINS", "", "comma-separated origin host patterns allowed to connect besides the same host; \"*\" allows any (development only)")
	str(&c.logLevel, "log-level", "EDGE_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	str(&c.logFormat, "log-format", "EDGE_LOG_FORMAT", "json", "log format: json or console")
	i64(&readLimit, "read-limit", "EDGE_READ_LIMIT", server.DefaultReadLimit, "largest client frame in bytes (larger: close 1009)")
	dur(&readHeaderTimeout, "read-header-timeout", "EDGE_READ_HEADER_TIMEOUT", server.DefaultReadHeaderTimeout, "time a client has from connecting to the end of its handshake's headers; slower or stalled: disconnected")
	dur(&authTimeout, "auth-timeout", "EDGE_AUTH_TIMEOUT", session.DefaultAuthTimeout, "time a client has to send its auth message")
	dur(&writeTimeout, "write-timeout", "EDGE_WRITE_TIMEOUT", session.DefaultWriteTimeout, "time a client has to take one frame")
	dur(&pingInterval, "ping-interval", "EDGE_PING_INTERVAL", session.DefaultPingInterval, "time between WebSocket pings")
	dur(&pingTimeout, "ping-timeout", "EDGE_PING_TIMEOUT", session.DefaultPingTimeout, "time a pong may take before the client is dropped")
	integer(&queueMessages, "queue-messages", "EDGE_QUEUE_MESSAGES", session.DefaultQueueMessages, "messages queued per client before it is closed as a slow consumer")
	i64(&queueBytes, "queue-bytes", "EDGE_QUEUE_BYTES", session.DefaultQueueBytes, "bytes queued per client before it is closed as a slow consumer")
	integer(&maxSubs, "max-subscriptions", "EDGE_MAX_SUBSCRIPTIONS", session.DefaultMaxSubscriptions, "rooms one connection may subscribe to")
	float(&highWater, "queue-high-water", "EDGE_QUEUE_HIGH_WATER", session.DefaultHighWater, "fill of a client's queue (0-1] above which low-priority events are held or dropped")
	float(&clientRate, "client-rate", "EDGE_CLIENT_RATE", session.DefaultClientRate, "events per second per client before low-priority ones are held or dropped")
	integer(&clientBurst, "client-burst", "EDGE_CLIENT_BURST", session.DefaultClientBurst, "burst of --client-rate")
	float(&progressRate, "progress-rate", "EDGE_PROGRESS_RATE", session.DefaultProgressRate, "task_progress events per second per task and client (the newest over it is sent later)")
	integer(&maxCoalescedLogs, "max-coalesced-logs", "EDGE_MAX_COALESCED_LOGS", session.DefaultMaxCoalescedLogs, "log lines a coalesced task_progress carries (the newest kept)")
	float(&commandRate, "command-rate", "EDGE_COMMAND_RATE", session.DefaultCommandRate, "commands per second a client may send (acks not counted); beyond: close 4029")
	integer(&commandBurst, "command-burst", "EDGE_COMMAND_BURST", session.DefaultCommandBurst, "burst of --command-rate")
	float(&ackRate, "ack-rate", "EDGE_ACK_RATE", session.DefaultAckRate, "acks per second a client may send (apart from --command-rate); beyond: close 4029")
	integer(&ackBurst, "ack-burst", "EDGE_ACK_BURST", session.DefaultAckBurst, "burst of --ack-rate")
	float(&lowBudget, "low-priority-budget", "EDGE_LOW_PRIORITY_BUDGET", node.DefaultLowPriorityBudget, "low-priority events per second for the whole node (burst the same)")
	integer(&maxConns, "max-conns", "EDGE_MAX_CONNS", server.DefaultMaxConns, "connections per node, authenticated or not; beyond: 503 with Retry-After")
	integer(&maxConnsPerUser, "max-conns-per-user", "EDGE_MAX_CONNS_PER_USER", server.DefaultMaxConnsPerUser, "connections per user; beyond: 429 at the handshake (header token) or close 4029 after auth")
	integer(&maxConnsPerIP, "max-conns-per-ip", "EDGE_MAX_CONNS_PER_IP", server.DefaultMaxConnsPerIP, "connections per client address; beyond: 429 with Retry-After")
	float(&readyFill, "ready-fill", "EDGE_READY_FILL", server.DefaultReadyFill, "fraction (0-1] of --max-conns from which /readyz reports not ready")
	var (
		roomPolicy                    string
		expiringNotice, revocationTTL time.Duration
		socketSendBuffer              int
		adminPprof                    bool
		compression                   string
		compressionThreshold          int
	)
	str(&roomPolicy, "room-policy", "EDGE_ROOM_POLICY", "", "path of the room policy file (YAML or JSON): per-room permissions, maxClients, ttl, rate; empty: built-in defaults")
	dur(&expiringNotice, "expiring-notice", "EDGE_EXPIRING_NOTICE", session.DefaultExpiringNotice, "how long before a token's expiry the client is sent expiring")
	dur(&revocationTTL, "revocation-ttl", "EDGE_REVOCATION_TTL", 24*time.Hour, "how long revocations (ctl.revoke, kept in the REVOCATIONS stream) are kept: the stream's max age; at least the tokens' lifetime")
	integer(&socketSendBuffer, "socket-send-buffer", "EDGE_SOCKET_SEND_BUFFER", 0, "SO_SNDBUF of client sockets in bytes; 0: the kernel's autotuning")
	str(&compression, "compression", "EDGE_COMPRESSION", "off", "permessage-deflate for clients that offer it: off or on (no context takeover)")
	integer(&compressionThreshold, "compression-threshold", "EDGE_COMPRESSION_THRESHOLD", server.DefaultCompressionThreshold, "with --compression=on, the smallest frame compressed, in bytes")
	boolean(&adminPprof, "admin-pprof", "EDGE_ADMIN_PPROF", false, "serve Go profiles at /debug/pprof/ on the admin listener (keep the admin port private)")
	boolean(&trustForwardedFor, "trust-forwarded-for", "EDGE_TRUST_FORWARDED_FOR", false, "take the client address from X-Forwarded-For (only behind a proxy that sets it)")
	dur(&statsInterval, "stats-interval", "EDGE_STATS_INTERVAL", nodestats.DefaultInterval, "how often the node publishes its stats on ctl.edge.stats for sysmon (keep it well below sysmon's --node-silence)")
	dur(&drainDuration, "drain-duration", "EDGE_DRAIN_DURATION", node.DefaultDrainDuration, "time shutdown spreads closing the clients (1012) over; 0s closes them at once")
	dur(&shutdownTimeout, "shutdown-timeout", "EDGE_SHUTDOWN_TIMEOUT", node.DefaultDrainDuration+10*time.Second, "how long shutdown waits for clients to close; raised to --drain-duration + 10s when lower")
	dur(&streamMaxAge, "stream-max-age", "EDGE_STREAM_MAX_AGE", events.DefaultMaxAge, "EVENTS stream: retention")
	i64(&streamPerSubject, "stream-max-msgs-per-subject", "EDGE_STREAM_MAX_MSGS_PER_SUBJECT", events.DefaultMaxMsgsPerSubject, "EVENTS stream: events kept per room")
	dur(&streamDup, "stream-duplicates", "EDGE_STREAM_DUPLICATES", events.DefaultDuplicates, "EVENTS stream: duplicate-publish window")
	integer(&streamReplicas, "stream-replicas", "EDGE_STREAM_REPLICAS", events.DefaultReplicas, "EVENTS stream: replicas (1, 3 or 5)")
	integer(&historyReads, "history-reads", "EDGE_HISTORY_READS", history.DefaultMaxInFlight, "EVENTS stream: requests of resuming subscriptions (replays) this node has in flight at once, 1-10000; more wait their turn (keep the sum over all nodes well below the NATS JetStream API queue, 10,000 by default)")

	for name, env := range envOf {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("%s=%q: %s", env, clip(v, name), wantOf(fs.Lookup(name)))
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	// Validation, one clear line per problem.
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"read-header-timeout", readHeaderTimeout}, {"auth-timeout", authTimeout}, {"write-timeout", writeTimeout}, {"ping-interval", pingInterval},
		{"ping-timeout", pingTimeout}, {"shutdown-timeout", shutdownTimeout}, {"stream-max-age", streamMaxAge},
		{"stream-duplicates", streamDup},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return nil, fmt.Errorf("--%s (%s): %s must be positive", p.name, envOf[p.name], p.d)
		}
	}
	if jwtLeeway < 0 || jwtLeeway > time.Minute {
		return nil, fmt.Errorf("--jwt-leeway (EDGE_JWT_LEEWAY): %s must be between 0s and 1m", jwtLeeway)
	}
	if readLimit < 1024 || readLimit > 16<<20 {
		return nil, fmt.Errorf("--read-limit (EDGE_READ_LIMIT): %d must be between 1024 and 16777216", readLimit)
	}
	if queueMessages < 1 || queueBytes < 1024 || maxSubs < 1 || streamPerSubject < 1 {
		return nil, errors.New("--queue-messages, --queue-bytes (>= 1024), --max-subscriptions and --stream-max-msgs-per-subject must be positive")
	}
	if statsInterval < 100*time.Millisecond || statsInterval > time.Minute {
		return nil, fmt.Errorf("--stats-interval (EDGE_STATS_INTERVAL): %s must be between 100ms and 1m", statsInterval)
	}
	if drainDuration < 0 {
		return nil, fmt.Errorf("--drain-duration (EDGE_DRAIN_DURATION): %s must not be negative", drainDuration)
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"max-conns", maxConns}, {"max-conns-per-user", maxConnsPerUser}, {"max-conns-per-ip", maxConnsPerIP},
		{"client-burst", clientBurst}, {"max-coalesced-logs", maxCoalescedLogs}, {"command-burst", commandBurst}, {"ack-burst", ackBurst},
	} {
		if p.v < 1 {
			return nil, fmt.Errorf("--%s (%s): %d must be at least 1", p.name, envOf[p.name], p.v)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"client-rate", clientRate}, {"progress-rate", progressRate}, {"command-rate", commandRate}, {"ack-rate", ackRate}, {"low-priority-budget", lowBudget},
	} {
		if !(p.v > 0) || math.IsInf(p.v, 0) {
			return nil, fmt.Errorf("--%s (%s): %g must be a positive number", p.name, envOf[p.name], p.v)
		}
	}
	for _, p := range []struct {
		name string
		v    float64
	}{
		{"ready-fill", readyFill}, {"queue-high-water", highWater},
	} {
		if !(p.v > 0 && p.v <= 1) {
			return nil, fmt.Errorf("--%s (%s): %g must be greater than 0 and at most 1", p.name, envOf[p.name], p.v)
		}
	}
	for _, a := range []struct{ name, v string }{{"addr", addr}, {"admin-addr", adminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return nil, fmt.Errorf("--%s (%s): %q is not host:port", a.name, envOf[a.name], a.v)
		}
	}
	if nodeName != "" && (len(nodeName) > 64 || !printable(nodeName)) {
		return nil, errors.New("--node-name (EDGE_NODE_NAME): at most 64 printable ASCII characters")
	}
	switch c.logFormat {
	case "json", "console":
	default:
		return nil, fmt.Errorf("--log-format (EDGE_LOG_FORMAT): %q, want json or console", c.logFormat)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("--log-level (EDGE_LOG_LEVEL): %q, want debug, info, warn or error", c.logLevel)
	}

	a := auth.Options{Issuer: jwtIssuer, Audience: jwtAudience, Leeway: jwtLeeway}
	if jwtLeeway == 0 {
		a.Leeway = -1 // explicit zero: no leeway
	}
	switch {
	case jwtSecret != "" && jwtPublicKey != "":
		return nil, errors.New("--jwt-secret (EDGE_JWT_SECRET) and --jwt-public-key (EDGE_JWT_PUBLIC_KEY): set one, not both")
	case jwtSecret != "":
		a.HMACSecret = []byte(jwtSecret)
	case jwtPublicKey != "":
		pem, err := os.ReadFile(jwtPublicKey)
		if err != nil {
			return nil, fmt.Errorf("--jwt-public-key (EDGE_JWT_PUBLIC_KEY): %w", err)
		}
		a.PublicKeyPEM = pem
	default:
		return nil, errors.New("no JWT key: set EDGE_JWT_SECRET (HS256) or EDGE_JWT_PUBLIC_KEY (path of a PEM public key)")
	}
	if _, err := auth.NewVerifier(a); err != nil {
		return nil, fmt.Errorf("--jwt-secret/--jwt-public-key: %w", err)
	}

	var emb broker.EmbeddedOptions
	if natsURL == "" {
		host, portStr, err := net.SplitHostPort(embeddedAddr)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("--embedded-nats-addr (EDGE_EMBEDDED_NATS_ADDR): %q is not host:port", embeddedAddr)
		}
		if c.dataDir == "" {
			return nil, errors.New("--data-dir (EDGE_DATA_DIR): required with the embedded NATS server")
		}
		emb = broker.EmbeddedOptions{Host: host, Port: port, StoreDir: c.dataDir, Name: "eventedge-embedded"}
	}
	var allowed []string
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			allowed = append(allowed, o)
		}
	}

	stream := events.StreamConfig{MaxAge: streamMaxAge, MaxMsgsPerSubject: streamPerSubject, Duplicates: streamDup, Replicas: streamReplicas}
	if err := stream.Validate(); err != nil {
		return nil, fmt.Errorf("--stream-*: %w", err)
	}
	c.node = node.Options{
		Name:      nodeName,
		Addr:      addr,
		AdminAddr: adminAddr,
		NATSURL:   natsURL,
		Embedded:  emb,
		Stream:    stream,
		History:   history.Options{MaxInFlight: historyReads},
		Auth:      a,
		Server: server.Options{
			AllowedOrigins:    allowed,
			ReadLimit:         readLimit,
			MaxConns:          maxConns,
			MaxConnsPerUser:   maxConnsPerUser,
			MaxConnsPerIP:     maxConnsPerIP,
			ReadyFill:         readyFill,
			TrustForwardedFor: trustForwardedFor,
			ReadHeaderTimeout: readHeaderTimeout,
		},
		Session: session.Options{
			AuthTimeout:      authTimeout,
			WriteTimeout:     writeTimeout,
			PingInterval:     pingInterval,
			PingTimeout:      pingTimeout,
			QueueMessages:    queueMessages,
			QueueBytes:       int(queueBytes),
			MaxSubscriptions: maxSubs,
			HighWater:        highWater,
			ClientRate:       clientRate,
			ClientBurst:      clientBurst,
			ProgressRate:     progressRate,
			MaxCoalescedLogs: maxCoalescedLogs,
			CommandRate:      commandRate,
			CommandBurst:     commandBurst,
			AckRate:          ackRate,
			AckBurst:         ackBurst,
		},
		ShutdownTimeout:   shutdownTimeout,
		DrainDuration:     drainDuration,
		LowPriorityBudget: lowBudget,
		StatsInterval:     statsInterval,
	}
	if drainDuration == 0 {
		c.node.DrainDuration = -1 // explicit zero: close every client at once
	}
	if expiringNotice <= 0 {
		return nil, errors.New("--expiring-notice (EDGE_EXPIRING_NOTICE) must be positive")
	}
	if revocationTTL < time.Second {
		return nil, fmt.Errorf("--revocation-ttl (EDGE_REVOCATION_TTL): %s must be at least 1s (the REVOCATIONS stream's max age; use at least the longest token lifetime)", revocationTTL)
	}
	if historyReads < 1 || historyReads > 10000 {
		return nil, fmt.Errorf("--history-reads (EDGE_HISTORY_READS): %d must be between 1 and 10000", historyReads)
	}
	if socketSendBuffer < 0 || socketSendBuffer > 64<<20 {
		return nil, fmt.Errorf("--socket-send-buffer (EDGE_SOCKET_SEND_BUFFER): %d must be between 0 and 67108864", socketSendBuffer)
	}
	c.node.Session.ExpiringNotice = expiringNotice
	c.node.RevocationTTL = revocationTTL
	c.node.SocketSendBuffer = socketSendBuffer
	c.node.AdminPprof = adminPprof
	switch compression {
	case "off":
	case "on":
		c.node.Server.Compression = true
	default:
		return nil, fmt.Errorf("--compression (EDGE_COMPRESSION): %q, want off or on", compression)
	}
	if compressionThreshold < 1 || compressionThreshold > 1<<20 {
		return nil, fmt.Errorf("--compression-threshold (EDGE_COMPRESSION_THRESHOLD): %d must be between 1 and 1048576", compressionThreshold)
	}
	c.node.Server.CompressionThreshold = compressionThreshold
	if roomPolicy != "" {
		p, err := policy.Load(roomPolicy)
		if err != nil {
			return nil, fmt.Errorf("--room-policy (EDGE_ROOM_POLICY): %w", err)
		}
		c.node.Policy = p
	}
	return c, nil
}

// wantOf describes the values flag f accepts, for error messages.
func wantOf(f *flag.Flag) string {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		return "want a duration such as 500ms, 5s or 1m"
	case int, int64:
		return "want an integer"
	case float64:
		return "want a number"
	case bool:
		return "want true or false"
	}
	return "invalid value"
}

// clip hides secrets in error messages: a bad value of a secret is never
// echoed.
func clip(v, flagName string) string {
	if strings.Contains(flagName, "secret") {
		return "…"
	}
	if len(v) > 60 {
		return v[:60] + "…"
	}
	return v
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
