// Package probe asks NATS how it is: sysmon's own round trip, JetStream's
// account info, the EVENTS stream's info and, when configured, the NATS
// server's monitoring endpoint (/varz). It turns the answers into the
// monitor's input; deciding what they mean is the monitor's job.
package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/sysmon/internal/monitor"
)

// Options configures a Prober. The zero value of each field selects its
// default.
type Options struct {
	// Stream is the stream to inspect. Default events.StreamName (EVENTS).
	Stream string
	// MonitorURL is the NATS monitoring endpoint to read, such as
	// http://127.0.0.1:8222/varz. Default empty: not read.
	MonitorURL string
	// Timeout bounds one whole probe. Default 2s.
	Timeout time.Duration
}

// DefaultTimeout is the default of Options.Timeout.
const DefaultTimeout = 2 * time.Second

// maxVarzBytes bounds the monitoring endpoint's answer (a few KiB in
// practice).
const maxVarzBytes = 1 << 20

// Server is what the monitoring endpoint says about the NATS server.
type Server struct {
	Name          string  `json:"server_name"`
	Version       string  `json:"version"`
	Connections   int     `json:"connections"`
	SlowConsumers int64   `json:"slow_consumers"`
	CPU           float64 `json:"cpu"`
	Mem           int64   `json:"mem"`
	InMsgs        int64   `json:"in_msgs"`
	OutMsgs       int64   `json:"out_msgs"`
}

// Result is one probe.
type Result struct {
	NATS monitor.NATS
	// Server is nil when the monitoring endpoint is not configured or could
	// not be read (then NATS.MonitorErr says why).
	Server *Server
	// RTTErr is set when sysmon's own round trip to NATS failed.
	RTTErr error
}

// Prober runs probes. Probe is safe for concurrent use, but sysmon calls it
// from one goroutine.
type Prober struct {
	// static after New
	nc     *nats.Conn
	js     jetstream.JetStream
	opts   Options
	client *http.Client
}

// New returns a Prober using nc and js. Close releases its idle HTTP
// connections.
func New(nc *nats.Conn, js jetstream.JetStream, opts Options) *Prober {
	if opts.Stream == "" {
		opts.Stream = events.StreamName
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	// A transport of its own, so that Close can drop its idle connections
	// without touching anyone else's.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &Prober{nc: nc, js: js, opts: opts, client: &http.Client{Transport: tr, Timeout: opts.Timeout}}
}

// Close closes the idle connections to the monitoring endpoint.
func (p *Prober) Close() { p.client.CloseIdleConnections() }

// Probe asks NATS, JetStream and the monitoring endpoint, within
// Options.Timeout (or ctx's end, if sooner). Every failure is in the Result.
func (p *Prober) Probe(ctx context.Context) Result {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	var r Result
	r.NATS.Stream.Name = p.opts.Stream

	start := time.Now()
	if err := p.nc.FlushWithContext(ctx); err != nil {
		r.RTTErr = fmt.Errorf("nats round trip: %w", err)
	} else {
		r.NATS.RTT = time.Since(start)
	}

	if ai, err := p.js.AccountInfo(ctx); err != nil {
		r.NATS.JetStreamErr = fmt.Errorf("account info: %w", err)
	} else {
		r.NATS.Account = monitor.Account{
			Memory: ai.Memory, Storage: ai.Store,
			MaxMemory: ai.Limits.MaxMemory, MaxStorage: ai.Limits.MaxStore,
		}
	}

	// The stream is asked even when the account info failed: the answer
	// costs one request, and its error helps the operator.
	if s, err := p.js.Stream(ctx, p.opts.Stream); err != nil {
		r.NATS.StreamErr = fmt.Errorf("stream info: %w", err)
	} else {
		info := s.CachedInfo()
		r.NATS.Stream = monitor.Stream{
			Name:     p.opts.Stream,
			Messages: info.State.Msgs, Bytes: info.State.Bytes,
			MaxMsgs: info.Config.MaxMsgs, MaxBytes: info.Config.MaxBytes,
		}
	}

	if p.opts.MonitorURL != "" {
		srv, err := p.varz(ctx)
		if err != nil {
			r.NATS.MonitorErr = err
		} else {
			r.Server = srv
		}
	}
	return r
}

func (p *Prober) varz(ctx context.Context) (*Server, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.opts.MonitorURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.opts.MonitorURL, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err // *url.Error names the URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxVarzBytes)) // keep the connection reusable
		return nil, fmt.Errorf("GET %s: %s", p.opts.MonitorURL, resp.Status)
	}
	var s Server
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxVarzBytes)).Decode(&s); err != nil {
		return nil, fmt.Errorf("GET %s: decode: %w", p.opts.MonitorURL, err)
	}
	if s.Version == "" {
		return nil, fmt.Errorf("GET %s: %w", p.opts.MonitorURL, errNotVarz)
	}
	return &s, nil
}
