// Package sysmontest starts a real embedded NATS server for sysmon's tests
// (random loopback port, JetStream store in the test's temp dir) and holds
// the polling and scraping helpers the tests share. Nothing is mocked.
package sysmontest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/proto/events"
)

// NATSOptions configures StartNATS.
type NATSOptions struct {
	// NoJetStream starts the server without JetStream.
	NoJetStream bool
	// Monitor opens the HTTP monitoring endpoint on a random port.
	Monitor bool
}

// StartNATS starts an embedded NATS server on 127.0.0.1, port -1, shut
// down when the test ends.
func StartNATS(t testing.TB, o NATSOptions) *natsserver.Server {
	t.Helper()
	opts := &natsserver.Options{
		ServerName:             "sysmontest",
		Host:                   "127.0.0.1",
		Port:                   -1,
		JetStream:              !o.NoJetStream,
		StoreDir:               t.TempDir(),
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
	}
	if o.Monitor {
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	return ns
}

// VarzURL is the /varz URL of a server started with Monitor.
func VarzURL(ns *natsserver.Server) string {
	return "http://" + ns.MonitorAddr().String() + "/varz"
}

// Connect connects to url, closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// EnsureStream creates the EVENTS stream (in memory) the way the edge does.
func EnsureStream(t testing.TB, js jetstream.JetStream, cfg events.StreamConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg.MemoryStorage = true
	if _, err := events.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("ensure stream: %v", err)
	}
}

// Eventually polls cond every 10ms until it holds, or fails the test after
// timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Get fetches url and returns the status code and body; an error is a
// status of 0 and the error as the body.
func Get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// Metric returns the value of the series named series (the name with its
// labels as /metrics prints them, e.g. `sysmon_status{status="error"}`)
// from the admin listener at adminURL, or -1 when it is absent.
func Metric(t testing.TB, adminURL, series string) float64 {
	t.Helper()
	code, body := Get(adminURL + "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, rest)
			}
			return v
		}
	}
	return -1
}

// Label formats one label pair for a series name: Label("k", "v") is
// {k="v"}.
func Label(k, v string) string { return fmt.Sprintf("{%s=%q}", k, v) }
