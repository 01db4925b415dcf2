package docker

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// service is what the tests know of one eventedge service's image.
type service struct {
	ports     []int // exposed
	adminPort int   // /metrics, /healthz, /readyz
}

// services are the images `make images` builds (deploy/docker/build-images
// has the same table), with their default ports.
var services = map[string]service{
	"edge":      {ports: []int{8080, 9090}, adminPort: 9090},
	"taskapi":   {ports: []int{8081, 9091}, adminPort: 9091},
	"worker":    {ports: []int{9092}, adminPort: 9092},
	"sysmon":    {ports: []int{9093}, adminPort: 9093},
	"dashboard": {ports: []int{8082, 9094}, adminPort: 9094},
}

var (
	flagName = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	envName  = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// serviceConfig is what a service reads: its flags and their environment
// variables, taken from services/<svc>/cmd/<svc>/config.go, where every
// service declares them the same way: a helper call with the flag name
// followed by its variable (str(&addr, "addr", "EDGE_ADDR", …)), a
// flag.*Var call, or envOf["dev"] = "DASHBOARD_DEV".
type serviceConfig struct {
	flags map[string]bool
	envs  map[string]bool
}

func readServiceConfig(t *testing.T, svc string) serviceConfig {
	t.Helper()
	path := filepath.Join(repoRoot(t), "services", svc, "cmd", svc, "config.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", svc, err)
	}
	c := serviceConfig{flags: map[string]bool{}, envs: map[string]bool{}}
	lit := func(e ast.Expr) (string, bool) {
		b, ok := e.(*ast.BasicLit)
		if !ok || b.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(b.Value)
		return s, err == nil
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			for i := 0; i+1 < len(n.Args); i++ {
				name, ok1 := lit(n.Args[i])
				env, ok2 := lit(n.Args[i+1])
				if ok1 && ok2 && flagName.MatchString(name) && envName.MatchString(env) {
					c.flags[name] = true
					c.envs[env] = true
				}
			}
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && len(n.Args) > 1 && len(sel.Sel.Name) > 3 && sel.Sel.Name[len(sel.Sel.Name)-3:] == "Var" {
				if name, ok := lit(n.Args[1]); ok && flagName.MatchString(name) {
					c.flags[name] = true
				}
			}
		case *ast.AssignStmt:
			if len(n.Lhs) == 1 && len(n.Rhs) == 1 {
				if ix, ok := n.Lhs[0].(*ast.IndexExpr); ok {
					name, ok1 := lit(ix.Index)
					env, ok2 := lit(n.Rhs[0])
					if ok1 && ok2 && flagName.MatchString(name) && envName.MatchString(env) {
						c.flags[name] = true
						c.envs[env] = true
					}
				}
			}
		}
		return true
	})
	return c
}

// TestServiceConfigParsed guards readServiceConfig: if the services change
// how they declare flags, the compose checks must not pass vacuously.
func TestServiceConfigParsed(t *testing.T) {
	want := map[string][]string{
		"edge":      {"NATS_URL", "EDGE_JWT_SECRET", "EDGE_ALLOWED_ORIGINS", "EDGE_ADMIN_ADDR"},
		"taskapi":   {"NATS_URL", "TASKAPI_JWT_SECRET", "TASKAPI_ALLOWED_ORIGINS"},
		"worker":    {"NATS_URL", "WORKER_NAME", "WORKER_EXEC_ALLOW"},
		"sysmon":    {"NATS_URL", "SYSMON_NATS_MONITOR_URL"},
		"dashboard": {"DASHBOARD_EDGE_URL", "DASHBOARD_API_URL", "DASHBOARD_DEV", "DASHBOARD_DEV_JWT_SECRET"},
	}
	for svc, envs := range want {
		c := readServiceConfig(t, svc)
		for _, e := range envs {
			if !c.envs[e] {
				t.Errorf("%s: %s not found in config.go (found %d variables)", svc, e, len(c.envs))
			}
		}
		if !c.flags["admin-addr"] {
			t.Errorf("%s: flag admin-addr not found in config.go", svc)
		}
	}
	if !readServiceConfig(t, "dashboard").flags["dev"] {
		t.Error("dashboard: flag dev not found")
	}
}
