package load

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is one run's parameters. The zero value of a field selects the
// default named in its comment (WithDefaults); it is also the "parameters"
// of the JSON record, the secret excepted.
type Config struct {
	// URL is the edge's WebSocket endpoint. Default ws://127.0.0.1:8080/v1/ws.
	URL string `json:"url"`
	// NATSURL is where broadcast, rooms, slow, churn and resume publish (JetStream). Default
	// nats://127.0.0.1:4222.
	NATSURL string `json:"natsUrl"`
	// JWTSecret signs the clients' HS256 tokens (the edge's EDGE_JWT_SECRET,
	// at least 32 bytes). Required.
	JWTSecret string `json:"-"`
	// Preset is the named workload the parameters came from (L1, L2-60,
	// …; see Preset), empty when none. Informational: the other fields
	// hold the effective values.
	Preset string `json:"preset,omitempty"`
	// Scenario is broadcast, rooms, idle, connect, slow, churn or resume.
	// Required.
	Scenario string `json:"scenario"`
	// Clients is the number of WebSocket clients. Default 100.
	Clients int `json:"clients"`
	// Rate is events per second published (broadcast, rooms, slow,
	// churn; resume: the gap, before the clients connect). Default 10.
	Rate float64 `json:"rate"`
	// Duration is how long events are published (broadcast, rooms, slow,
	// churn, resume; churn connects its churning clients meanwhile, resume
	// connects its clients after) or clients are held before memory is
	// sampled (idle). Default 10s.
	Duration time.Duration `json:"duration"`
	// Dialers is how many clients connect at once. Default 50.
	Dialers int `json:"dialers"`
	// SourceAddrs spreads the clients over 127.0.0.1 … 127.0.0.K as local
	// addresses, so that more connections fit the local port range (and
	// the edge's per-address limit, --max-conns-per-ip, default 1000).
	// Default 1; at most 254; only for a loopback URL.
	SourceAddrs int `json:"sourceAddrs"`
	// PayloadBytes is the approximate size of one event's JSON. Default 200.
	PayloadBytes int `json:"payloadBytes"`
	// Mix is the events the publisher sends (broadcast, slow, churn):
	// padded (task_updated with its title padded to PayloadBytes) or
	// dashboard (the dashboard's mix of event types and sizes as the
	// services build them, from a fixed seed; PayloadBytes is not used;
	// the clients' tokens carry logs:read for its log lines) or job (one
	// job's task_progress with log lines at the whole rate, which the edge
	// coalesces: broadcast only, the last event checked). Default padded.
	Mix string `json:"mix"`
	// Compression makes the lean clients offer permessage-deflate (no
	// context takeover); the edge uses it only with --compression=on.
	Compression bool `json:"compression,omitempty"`
	// Protocol is the clients' wire format: json (text frames of JSON
	// messages) or protobuf (subprotocol eventedge.v1.protobuf: binary
	// frames of length-delimited protobufs), on the lean path and the Go
	// client's (churn) alike. Default json.
	Protocol string `json:"protocol"`
	// EdgePID is the edge process to sample from /proc every second
	// (CPU time, RSS). 0: not sampled.
	EdgePID int `json:"edgePid,omitempty"`
	// EdgeMetrics is the edge's /metrics URL, read at start and end.
	// Empty: not read.
	EdgeMetrics string `json:"edgeMetrics,omitempty"`
	// MaxDuration bounds the whole run. Default 5m.
	MaxDuration time.Duration `json:"maxDuration"`
	// DialTimeout bounds one client's connect + auth + subscribe. Default 10s.
	DialTimeout time.Duration `json:"dialTimeout"`
	// Drain is how long the publishing scenarios (broadcast, rooms, slow,
	// churn) wait, after the last publish, for the clients to receive what
	// is in flight; resume, after the last connect, for every client to
	// hold the whole gap. Default 5s.
	Drain time.Duration `json:"drain"`
	// Project is the project id of the room (project:<id>); rooms uses
	// <id>-r0 … <id>-r(Rooms-1). Default a
	// fresh "lg-<random>" per run, so the room holds only this run's events.
	Project string `json:"project"`
	// Rooms is the number of project rooms (rooms): <project>-r0 …
	// <project>-r(M-1). Default 10.
	Rooms int `json:"rooms,omitempty"`
	// LogsFraction is the share of rooms events published with
	// requiredPermission logs:read (rooms). 0 … 1; the flag's default 0.25.
	LogsFraction float64 `json:"logsFraction,omitempty"`
	// NoLogsFraction is the share of rooms clients whose token lacks
	// logs:read (rooms). 0 … 1; the flag's default 0.5.
	NoLogsFraction float64 `json:"noLogsFraction,omitempty"`
	// UserFraction is the share of rooms events published to a client's
	// user room instead of a project room (rooms). 0 … 1; the flag's
	// default 0.1.
	UserFraction float64 `json:"userFraction,omitempty"`
	// SlowFraction is the share of clients that read slowly (slow).
	// (0, 1]; the flag's default 0.1.
	SlowFraction float64 `json:"slowFraction,omitempty"`
	// SlowReadDelay is how long a slow client waits after each event it
	// reads (slow). Default 10ms.
	SlowReadDelay time.Duration `json:"slowReadDelay,omitempty"`
	// ChurnRate is how many churning clients connect per second while
	// events flow (churn). Default 10.
	ChurnRate float64 `json:"churnRate,omitempty"`
	// ChurnLife is how long each churning client stays connected (churn).
	// Default 1s.
	ChurnLife time.Duration `json:"churnLife,omitempty"`
	// AllowRemote permits non-loopback URLs. Default false: a load
	// generator pointed at someone else's server by mistake is refused.
	AllowRemote bool `json:"allowRemote,omitempty"`

	// CPUProfile is where the command writes the load generator's own CPU
	// profile; empty: none. Not used by Run.
	CPUProfile string `json:"-"`
	// GCPercent is the load generator's own GC target, which the command
	// sets (runtime/debug.SetGCPercent) before Run; recorded so that runs
	// compare. Not used by Run. The flag's default: DefaultGCPercent.
	GCPercent int `json:"gcPercent,omitempty"`

	// ProcRoot is where /proc is (tests). Default "/proc".
	ProcRoot string `json:"-"`
}

// DefaultGCPercent is the load generator's GC target unless --gc-percent
// says otherwise: four times Go's default. A connect storm allocates
// while its live heap grows from nothing, and at Go's 100 the collector
// took about a tenth of the load generator's core in L5 (281–302 → 259–276
// µs of its CPU per client in three interleaved pairs, see
// docs/benchmarks.md); the cost is a heap up to five times the live one,
// in a process whose memory no figure measures.
const DefaultGCPercent = 400

// The wire formats of Config.Protocol.
const (
	ProtocolJSON     = "json"
	ProtocolProtobuf = "protobuf"
)

// Scenarios are the scenario names.
var Scenarios = []string{"broadcast", "rooms", "idle", "connect", "slow", "churn", "resume"}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	c.URL = cmp.Or(c.URL, "ws://127.0.0.1:8080/v1/ws")
	c.NATSURL = cmp.Or(c.NATSURL, "nats://127.0.0.1:4222")
	c.ProcRoot = cmp.Or(c.ProcRoot, "/proc")
	c.Clients = cmp.Or(c.Clients, 100)
	c.Rate = cmp.Or(c.Rate, 10)
	c.Duration = cmp.Or(c.Duration, 10*time.Second)
	c.Dialers = cmp.Or(c.Dialers, 50)
	c.SourceAddrs = cmp.Or(c.SourceAddrs, 1)
	c.PayloadBytes = cmp.Or(c.PayloadBytes, 200)
	c.MaxDuration = cmp.Or(c.MaxDuration, 5*time.Minute)
	c.DialTimeout = cmp.Or(c.DialTimeout, 10*time.Second)
	c.Drain = cmp.Or(c.Drain, 5*time.Second)
	c.Rooms = cmp.Or(c.Rooms, 10)
	c.Protocol = cmp.Or(c.Protocol, ProtocolJSON)
	c.Mix = cmp.Or(c.Mix, MixPadded)
	c.SlowReadDelay = cmp.Or(c.SlowReadDelay, 10*time.Millisecond)
	c.ChurnRate = cmp.Or(c.ChurnRate, 10)
	c.ChurnLife = cmp.Or(c.ChurnLife, time.Second)
	return c
}

// Validate reports the first problem of c (after WithDefaults), naming the
// flag.
func (c Config) Validate() error {
	switch {
	case !slices.Contains(Scenarios, c.Scenario):
		return fmt.Errorf("--scenario %q: want one of %s", c.Scenario, strings.Join(Scenarios, ", "))
	case len(c.JWTSecret) < 32:
		return errors.New("--jwt-secret (LOADGEN_JWT_SECRET): required, at least 32 bytes (the edge's EDGE_JWT_SECRET)")
	case c.Protocol != ProtocolJSON && c.Protocol != ProtocolProtobuf:
		return fmt.Errorf("--protocol %q: want json or protobuf", c.Protocol)
	case !slices.Contains(Mixes, c.Mix):
		return fmt.Errorf("--mix %q: want one of %s", c.Mix, strings.Join(Mixes, ", "))
	case c.Mix == MixJob && c.Scenario != "broadcast":
		return fmt.Errorf("--mix job: for broadcast only (the edge coalesces the job's progress events, and only broadcast's check expects that)")
	case c.Mix != MixPadded && (c.Scenario == "rooms" || c.Scenario == "resume"):
		return fmt.Errorf("--mix %s: for broadcast, slow and churn (rooms publishes its own mix of the four task types; resume replays padded task_updated events, none of which the edge may coalesce)", c.Mix)
	case c.Clients < 1:
		return fmt.Errorf("--clients %d: must be at least 1", c.Clients)
	case !(c.Rate > 0) || c.Rate > 1e6:
		return fmt.Errorf("--rate %g: must be in (0, 1e6] events/s", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("--duration %s: must be positive", c.Duration)
	case c.Dialers < 1:
		return fmt.Errorf("--dialers %d: must be at least 1", c.Dialers)
	case c.SourceAddrs < 1 || c.SourceAddrs > 254:
		return fmt.Errorf("--source-addrs %d: must be 1-254 (127.0.0.1 … 127.0.0.K)", c.SourceAddrs)
	case c.PayloadBytes < 0 || c.PayloadBytes > 512<<10:
		return fmt.Errorf("--payload-bytes %d: must be 0-524288", c.PayloadBytes)
	case c.EdgePID < 0:
		return fmt.Errorf("--edge-pid %d: must not be negative", c.EdgePID)
	case c.MaxDuration <= c.Duration:
		return fmt.Errorf("--max-duration %s: must exceed --duration %s", c.MaxDuration, c.Duration)
	case c.DialTimeout <= 0 || c.Drain <= 0:
		return errors.New("--dial-timeout and --drain must be positive")
	case c.Rooms < 1 || c.Rooms > 1000:
		return fmt.Errorf("--rooms %d: must be 1-1000", c.Rooms)
	case !fraction(c.LogsFraction) || !fraction(c.NoLogsFraction) || !fraction(c.UserFraction):
		return errors.New("--logs-fraction, --no-logs-fraction and --user-fraction must be in [0, 1]")
	case c.Scenario == "slow" && !(c.SlowFraction > 0 && c.SlowFraction <= 1):
		return fmt.Errorf("--slow-fraction %g: must be in (0, 1]", c.SlowFraction)
	case c.SlowReadDelay < 0 || c.SlowReadDelay > time.Minute:
		return fmt.Errorf("--slow-read-delay %s: must be 0-1m", c.SlowReadDelay)
	case !(c.ChurnRate > 0) || c.ChurnRate > 10000:
		return fmt.Errorf("--churn-rate %g: must be in (0, 10000] connects/s", c.ChurnRate)
	case c.ChurnLife <= 0 || c.ChurnLife > time.Hour:
		return fmt.Errorf("--churn-life %s: must be in (0, 1h]", c.ChurnLife)
	}
	if c.Scenario == "rooms" && len(roomProject(c.Project, c.Rooms-1)) > 64 {
		return fmt.Errorf("--project %q: too long for %d rooms (<project>-r<j> must fit 64 characters)", c.Project, c.Rooms)
	}
	if c.Project != "" && !validID(c.Project) {
		return fmt.Errorf("--project %q: want 1-64 characters of A-Z a-z 0-9 _ -", c.Project)
	}
	checks := []struct{ flag, raw string }{{"--url", c.URL}}
	if c.Scenario != "idle" && c.Scenario != "connect" {
		for _, u := range strings.Split(c.NATSURL, ",") {
			checks = append(checks, struct{ flag, raw string }{"--nats-url", strings.TrimSpace(u)})
		}
	}
	if c.EdgeMetrics != "" {
		checks = append(checks, struct{ flag, raw string }{"--edge-metrics", c.EdgeMetrics})
	}
	for _, ch := range checks {
		loop, err := loopbackURL(ch.raw)
		if err != nil {
			return fmt.Errorf("%s %q: %w", ch.flag, ch.raw, err)
		}
		if !loop && !c.AllowRemote {
			return fmt.Errorf("%s %q: not a loopback address; pass --allow-remote to load another machine", ch.flag, ch.raw)
		}
		if !loop && ch.flag == "--url" && c.SourceAddrs > 1 {
			return fmt.Errorf("--source-addrs %d: only for a loopback --url", c.SourceAddrs)
		}
	}
	return nil
}

// loopbackURL parses raw and reports whether its host is loopback
// (localhost, 127.0.0.0/8, ::1). Names other than localhost are not
// resolved: they count as remote.
func loopbackURL(raw string) (bool, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return false, err
	}
	if u.Host == "" {
		return false, errors.New("no host")
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

func fraction(f float64) bool { return f >= 0 && f <= 1 }

func validID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// MarshalJSON writes c with its durations as strings ("10s"), the form
// the flags take.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // without this method
	return json.Marshal(struct {
		plain
		Duration    string `json:"duration"`
		MaxDuration string `json:"maxDuration"`
		DialTimeout string `json:"dialTimeout"`
		Drain       string `json:"drain"`
		SlowRead    string `json:"slowReadDelay"`
		ChurnLife   string `json:"churnLife"`
	}{plain(c), c.Duration.String(), c.MaxDuration.String(), c.DialTimeout.String(), c.Drain.String(),
		c.SlowReadDelay.String(), c.ChurnLife.String()})
}
