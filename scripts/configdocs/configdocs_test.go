package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestConfigurationDocUpToDate regenerates docs/configuration.md in memory
// from the service binaries and fails when the file differs.
func TestConfigurationDocUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	want, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "docs", "configuration.md")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/configuration.md is stale: run make docs\n%s", firstDiff(string(got), string(want)))
	}
}

// firstDiff shows the first line where the file and the fresh document
// differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  file:      " + gl + "\n  generated: " + wl
		}
	}
	return "(only line endings differ)"
}

func TestParseUsage(t *testing.T) {
	out := "Usage: svc [flags]\n\nsvc does things.\n" +
		"  -addr string\n    \tlisten address (env SVC_ADDR) (default \":8080\")\n" +
		"  -dev\n    \tdevelopment mode (env SVC_DEV)\n" +
		"  -exec-allow string\n    \tfirst line\n    \tsecond line (env SVC_ALLOW) (default \"a=/bin/x (y)\")\n" +
		"  -name string\n    \tnode name (default: host name) (env SVC_NAME)\n" +
		"  -room value\n    \trepeatable\n" +
		"  -seed\n    \tseed it (default true)\n" +
		"  -ttl duration\n    \tlifetime (default 1h0m0s)\n" +
		"  -x int\tone letter (env SVC_X) (default 3)\n"
	got, err := parseUsage(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []setting{
		{Name: "addr", Type: "string", Env: "SVC_ADDR", Default: ":8080", Usage: "listen address"},
		{Name: "dev", Env: "SVC_DEV", Usage: "development mode"},
		{Name: "exec-allow", Type: "string", Env: "SVC_ALLOW", Default: "a=/bin/x (y)", Usage: "first line second line"},
		{Name: "name", Type: "string", Env: "SVC_NAME", Usage: "node name (default: host name)"},
		{Name: "room", Type: "value", Usage: "repeatable"},
		{Name: "seed", Default: "true", Usage: "seed it"},
		{Name: "ttl", Type: "duration", Default: "1h0m0s", Usage: "lifetime"},
		{Name: "x", Type: "int", Env: "SVC_X", Default: "3", Usage: "one letter"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseUsage:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseUsageRefusesUnknownLines(t *testing.T) {
	for _, out := range []string{
		"  -a string\n    \tx\nsomething else\n",
		"  -a string\n    \tx (default unquoted)\n",
		"  - string\n",
	} {
		if _, err := parseUsage(out); err == nil {
			t.Errorf("parseUsage(%q): no error", out)
		}
	}
}

func TestNormalise(t *testing.T) {
	for _, c := range []struct {
		def, host string
		pid       int
		want      string
	}{
		{"build-7-1234", "build-7", 1234, "<hostname>-<pid>"},
		{"worker-1234", "", 1234, "<hostname>-<pid>"}, // no host name: the worker falls back to "worker"
		{"build-7", "build-7", 1234, "<hostname>"},
		{":8080", "build-7", 1234, ":8080"},
		{"x-12345", "build-7", 1234, "x-12345"},
		{"", "", 0, ""},
	} {
		if got := normalise(c.def, c.host, c.pid); got != c.want {
			t.Errorf("normalise(%q, %q, %d) = %q, want %q", c.def, c.host, c.pid, got, c.want)
		}
	}
}

func TestCells(t *testing.T) {
	if got, want := code("a|b"), "`a\\|b`"; got != want {
		t.Errorf("code = %s, want %s", got, want)
	}
	if got, want := code("a`b"), "``a`b``"; got != want {
		t.Errorf("code = %s, want %s", got, want)
	}
	if got, want := text(`"*" <x> a|b task_progress`), `"\*" &lt;x&gt; a\|b task_progress`; got != want {
		t.Errorf("text = %s, want %s", got, want)
	}
}

func FuzzParseUsage(f *testing.F) {
	f.Add("  -addr string\n    \tlisten (env X) (default \":1\")\n")
	f.Add("Usage of x:\n  -x\tflag\n  -y int\n    \t(default 3)\n")
	f.Fuzz(func(t *testing.T, out string) {
		list, err := parseUsage(out)
		if err != nil {
			return
		}
		for _, s := range list {
			if s.Name == "" || strings.ContainsAny(s.Name, " \t\n") {
				t.Errorf("bad name %q from %q", s.Name, out)
			}
		}
	})
}
