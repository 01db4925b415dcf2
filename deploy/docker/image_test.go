package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// devSecret is the development JWT secret of `make run` and compose.
const devSecret = "dev-secret-do-not-use-in-production-0123456789"

// nonRoot is the numeric user every image runs as.
const nonRoot = "65532:65532"

// repoRoot is the repository's root, two levels above this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// docker runs the docker client with a bounded time and returns its
// combined output.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, lastLine(string(out)))
	}
	return string(out), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// noEngine is why there is no Docker engine to test with, or "" when one
// answers; set once by TestMain.
var noEngine string

// TestMain looks for a Docker engine once for every test. (`go test ./...`
// shows a skip's reason only with -v; .ci/run says itself when it could
// not start an engine.)
func TestMain(m *testing.M) {
	noEngine = findEngine()
	os.Exit(m.Run())
}

// findEngine returns why no Docker engine answers on DOCKER_HOST or the
// default socket, or "" when one does.
func findEngine() string {
	if _, err := exec.LookPath("docker"); err != nil {
		return "no docker client in PATH"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := docker(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		return fmt.Sprintf("DOCKER_HOST=%q: %v", os.Getenv("DOCKER_HOST"), err)
	}
	return ""
}

// requireEngine skips the test unless a Docker engine answers.
func requireEngine(t *testing.T) {
	t.Helper()
	if noEngine != "" {
		t.Skip("skipped: no Docker engine: " + noEngine)
	}
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago, picked at random outside the kernel's ephemeral range
// (ip_local_port_range): a port from that range, as "127.0.0.1:0" gives,
// can be taken as the source port of an outgoing connection between the
// check and the container's bind, and the container then fails to start.
// The same rule as services/internal/proctest.FreeAddrs, which Go's
// internal rule keeps this module from importing. When the host leaves no
// room outside its ephemeral range, the kernel picks.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	lo, hi := fixedPorts()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 200*n {
			t.Fatalf("no %d free ports after %d tries (range %d-%d; 0-0: the kernel's)", n, tries, lo, hi)
		}
		addr := "127.0.0.1:0"
		if lo != 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo+1)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken: try another
		}
		ls = append(ls, l) // held until all n are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// fixedPorts returns the ports between 20000 and the start of the
// ephemeral range, or those above its end (at least 1,000 of them); 0, 0
// when neither is that large or the range cannot be read.
func fixedPorts() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	var elo, ehi int
	if _, err := fmt.Sscan(string(b), &elo, &ehi); err != nil {
		return 0, 0
	}
	const floor, minPorts = 20000, 1000
	switch {
	case elo-1-floor >= minPorts:
		return floor, elo - 1
	case 65535-ehi >= minPorts:
		return ehi + 1, 65535
	}
	return 0, 0
}

// checkFor polls f every 250ms until it returns nil or d has passed, and
// fails the test with f's last error then.
func checkFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// imageConfig is what the test reads of `docker image inspect`.
type imageConfig struct {
	User         string
	ExposedPorts map[string]struct{}
	Env          []string
	Labels       map[string]string
	Entrypoint   []string
	Healthcheck  *struct{ Test []string }
}

// container is one running container of the test.
type container struct {
	name, adminAddr string
}

// TestImages builds every image (buildImages: `make build` once, then
// build-images for each image not yet built by this test binary) and runs each on a
// Docker engine the way production does: read-only root filesystem, the
// numeric non-root user, no capabilities, host networking with every port on
// 127.0.0.1 (no container address is ever dialled). The edge runs with its
// embedded NATS on a tmpfs /data; the other services use that NATS. Each
// must answer /readyz 200 on its admin port and become healthy through the
// image's own HEALTHCHECK.
func TestImages(t *testing.T) {
	requireEngine(t)
	ctx := context.Background()
	buildImages(t, sortedKeys(services)...)

	for _, svc := range sortedKeys(services) {
		out, err := docker(ctx, "image", "inspect", "--format", "{{json .Config}}", "eventedge/"+svc+":latest")
		if err != nil {
			t.Fatal(err)
		}
		var c imageConfig
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatalf("%s: inspect: %v", svc, err)
		}
		if c.User != nonRoot {
			t.Errorf("%s: user %q, want %s", svc, c.User, nonRoot)
		}
		for _, p := range services[svc].ports {
			if _, ok := c.ExposedPorts[fmt.Sprintf("%d/tcp", p)]; !ok {
				t.Errorf("%s: port %d not exposed (exposed: %v)", svc, p, c.ExposedPorts)
			}
		}
		if c.Healthcheck == nil || strings.Join(c.Healthcheck.Test, " ") != "CMD /healthcheck" {
			t.Errorf("%s: healthcheck %+v, want CMD /healthcheck", svc, c.Healthcheck)
		}
		wantEnv := fmt.Sprintf("HEALTHCHECK_URL=http://127.0.0.1:%d/healthz", services[svc].adminPort)
		if !contains(c.Env, wantEnv) {
			t.Errorf("%s: env %v lacks %s", svc, c.Env, wantEnv)
		}
		for _, l := range []string{"title", "description", "source", "version", "revision", "created"} {
			if c.Labels["org.opencontainers.image."+l] == "" {
				t.Errorf("%s: label org.opencontainers.image.%s missing", svc, l)
			}
		}
	}

	p := freePorts(t, 11)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", p[2])
	loop := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)

	run := func(svc string, admin int, env []string, args ...string) container {
		t.Helper()
		c := container{name: "eventedge-test-" + svc + "-" + suffix, adminAddr: loop(admin)}
		dargs := []string{"run", "--detach", "--name", c.name,
			"--network", "host", "--read-only", "--user", nonRoot,
			"--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			// The image's interval is 10s; 1s keeps the test short. The
			// command is still the image's own.
			"--health-interval", "1s",
			"--env", "HEALTHCHECK_URL=http://" + c.adminAddr + "/healthz"}
		for _, e := range env {
			dargs = append(dargs, "--env", e)
		}
		if svc == "edge" {
			dargs = append(dargs, "--tmpfs", "/data:uid=65532,gid=65532,mode=0700")
		}
		dargs = append(dargs, "eventedge/"+svc+":latest")
		dargs = append(dargs, args...)
		if _, err := docker(ctx, dargs...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				logs, _ := docker(ctx, "logs", "--tail", "30", c.name)
				t.Logf("%s logs:\n%s", c.name, logs)
			}
			if _, err := docker(ctx, "rm", "--force", c.name); err != nil {
				t.Errorf("remove %s: %v", c.name, err)
			}
		})
		return c
	}

	edge := run("edge", p[1], []string{
		"EDGE_JWT_SECRET=" + devSecret,
		"EDGE_ADDR=" + loop(p[0]), "EDGE_ADMIN_ADDR=" + loop(p[1]),
		"EDGE_EMBEDDED_NATS_ADDR=" + loop(p[2]), "EDGE_NODE_NAME=docker-test",
	}, "--data-dir", "/data")
	waitReady(t, edge)

	others := []container{
		run("taskapi", p[4], []string{"NATS_URL=" + natsURL, "TASKAPI_JWT_SECRET=" + devSecret,
			"TASKAPI_ADDR=" + loop(p[3]), "TASKAPI_ADMIN_ADDR=" + loop(p[4])},
			"--exec-commands="),
		// scratch has no /bin/echo: the default exec allow-list would fail
		// the worker's start, so the image runs demo jobs only.
		run("worker", p[5], []string{"NATS_URL=" + natsURL, "WORKER_ADMIN_ADDR=" + loop(p[5]), "WORKER_NAME=docker-test"},
			"--exec-allow="),
		run("sysmon", p[6], []string{"NATS_URL=" + natsURL, "SYSMON_ADMIN_ADDR=" + loop(p[6])}),
		run("dashboard", p[8], []string{"DASHBOARD_ADDR=" + loop(p[7]), "DASHBOARD_ADMIN_ADDR=" + loop(p[8])}),
	}
	for _, c := range others {
		waitReady(t, c)
	}
	for _, c := range append([]container{edge}, others...) {
		checkContainer(t, ctx, c)
	}
}

// waitReady polls the container's /readyz until it answers 200.
func waitReady(t *testing.T, c container) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	checkFor(t, 60*time.Second, func() error {
		resp, err := client.Get("http://" + c.adminAddr + "/readyz")
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: /readyz %s", c.name, resp.Status)
		}
		return nil
	})
}

// checkContainer checks that c runs as the non-root user, wrote nothing to
// its (read-only) filesystem and becomes healthy through its HEALTHCHECK.
func checkContainer(t *testing.T, ctx context.Context, c container) {
	t.Helper()
	out, err := docker(ctx, "top", c.name, "-o", "pid,uid,comm")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("%s: docker top: %q", c.name, out)
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) < 2 || f[1] != "65532" {
			t.Errorf("%s: process %q does not run as uid 65532", c.name, l)
		}
	}
	if out, err := docker(ctx, "diff", c.name); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("%s: filesystem changed (err %v):\n%s", c.name, err, out)
	}
	checkFor(t, 30*time.Second, func() error {
		out, err := docker(ctx, "inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", c.name)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(out); got != "running healthy" {
			return fmt.Errorf("%s: state %q, want running healthy", c.name, got)
		}
		return nil
	})
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestFreePortsOutsideEphemeralRange: the ports are distinct, free to
// listen on, and (where the host leaves room) outside the kernel's
// ephemeral range.
func TestFreePortsOutsideEphemeralRange(t *testing.T) {
	lo, hi := fixedPorts()
	seen := map[int]bool{}
	for _, p := range freePorts(t, 40) {
		if lo != 0 && (p < lo || p > hi) {
			t.Fatalf("port %d outside the fixed range %d-%d", p, lo, hi)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("listen on %d, handed out as free: %v", p, err)
		}
		l.Close()
	}
}
