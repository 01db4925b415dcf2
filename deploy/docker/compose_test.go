package docker

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"gopkg.in/yaml.v3"
)

// composeFile is what the tests read of docker-compose.yml. yaml.v3
// resolves its anchors and merge keys (<<).
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                       `yaml:"image"`
	Build       any                          `yaml:"build"`
	Command     []string                     `yaml:"command"`
	Environment map[string]string            `yaml:"environment"`
	Ports       []string                     `yaml:"ports"`
	Volumes     []string                     `yaml:"volumes"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	ReadOnly bool   `yaml:"read_only"`
	User     string `yaml:"user"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

// ourImage matches the images `make images` builds.
var ourImage = regexp.MustCompile(`^eventedge/([a-z]+):\$\{EVENTEDGE_TAG:-latest\}$`)

func readCompose(t *testing.T) (composeFile, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return c, raw
}

// ourService returns the eventedge service a compose service runs, or "".
func ourService(s composeService) string {
	if m := ourImage.FindStringSubmatch(s.Image); m != nil {
		return m[1]
	}
	return ""
}

// TestComposeConfig runs `docker-compose config`, compose's own validation
// of the file (schema, interpolation, references), when Debian's
// docker-compose is installed (`make tools` installs it).
func TestComposeConfig(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("skipped: docker-compose not installed (Debian's docker-compose; `make tools` installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--project-directory", repoRoot(t),
		"--file", filepath.Join(repoRoot(t), "docker-compose.yml"), "config", "--quiet")
	// Only .env supplies the variables: a developer's environment must not
	// hide a missing one.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}

// TestComposeRules checks our own rules of docker-compose.yml, which compose
// itself does not know.
func TestComposeRules(t *testing.T) {
	c, raw := readCompose(t)
	root := repoRoot(t)
	configs := map[string]serviceConfig{}
	for svc := range services {
		configs[svc] = readServiceConfig(t, svc)
	}
	buildImages, err := os.ReadFile(filepath.Join(root, "deploy", "docker", "build-images"))
	if err != nil {
		t.Fatal(err)
	}
	run := map[string][]string{} // eventedge service -> compose services running it
	hostPorts := map[string]string{}

	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		t.Run(name, func(t *testing.T) {
			svc := ourService(s)
			switch {
			case svc != "":
				run[svc] = append(run[svc], name)
				if _, ok := services[svc]; !ok {
					t.Fatalf("image %s: no such eventedge service", s.Image)
				}
				if !regexp.MustCompile(`(?m)^` + svc + `\s`).Match(buildImages) {
					t.Errorf("image %s: deploy/docker/build-images does not build it", s.Image)
				}
				if _, err := os.Stat(filepath.Join(root, "deploy", "docker", "Dockerfile")); err != nil {
					t.Errorf("image %s: %v", s.Image, err)
				}
				if !s.ReadOnly || s.User != nonRoot {
					t.Errorf("read_only %v, user %q: want read-only as %s", s.ReadOnly, s.User, nonRoot)
				}
				cfg := configs[svc]
				for env := range s.Environment {
					if !cfg.envs[env] {
						t.Errorf("environment %s: %s does not read it (services/%s/cmd/%s/config.go)", env, svc, svc, svc)
					}
				}
				for _, arg := range s.Command {
					flag, ok := strings.CutPrefix(arg, "--")
					if !ok {
						t.Errorf("command %q: want only --flag=value arguments", arg)
						continue
					}
					flag, _, _ = strings.Cut(flag, "=")
					if !cfg.flags[flag] {
						t.Errorf("command %q: %s has no flag --%s", arg, svc, flag)
					}
				}
			case s.Build != nil:
				t.Errorf("build: only `make images` builds images (deploy/docker/Dockerfile)")
			case s.Image == "":
				t.Errorf("no image")
			default:
				// Someone else's image: pinned to a version.
				_, tag, ok := strings.Cut(s.Image, ":")
				if !ok || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
					t.Errorf("image %s: pin a version tag", s.Image)
				}
				if s.Healthcheck == nil {
					t.Errorf("image %s: no healthcheck (ours have the image's own)", s.Image)
				}
			}
			for dep, d := range s.DependsOn {
				target, ok := c.Services[dep]
				switch {
				case !ok:
					t.Errorf("depends_on %s: no such service", dep)
				case d.Condition != "service_healthy":
					t.Errorf("depends_on %s: condition %q, want service_healthy", dep, d.Condition)
				case target.Healthcheck == nil && ourService(target) == "":
					t.Errorf("depends_on %s: it has no healthcheck", dep)
				}
			}
			for _, p := range s.Ports {
				host := hostPort(t, p)
				if other, dup := hostPorts[host]; dup {
					t.Errorf("port %s: host port %s also published by %s", p, host, other)
				}
				hostPorts[host] = name
			}
			for _, v := range s.Volumes {
				src, _, _ := strings.Cut(v, ":")
				switch {
				case strings.HasPrefix(src, "./"):
					fi, err := os.Stat(filepath.Join(root, src))
					if err != nil {
						t.Errorf("volume %s: %v", v, err)
					} else if fi.IsDir() {
						t.Errorf("volume %s: mounts a directory, want a file", v)
					}
				case strings.HasPrefix(src, "/"):
					t.Errorf("volume %s: mounts a host path outside the repository", v)
				default:
					if _, ok := c.Volumes[src]; !ok {
						t.Errorf("volume %s: %s is not declared under volumes", v, src)
					}
				}
			}
		})
	}

	for _, svc := range sortedKeys(services) {
		if len(run[svc]) == 0 {
			t.Errorf("no compose service runs eventedge/%s", svc)
		}
	}
	if n := len(run["edge"]); n < 2 {
		t.Errorf("%d edge nodes, want two behind the load balancer", n)
	}
	if n := len(run["worker"]); n < 2 {
		t.Errorf("%d workers, want two", n)
	}
	for _, want := range []string{"127.0.0.1:8082", "127.0.0.1:8080", "127.0.0.1:8081"} {
		if _, ok := hostPorts[want]; !ok {
			t.Errorf("host port %s not published", want)
		}
	}
	// The JWT secret has one place: .env.
	env, err := os.ReadFile(filepath.Join(root, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(env), "EVENTEDGE_DEV_JWT_SECRET="+devSecret) {
		t.Errorf(".env: no EVENTEDGE_DEV_JWT_SECRET with the development secret")
	}
	if strings.Contains(string(raw), devSecret) {
		t.Errorf("docker-compose.yml: the JWT secret is written out; take it from .env")
	}

	checkLoadBalancer(t, run["edge"])
	checkPrometheus(t, run)
	checkNATS(t, c)
}

// hostPort returns the host address of a published port, "ip:port".
func hostPort(t *testing.T, p string) string {
	t.Helper()
	f := strings.Split(p, ":")
	switch len(f) {
	case 3:
		if f[0] != "127.0.0.1" {
			t.Errorf("port %s: publish on 127.0.0.1 only (development mode mints tokens)", p)
		}
		return f[0] + ":" + f[1]
	default:
		t.Errorf("port %q: want 127.0.0.1:HOST:CONTAINER", p)
		return p
	}
}

// checkLoadBalancer checks that nginx's upstream lists exactly the edge
// nodes, that it passes WebSockets and that it sets X-Forwarded-For.
func checkLoadBalancer(t *testing.T, edges []string) {
	conf, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "compose", "nginx", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var upstream []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9-]+):8080\b`).FindAllStringSubmatch(string(conf), -1) {
		upstream = append(upstream, m[1])
	}
	slices.Sort(upstream)
	edges = slices.Sorted(slices.Values(edges))
	if !slices.Equal(upstream, edges) {
		t.Errorf("nginx upstream %v, want the edge nodes %v", upstream, edges)
	}
	for _, want := range []string{
		"proxy_http_version 1.1;",
		"proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;",
		"proxy_read_timeout 1h;",
		// The edge trusts the first X-Forwarded-For address: nginx must
		// set it, not append to what the client sent.
		"proxy_set_header X-Forwarded-For $remote_addr;",
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("nginx.conf: no %q", want)
		}
	}
}

// checkPrometheus checks that Prometheus scrapes the admin port of every
// compose service that runs an eventedge image, and nothing else of ours.
func checkPrometheus(t *testing.T, run map[string][]string) {
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "compose", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &p); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	got := map[string]string{} // target -> job
	for _, sc := range p.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				got[tg] = sc.JobName
			}
		}
	}
	for svc, names := range run {
		for _, n := range names {
			target := n + ":" + strconv.Itoa(services[svc].adminPort)
			if job, ok := got[target]; !ok {
				t.Errorf("prometheus.yml: %s (%s's admin port) not scraped", target, svc)
			} else if job != svc {
				t.Errorf("prometheus.yml: %s in job %q, want %q", target, job, svc)
			}
			delete(got, target)
		}
	}
	delete(got, "localhost:9090")
	for tg := range got {
		t.Errorf("prometheus.yml: target %s is no compose service's admin port", tg)
	}
	if !slices.Contains(p.RuleFiles, "/etc/prometheus/rules/alerts.yml") {
		t.Errorf("prometheus.yml: rule_files %v lack the alert rules", p.RuleFiles)
	}
}

// checkNATS parses each NATS node's config with nats-server's own parser
// and checks the cluster: one node per file, named as its compose service,
// JetStream on, routes to every node.
func checkNATS(t *testing.T, c composeFile) {
	var nodes []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:") {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) != 3 {
		t.Fatalf("NATS nodes %v, want three", nodes)
	}
	for _, n := range nodes {
		var conf string
		for _, v := range c.Services[n].Volumes {
			if src, dst, _ := strings.Cut(v, ":"); strings.HasPrefix(dst, "/etc/nats/nats-server.conf") {
				conf = src
			}
		}
		if conf == "" {
			t.Errorf("%s: no config mounted at /etc/nats/nats-server.conf", n)
			continue
		}
		o, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), conf))
		if err != nil {
			t.Errorf("%s: %s: %v", n, conf, err)
			continue
		}
		if o.ServerName != n {
			t.Errorf("%s: server_name %q, want %q", n, o.ServerName, n)
		}
		if !o.JetStream || o.StoreDir != "/data" {
			t.Errorf("%s: JetStream %v, store %q: want JetStream in /data (the volume)", n, o.JetStream, o.StoreDir)
		}
		if o.Cluster.Name == "" || o.Cluster.Port != 6222 {
			t.Errorf("%s: cluster %q on port %d, want a named cluster on 6222", n, o.Cluster.Name, o.Cluster.Port)
		}
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.Hostname())
		}
		slices.Sort(routes)
		if !slices.Equal(routes, nodes) {
			t.Errorf("%s: routes to %v, want %v", n, routes, nodes)
		}
		if o.HTTPPort != 8222 {
			t.Errorf("%s: monitoring on %d, want 8222 (healthcheck, sysmon)", n, o.HTTPPort)
		}
	}
	// The edge's stream replicas need that many JetStream peers.
	for name, s := range c.Services {
		if r := s.Environment["EDGE_STREAM_REPLICAS"]; r != "" && r != fmt.Sprint(len(nodes)) && r != "1" {
			t.Errorf("%s: EDGE_STREAM_REPLICAS=%s with %d NATS nodes", name, r, len(nodes))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
}
