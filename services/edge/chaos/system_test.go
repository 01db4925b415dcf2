package chaos

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/services/internal/netproxy"
	"github.com/eventedge/eventedge/services/internal/proctest"
)

// secret is the HS256 secret of the edges and the clients' tokens.
const secret = "chaos-secret-0123456789abcdef0123456789abcdef"

// bins holds the paths of the binaries TestMain built: "edge" and
// "nats-server".
var bins map[string]string

// buildBinaries builds bin/edge from this repository and nats-server at
// the version in the edge's go.sum, into dir.
func buildBinaries(dir string) (map[string]string, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		return nil, err
	}
	b, err := proctest.Build(dir, root, "edge")
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "nats-server")
	cmd := exec.Command("go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Join(root, "services", "edge") // the version of the edge's go.sum, as make bin/nats-server
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build nats-server: %v\n%s", err, o)
	}
	b["nats-server"] = out
	return b, nil
}

// natsNode is one server of the cluster.
type natsNode struct {
	name    string
	client  string // host:port of its client listener
	monitor string // host:port of its HTTP monitor
	proc    *proctest.Process
}

// startCluster starts an n-node NATS cluster with JetStream, each node
// with its own store under a temp dir, and waits until every node is
// healthy. Clients are told no other node's address (no_advertise): a
// client reaches exactly the addresses it was given, so a proxy in
// between can cut it off.
func startCluster(t *testing.T, n int) []*natsNode {
	t.Helper()
	nodes := make([]*natsNode, n)
	routes := make([]string, n)
	addrs := proctest.FreeAddrs(t, 3*n) // distinct: a route port that is another node's monitor port fails
	for i := range nodes {
		nodes[i] = &natsNode{name: fmt.Sprintf("nats-%d", i), client: addrs[3*i], monitor: addrs[3*i+1]}
		routes[i] = "nats://" + addrs[3*i+2]
	}
	for i, nd := range nodes {
		host, port := splitAddr(t, nd.client)
		_, mport := splitAddr(t, nd.monitor)
		args := []string{"-js", "-sd", t.TempDir(), "-n", nd.name, "-a", host, "-p", port, "-m", mport,
			"--cluster_name", "chaos", "--cluster", routes[i], "--routes", strings.Join(routes, ","), "--no_advertise"}
		// Ready is checked below for every node together: a node alone has
		// no JetStream meta leader, so it is not healthy until the others run.
		nd.proc = proctest.Start(t, proctest.Spec{Name: nd.name, Path: bins["nats-server"], Args: args, StopTimeout: 10 * time.Second})
	}
	for _, nd := range nodes {
		nd.waitHealthy(t)
	}
	return nodes
}

// waitHealthy waits until the node's /healthz answers 200 (JetStream
// included).
func (nd *natsNode) waitHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, 60*time.Second, nd.name+" healthy", func() bool {
		resp, err := http.Get("http://" + nd.monitor + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// edgeNode is one edge process, reached by clients through front and
// reaching NATS through back (one proxy per NATS node).
type edgeNode struct {
	name  string
	addr  string // public listener
	admin string
	front *netproxy.Proxy
	back  []*netproxy.Proxy
	proc  *proctest.Process
}

// URL is the WebSocket URL clients use: through the front proxy.
func (e *edgeNode) URL() string { return "ws://" + e.front.Addr() + "/v1/ws" }

// ready reports whether the edge's /readyz answers 200.
func (e *edgeNode) ready() bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + e.admin + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// startEdges starts n edge processes against the cluster, the EVENTS
// stream at three replicas, and waits until each is ready.
func startEdges(t *testing.T, nodes []*natsNode, n int) []*edgeNode {
	t.Helper()
	edges := make([]*edgeNode, n)
	// Every listener on a random port (the proxies) is opened before the
	// edges' ports are chosen, and the front proxies after every edge
	// holds its ports: none can take a port another was given.
	for i := range edges {
		e := &edgeNode{name: fmt.Sprintf("edge-%d", i)}
		for _, nd := range nodes {
			e.back = append(e.back, netproxy.Start(t, nd.client))
		}
		edges[i] = e
	}
	addrs := proctest.FreeAddrs(t, 2*n)
	for i, e := range edges {
		e.addr, e.admin = addrs[2*i], addrs[2*i+1]
		urls := make([]string, len(e.back))
		for k, p := range e.back {
			urls[k] = "nats://" + p.Addr()
		}
		e.proc = proctest.Start(t, proctest.Spec{
			Name: e.name,
			Path: bins["edge"],
			Args: []string{"--addr", e.addr, "--admin-addr", e.admin, "--nats-url", strings.Join(urls, ","),
				"--node-name", e.name, "--stream-replicas", "3", "--drain-duration", "1s", "--log-level", "warn",
				"--max-conns-per-ip", "100000"},
			Env:          []string{"EDGE_JWT_SECRET=" + secret},
			Ready:        "http://" + e.admin + "/readyz",
			ReadyTimeout: 60 * time.Second,
			StopTimeout:  20 * time.Second,
		})
	}
	for _, e := range edges {
		e.front = netproxy.Start(t, e.addr)
	}
	return edges
}

// connectJS connects a publisher to urls (comma separated) and returns
// its JetStream context; the connection retries for ever and is closed
// when the test ends.
func connectJS(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("connect to NATS %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// streamLeader returns the name of the NATS node leading the stream
// named name, asking until one answers; the stream must have three
// replicas.
func streamLeader(t *testing.T, js jetstream.JetStream, name string) string {
	t.Helper()
	var leader string
	waitFor(t, 30*time.Second, name+" stream leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		if info.Config.Replicas != 3 {
			t.Fatalf("%s stream has %d replicas, want 3", name, info.Config.Replicas)
		}
		leader = info.Cluster.Leader
		return true
	})
	return leader
}

// waitReplicaCurrent waits until the NATS node named name is a current
// replica (or the leader) of the stream named stream again.
func waitReplicaCurrent(t *testing.T, js jetstream.JetStream, stream, name string) {
	t.Helper()
	waitFor(t, 60*time.Second, name+" a current replica of the "+stream+" stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		if info.Cluster.Leader == name {
			return true
		}
		for _, r := range info.Cluster.Replicas {
			if r.Name == name && r.Current {
				return true
			}
		}
		return false
	})
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func splitAddr(t *testing.T, addr string) (host, port string) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[:i], addr[i+1:]
}
