package nodestats_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/metrics"
	"github.com/eventedge/eventedge/services/edge/internal/nodestats"
)

// TestMain fails the package if a test leaves a goroutine behind: Stop
// must wait for the publishing loop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// TestPublishesUntilStopped: the publisher reports the node's figures on
// Subject every interval, and Stop (twice) ends its goroutine.
func TestPublishesUntilStopped(t *testing.T) {
	n := edgetest.StartNATS(t)
	nc, _ := n.Connect(t)
	sub, err := nc.SubscribeSync(nodestats.Subject)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(prometheus.NewRegistry())
	m.Connections.Set(3)
	p := nodestats.New("n1", nc, m, zerolog.Nop(), 20*time.Millisecond)
	p.Start()
	t.Cleanup(p.Stop)

	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no stats published: %v", err)
	}
	var s nodestats.Stats
	if err := json.Unmarshal(msg.Data, &s); err != nil {
		t.Fatalf("stats %q: %v", msg.Data, err)
	}
	if s.Node != "n1" || s.Connections != 3 {
		t.Fatalf("stats %+v; want node n1 with 3 connections", s)
	}
	p.Stop()
	p.Stop()
}
