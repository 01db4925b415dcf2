package docker

// The container suite of issue #9: testcontainers-go runs the edge image and
// the NATS image (eventedge/nats-server, packaged from bin/nats-server by
// build-images) and checks what only containers show: both start as the
// non-root user on a read-only root filesystem, the edge drains on
// `docker stop`, and a NATS container restart loses no event.
//
// Safety. This machine has /.dockerenv, so testcontainers-go believes it
// runs inside a container and, left to itself, resolves the "host" of a
// container to the default gateway — an address off this machine that must
// never receive traffic — and creates a bridge network for its reaper. Before
// its first call (useTestcontainers) the suite sets
// TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1 and TESTCONTAINERS_RYUK_DISABLED,
// and selects a runtime of its own (loopbackRuntime) that names the engine
// of DOCKER_HOST explicitly (no discovery through ~/.testcontainers.properties
// or the default socket), publishes on 127.0.0.1 and takes "host" as the
// default network (none is created). Every container runs with host
// networking, each process listening on a 127.0.0.1 port the test chose,
// and only local images are run: one that is missing fails the test rather
// than being pulled. checkLoopbackOnly then reads /proc to check that every
// socket of the test and of its containers is on loopback.

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dcontainer "github.com/moby/moby/api/types/container"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/deliverycheck"
)

const (
	edgeImage = "eventedge/edge:latest"
	natsImage = "eventedge/nats-server:latest"

	// loopbackRuntimeName selects loopbackRuntime (TESTCONTAINERS_PROVIDER).
	loopbackRuntimeName = "eventedge-loopback"

	// stopTimeout is the grace `docker stop` gives before SIGKILL in the
	// drain test.
	stopTimeout = 15 * time.Second
)

// loopbackRuntime is the testcontainers runtime of this suite: the engine
// of DOCKER_HOST, given explicitly, container ports reached on 127.0.0.1,
// and "host" as the default network, so that testcontainers neither
// discovers an engine, nor resolves a gateway, nor creates a network.
type loopbackRuntime struct {
	dockerHost, socketPath string
}

func (r loopbackRuntime) Initialize(context.Context) (testcontainers.RuntimeConfig, error) {
	return testcontainers.RuntimeConfig{
		DockerHost:           r.dockerHost,
		DockerSocketPath:     r.socketPath,
		PublishedHost:        "127.0.0.1",
		DefaultBridgeNetwork: "host",
	}, nil
}

var (
	tcOnce sync.Once
	tcErr  error // why testcontainers may not be used, set once by tcOnce

	imagesMu    sync.Mutex
	binaries    error           // guarded by imagesMu: nil once `make build` passed
	binariesRun bool            // guarded by imagesMu
	imagesBuilt map[string]bool // guarded by imagesMu: images built by this test binary
)

// useTestcontainers makes testcontainers safe to call, once per process,
// before any other testcontainers call of the suite; see the file comment.
func useTestcontainers() error {
	tcOnce.Do(func() { tcErr = setUpTestcontainers() })
	return tcErr
}

func setUpTestcontainers() error {
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // the reaper's image cannot be pulled
	os.Setenv("TESTCONTAINERS_PROVIDER", loopbackRuntimeName)
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock" // the docker client's default; any other engine: set DOCKER_HOST
	}
	socket, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return fmt.Errorf("DOCKER_HOST=%q: the suite drives only an engine on a local unix socket", host)
	}
	if err := testcontainers.RegisterProvider(loopbackRuntimeName, func() testcontainers.RuntimeProvider {
		return loopbackRuntime{dockerHost: host, socketPath: socket}
	}); err != nil {
		return err
	}
	// Check what testcontainers will do before it does anything: the
	// configuration it read (environment and ~/.testcontainers.properties)
	// and where its provider reaches containers.
	cfg := testcontainers.ReadConfig().Config
	if !cfg.RyukDisabled || cfg.Provider != loopbackRuntimeName || cfg.HubImageNamePrefix != "" {
		return fmt.Errorf("testcontainers configuration: ryuk disabled %v, provider %q, hub image prefix %q; want true, %q, none",
			cfg.RyukDisabled, cfg.Provider, cfg.HubImageNamePrefix, loopbackRuntimeName)
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("testcontainers provider: %w", err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if h, err := p.DaemonHost(ctx); err != nil || h != "127.0.0.1" {
		return fmt.Errorf("testcontainers daemon host %q (%v), want 127.0.0.1", h, err)
	}
	if rt := p.RuntimeConfig(); rt.DockerHost != host || rt.DefaultBridgeNetwork != "host" {
		return fmt.Errorf("testcontainers runtime %+v, want engine %s and network host", rt, host)
	}
	return nil
}

// requireContainers skips the test without a Docker engine, and otherwise
// makes testcontainers safe and the images built.
func requireContainers(t *testing.T) {
	t.Helper()
	requireEngine(t)
	if err := useTestcontainers(); err != nil {
		t.Fatal(err)
	}
	buildImages(t, "edge", "nats-server")
}

// buildImages builds the images of svcs (eventedge/<svc>:latest) that this
// test binary has not built yet, the way `make images` does: `make build`
// once, then deploy/docker/build-images for those images only (each takes
// seconds; the suite needs two of six). It fails the test if a build
// failed, or if an image of the suite is not there afterwards: nothing is
// ever pulled.
func buildImages(t *testing.T, svcs ...string) {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root := repoRoot(t)
	if !binariesRun {
		binariesRun = true
		if out, err := exec.CommandContext(ctx, "make", "-C", root, "build").CombinedOutput(); err != nil {
			binaries = fmt.Errorf("make build: %w\n%s", err, out)
		}
	}
	if binaries != nil {
		t.Fatal(binaries)
	}
	var todo []string
	for _, svc := range svcs {
		if !imagesBuilt[svc] {
			todo = append(todo, svc)
		}
	}
	if len(todo) > 0 {
		start := time.Now()
		cmd := exec.CommandContext(ctx, "deploy/docker/build-images", todo...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build-images %s: %v\n%s", strings.Join(todo, " "), err, out)
		}
		if imagesBuilt == nil {
			imagesBuilt = map[string]bool{}
		}
		for _, svc := range todo {
			imagesBuilt[svc] = true
		}
		t.Logf("images %s built in %s", strings.Join(todo, ", "), time.Since(start).Round(time.Millisecond))
	}
	for _, svc := range svcs {
		if _, err := docker(ctx, "image", "inspect", "--format", "{{.Id}}", "eventedge/"+svc+":latest"); err != nil {
			t.Fatalf("%v (only local images are run)", err)
		}
	}
}

// spec is one container of the suite.
type spec struct {
	image  string
	name   string            // prefix of the container's name
	env    map[string]string // besides HEALTHCHECK_URL
	cmd    []string          // replaces the image's CMD when set
	health string            // HEALTHCHECK_URL: the process's /healthz on 127.0.0.1
	tmpfs  map[string]string
	volume string // a named volume mounted on /data, removed with the container
}

// run starts s the way production runs the images: the numeric non-root
// user, a read-only root filesystem, no capabilities, no new privileges,
// host networking. It returns once the image's own HEALTHCHECK (polled every
// 500ms instead of 10s) reports healthy, and removes the container when the
// test ends.
func run(t *testing.T, s spec) *testcontainers.DockerContainer {
	t.Helper()
	env := map[string]string{"HEALTHCHECK_URL": s.health}
	for k, v := range s.env {
		env[k] = v
	}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithName(fmt.Sprintf("eventedge-tc-%s-%d", s.name, time.Now().UnixNano())),
		testcontainers.WithLogger(tclog.TestLogger(t)),
		testcontainers.WithEnv(env),
		testcontainers.WithConfigModifier(func(c *dcontainer.Config) {
			c.User = nonRoot
			// No Test: the daemon keeps the image's command.
			c.Healthcheck = &dcontainer.HealthConfig{Interval: 500 * time.Millisecond}
		}),
		testcontainers.WithHostConfigModifier(func(h *dcontainer.HostConfig) {
			h.NetworkMode = "host"
			h.ReadonlyRootfs = true
			h.CapDrop = []string{"ALL"}
			h.SecurityOpt = []string{"no-new-privileges"}
		}),
		testcontainers.WithWaitStrategy(wait.ForHealthCheck().
			WithStartupTimeout(60 * time.Second).WithPollInterval(100 * time.Millisecond)),
	}
	if len(s.cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(s.cmd...))
	}
	if s.tmpfs != nil {
		opts = append(opts, testcontainers.WithTmpfs(s.tmpfs))
	}
	terminate := []testcontainers.TerminateOption{testcontainers.StopTimeout(2 * time.Second)}
	if s.volume != "" {
		opts = append(opts, testcontainers.WithMounts(testcontainers.VolumeMount(s.volume, "/data")))
		terminate = append(terminate, testcontainers.RemoveVolumes(s.volume))
	}
	c, err := testcontainers.Run(context.Background(), s.image, opts...)
	testcontainers.CleanupContainer(t, c, terminate...)
	if c != nil {
		t.Cleanup(func() {
			if t.Failed() {
				logTail(t, c)
			}
		})
	}
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	return c
}

// logTail logs the last lines of c's output.
func logTail(t *testing.T, c *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx)
	if err != nil {
		t.Logf("%s: logs: %v", c.GetContainerID()[:12], err)
		return
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("%s, last lines:\n%s", c.GetContainerID()[:12], strings.Join(lines[max(0, len(lines)-40):], "\n"))
}

// natsNode is a NATS container and its loopback ports.
type natsNode struct {
	c         *testcontainers.DockerContainer
	url       string // nats://127.0.0.1:port
	adminAddr string // monitoring, /healthz
}

// runNATS starts eventedge/nats-server with JetStream, its client and
// monitoring ports on 127.0.0.1, its store on a tmpfs or, when volume is
// set, on that named volume (a tmpfs does not survive a restart).
func runNATS(t *testing.T, volume string) natsNode {
	t.Helper()
	p := freePorts(t, 2)
	s := spec{
		image: natsImage, name: "nats", volume: volume,
		cmd: []string{"--addr=127.0.0.1", "--port=" + strconv.Itoa(p[0]), "--http_port=" + strconv.Itoa(p[1]),
			"--jetstream", "--store_dir=/data/jetstream", "--server_name=eventedge-tc"},
		health: fmt.Sprintf("http://127.0.0.1:%d/healthz", p[1]),
	}
	if volume == "" {
		s.tmpfs = map[string]string{"/data": "uid=65532,gid=65532,mode=0700"}
	}
	return natsNode{c: run(t, s), url: fmt.Sprintf("nats://127.0.0.1:%d", p[0]), adminAddr: fmt.Sprintf("127.0.0.1:%d", p[1])}
}

// edgeNode is an edge container and its loopback ports.
type edgeNode struct {
	c         *testcontainers.DockerContainer
	url       string // ws://127.0.0.1:port/v1/ws
	adminAddr string
}

// runEdge starts the edge image against the NATS server at natsURL. With
// NATS_URL set the edge writes nothing, so it needs no mount at all.
func runEdge(t *testing.T, natsURL string, env map[string]string) edgeNode {
	t.Helper()
	p := freePorts(t, 2)
	e := map[string]string{
		"NATS_URL": natsURL, "EDGE_JWT_SECRET": devSecret, "EDGE_NODE_NAME": "tc-edge",
		"EDGE_ADDR": fmt.Sprintf("127.0.0.1:%d", p[0]), "EDGE_ADMIN_ADDR": fmt.Sprintf("127.0.0.1:%d", p[1]),
	}
	for k, v := range env {
		e[k] = v
	}
	c := run(t, spec{image: edgeImage, name: "edge", env: e, health: fmt.Sprintf("http://127.0.0.1:%d/healthz", p[1])})
	return edgeNode{c: c, url: fmt.Sprintf("ws://127.0.0.1:%d/v1/ws", p[0]), adminAddr: fmt.Sprintf("127.0.0.1:%d", p[1])}
}

// noProxy is an HTTP client that dials the address it is given, whatever
// the environment's proxy settings.
var noProxy = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

// devToken is a development token of user u1 for project p1.
func devToken(t *testing.T) string {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"permissions": []string{"tasks:read"}, "projects": []string{"p1"},
	}).SignedString([]byte(devSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// inspect returns the container's current state as the engine sees it.
func inspect(t *testing.T, c *testcontainers.DockerContainer) *dcontainer.InspectResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// checkHardened checks that the running container c is what run asked for
// and that its process really runs that way: as uid 65532 (its
// /proc/<pid>/status), with its root mounted read-only (its mountinfo), on
// the host network with no port published.
func checkHardened(t *testing.T, what string, c *testcontainers.DockerContainer) {
	t.Helper()
	in := inspect(t, c)
	if in.Config.User != nonRoot {
		t.Errorf("%s: user %q, want %s", what, in.Config.User, nonRoot)
	}
	if !in.HostConfig.ReadonlyRootfs {
		t.Errorf("%s: root filesystem not read-only", what)
	}
	if in.HostConfig.NetworkMode != "host" {
		t.Errorf("%s: network %q, want host", what, in.HostConfig.NetworkMode)
	}
	if in.NetworkSettings != nil {
		for port, bindings := range in.NetworkSettings.Ports {
			if len(bindings) > 0 {
				t.Errorf("%s: port %s published: %v", what, port, bindings)
			}
		}
	}
	pid := in.State.Pid
	if pid <= 0 {
		t.Fatalf("%s: no process (state %+v)", what, in.State)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && (k == "Uid" || k == "Gid") {
			for _, id := range strings.Fields(v) { // real, effective, saved, filesystem
				if id != "65532" {
					t.Errorf("%s: process %d %s %s, want 65532 throughout", what, pid, k, strings.TrimSpace(v))
					break
				}
			}
		}
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, l := range strings.Split(string(mounts), "\n") {
		// id parent major:minor root mount-point options ...
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/" {
			root = f[5] // the last mount on / is the one the process sees
		}
	}
	if !slices.Contains(strings.Split(root, ","), "ro") {
		t.Errorf("%s: process %d sees / mounted %q, want ro", what, pid, root)
	}
}

// getOK GETs http://addr+path and fails the test unless it answers 200.
func getOK(t *testing.T, addr, path string) {
	t.Helper()
	resp, err := noProxy.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %s", addr, path, resp.Status)
	}
}

// TestContainersNonRootReadOnly: the NATS and edge images run as the
// non-root user on a read-only root filesystem, with only a tmpfs on /data
// for NATS's JetStream store, and work that way: both become healthy
// through their own HEALTHCHECK, NATS's /healthz (JetStream included)
// answers, and the edge, connected to that NATS, is ready.
func TestContainersNonRootReadOnly(t *testing.T) {
	requireContainers(t)
	n := runNATS(t, "")
	e := runEdge(t, n.url, nil)

	checkHardened(t, "nats", n.c)
	checkHardened(t, "edge", e.c)
	getOK(t, n.adminAddr, "/healthz")
	getOK(t, e.adminAddr, "/readyz")
	checkLoopbackOnly(t, n.c, e.c)
}

// TestContainersEdgeDrainsOnStop: `docker stop` sends the edge SIGTERM; a
// connected client is closed with 1012 (service restart), which only the
// live process draining can send (a killed one leaves 1006), so before it
// exits; and the container exits 0 within the stop timeout, not killed at
// its end. (The two times are logged, not compared: the client's goroutine
// may wake after the last ~50ms of the edge's shutdown.)
func TestContainersEdgeDrainsOnStop(t *testing.T) {
	requireContainers(t)
	n := runNATS(t, "")
	e := runEdge(t, n.url, map[string]string{"EDGE_DRAIN_DURATION": "1s"})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, e.url, client.Options{Token: devToken(t), HTTPClient: noProxy})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Subscribe(ctx, room.Project("p1").String()); err != nil {
		t.Fatal(err)
	}
	checkLoopbackOnly(t, n.c, e.c)

	stopped := make(chan error, 1)
	stopAt := time.Now()
	go func() {
		d := stopTimeout
		stopped <- e.c.Stop(ctx, &d)
	}()
	var closedAt time.Time
	select {
	case <-conn.Done():
		closedAt = time.Now()
	case <-ctx.Done():
		t.Fatal("the client was not closed")
	}
	if code := client.CloseCode(conn.Err()); code != 1012 {
		t.Errorf("client closed by %v (code %d), want 1012", conn.Err(), code)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	st := inspect(t, e.c).State
	finished, err := time.Parse(time.RFC3339Nano, st.FinishedAt)
	if err != nil {
		t.Fatalf("finished at %q: %v", st.FinishedAt, err)
	}
	t.Logf("closed 1012 after %s, exited %d after %s", closedAt.Sub(stopAt).Round(time.Millisecond), st.ExitCode, finished.Sub(stopAt).Round(time.Millisecond))
	if st.Running || st.ExitCode != 0 || st.OOMKilled {
		t.Errorf("after docker stop: running %v, exit code %d, OOM-killed %v; want exited 0", st.Running, st.ExitCode, st.OOMKilled)
	}
	if d := finished.Sub(stopAt); d >= stopTimeout {
		t.Errorf("exited %s after docker stop, not within its %s", d, stopTimeout)
	}
}

// published is when one event was first sent and when it was acknowledged.
type published struct{ first, acked time.Time }

// TestContainersNATSRestartNoLoss: a reliable client (client.NewClient) is
// subscribed through the edge container while a publisher sends 600 events
// to its room, retrying each until JetStream acknowledges it (same id, so
// de-duplicated), before, during and after a restart of the NATS container,
// whose JetStream store is on a named volume. The stream survives the
// restart, and the client receives every event once, in order
// (deliverycheck), with no reset.
func TestContainersNATSRestartNoLoss(t *testing.T) {
	requireContainers(t)
	const total = 600
	n := runNATS(t, fmt.Sprintf("eventedge-tc-nats-%d", time.Now().UnixNano()))
	e := runEdge(t, n.url, nil)
	r := room.Project("p1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	nc, err := nats.Connect(n.url, nats.Name("tc-publisher"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, events.StreamName) // the edge created it
	if err != nil {
		t.Fatal(err)
	}
	created := stream.CachedInfo().Created

	got := deliverycheck.NewReceived("tc-client")
	var delivered atomic.Int64
	c := client.NewClient(client.Config{URLs: []string{e.url}, Token: devToken(t), HTTPClient: noProxy,
		BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second})
	c.Subscribe(r.String())
	cctx, ccancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := c.Run(cctx); err != nil {
			t.Errorf("client: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		for m := range c.Events() {
			if got.Record(m) {
				delivered.Add(1)
			}
		}
	}()
	defer func() { ccancel(); wg.Wait() }()
	checkFor(t, 30*time.Second, func() error {
		if !c.Subscribed(r.String()) {
			return errors.New("client not subscribed")
		}
		return nil
	})

	// The publisher: one event every 5ms, each retried until acknowledged.
	log := deliverycheck.NewLog()
	times := make([]published, total)
	var sent atomic.Int64
	pubErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			ev := events.TaskUpdated(r, "u7", "t1", &pb.Task{Title: fmt.Sprintf("v%d", i)}, "title")
			times[i].first = time.Now()
			for {
				pctx, pcancel := context.WithTimeout(ctx, time.Second)
				ack, err := events.Publish(pctx, js, ev)
				pcancel()
				if err == nil {
					times[i].acked = time.Now()
					log.Add(r.String(), ack.Sequence)
					sent.Add(1)
					break
				}
				if ctx.Err() != nil {
					pubErr <- fmt.Errorf("event %d: %w", i, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		pubErr <- nil
	}()

	checkFor(t, 30*time.Second, func() error {
		if s := sent.Load(); s < total/4 {
			return fmt.Errorf("%d events published", s)
		}
		return nil
	})
	stopAt := time.Now()
	d := 10 * time.Second
	if err := n.c.Stop(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if err := n.c.Start(ctx); err != nil { // waits for healthy again
		t.Fatal(err)
	}
	backAt := time.Now()
	t.Logf("NATS restarted in %s", backAt.Sub(stopAt).Round(time.Millisecond))
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}

	var before, during, after int
	for _, p := range times {
		switch {
		case p.acked.Before(stopAt):
			before++
		case p.first.Before(backAt):
			during++ // sent before NATS was back, acknowledged after it went down
		default:
			after++
		}
	}
	t.Logf("published %d events: %d before the restart, %d during it, %d after", total, before, during, after)
	if before == 0 || during == 0 || after == 0 {
		t.Errorf("want events before, during and after the restart")
	}

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created.Equal(created) || info.State.Msgs < total {
		t.Errorf("stream %s after the restart: created %s (was %s), %d messages; want the same stream with at least %d",
			events.StreamName, info.Created, created, info.State.Msgs, total)
	}

	checkFor(t, 30*time.Second, func() error {
		if d := delivered.Load(); d < total {
			return fmt.Errorf("%d of %d events delivered", d, total)
		}
		return nil
	})
	rep := deliverycheck.Check(log, got, deliverycheck.Expectation{Room: r.String()})
	t.Logf("delivery: %s", rep)
	if !rep.OK() || rep.Expected != total || rep.Delivered != total {
		t.Errorf("delivery: %s; want all %d delivered once, in order, without reset", rep, total)
	}
	checkLoopbackOnly(t, n.c, e.c)
}

// checkLoopbackOnly checks that every TCP and UDP socket of the test
// process and of the containers' processes (host networking: they share
// this network namespace, so /proc/net lists their sockets) is bound to a
// loopback address and, when connected, connected to one. Run while the
// connections of the test are up.
func checkLoopbackOnly(t *testing.T, cs ...*testcontainers.DockerContainer) {
	t.Helper()
	pids := []int{os.Getpid()}
	for _, c := range cs {
		pids = append(pids, inspect(t, c).State.Pid)
	}
	owner := map[string]int{} // socket inode -> pid
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		fds, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("sockets of process %d: %v", pid, err)
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil {
				continue // closed since
			}
			if inode, ok := strings.CutPrefix(target, "socket:["); ok {
				owner[strings.TrimSuffix(inode, "]")] = pid
			}
		}
	}
	checked := 0
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open("/proc/net/" + table)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local remote st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 {
				continue
			}
			pid, ok := owner[fields[9]]
			if !ok {
				continue
			}
			checked++
			local, err1 := procAddr(fields[1])
			remote, err2 := procAddr(fields[2])
			if err := errors.Join(err1, err2); err != nil {
				t.Errorf("/proc/net/%s: %v", table, err)
				continue
			}
			if !local.IsLoopback() || !(remote.IsLoopback() || remote.IsUnspecified()) {
				t.Errorf("process %d: %s socket %s -> %s leaves loopback", pid, table, local, remote)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if checked == 0 {
		t.Errorf("no socket found for processes %v: nothing checked", pids)
	}
	t.Logf("loopback only: %d sockets of processes %v", checked, pids)
}

// procAddr decodes an address of /proc/net/{tcp,udp}[6]: hex, each 32-bit
// word in host (little-endian) byte order, then ":port".
func procAddr(s string) (net.IP, error) {
	h, _, _ := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != net.IPv4len && len(b) != net.IPv6len) {
		return nil, fmt.Errorf("address %q: not an IP address", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b), nil
}
