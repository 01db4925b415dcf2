package probe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/proto/events"

	"github.com/eventedge/eventedge/services/sysmon/internal/probe"
	"github.com/eventedge/eventedge/services/sysmon/internal/sysmontest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

func probeOnce(t *testing.T, p *probe.Prober) probe.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Probe(ctx)
}

func TestProbeHealthy(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{Monitor: true})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	sysmontest.EnsureStream(t, js, events.StreamConfig{MaxBytes: 1 << 20})
	if _, err := js.Publish(context.Background(), "evt.global", []byte("x")); err != nil {
		t.Fatal(err)
	}
	p := probe.New(nc, js, probe.Options{MonitorURL: sysmontest.VarzURL(ns)})
	defer p.Close()
	r := probeOnce(t, p)
	n := r.NATS
	if r.RTTErr != nil || n.JetStreamErr != nil || n.StreamErr != nil || n.MonitorErr != nil {
		t.Fatalf("probe errors: rtt %v, jetstream %v, stream %v, monitor %v", r.RTTErr, n.JetStreamErr, n.StreamErr, n.MonitorErr)
	}
	if n.RTT <= 0 {
		t.Errorf("RTT = %v, want positive", n.RTT)
	}
	if s := n.Stream; s.Name != "EVENTS" || s.Messages != 1 || s.Bytes == 0 || s.MaxBytes != 1<<20 || s.MaxMsgs != -1 {
		t.Errorf("Stream = %+v, want EVENTS with 1 message, MaxBytes 1 MiB, no message limit", s)
	}
	if n.Account.Memory == 0 {
		t.Errorf("Account = %+v, want the memory stream's bytes counted", n.Account)
	}
	if r.Server == nil || r.Server.Version == "" || r.Server.Name != "sysmontest" || r.Server.Connections < 1 {
		t.Errorf("Server = %+v, want the embedded server's varz", r.Server)
	}
}

func TestProbeStreamMissing(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	p := probe.New(nc, js, probe.Options{})
	defer p.Close()
	r := probeOnce(t, p)
	if r.NATS.JetStreamErr != nil {
		t.Errorf("JetStreamErr = %v, want nil", r.NATS.JetStreamErr)
	}
	if !errors.Is(r.NATS.StreamErr, jetstream.ErrStreamNotFound) || r.NATS.Stream.Name != "EVENTS" {
		t.Errorf("StreamErr = %v (stream %q), want stream not found for EVENTS", r.NATS.StreamErr, r.NATS.Stream.Name)
	}
	if r.Server != nil || r.NATS.MonitorErr != nil {
		t.Errorf("monitoring endpoint read although not configured: %+v, %v", r.Server, r.NATS.MonitorErr)
	}
}

func TestProbeNoJetStream(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{NoJetStream: true})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	p := probe.New(nc, js, probe.Options{Timeout: 2 * time.Second})
	defer p.Close()
	r := probeOnce(t, p)
	if r.NATS.JetStreamErr == nil || r.NATS.StreamErr == nil {
		t.Errorf("JetStreamErr = %v, StreamErr = %v; want both set without JetStream", r.NATS.JetStreamErr, r.NATS.StreamErr)
	}
	if r.RTTErr != nil {
		t.Errorf("RTTErr = %v: core NATS works without JetStream", r.RTTErr)
	}
}

func TestProbeMonitorEndpointErrors(t *testing.T) {
	ns := sysmontest.StartNATS(t, sysmontest.NATSOptions{})
	nc, js := sysmontest.Connect(t, ns.ClientURL())
	notVarz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"hello":"world"}`))
	}))
	defer notVarz.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	for _, url := range []string{notVarz.URL + "/missing", notVarz.URL + "/other", closedURL + "/varz"} {
		p := probe.New(nc, js, probe.Options{MonitorURL: url})
		r := probeOnce(t, p)
		p.Close()
		if r.NATS.MonitorErr == nil || r.Server != nil {
			t.Errorf("%s: MonitorErr = %v, Server = %+v; want an error", url, r.NATS.MonitorErr, r.Server)
		}
	}
}
