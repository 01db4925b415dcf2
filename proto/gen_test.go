// Package proto_test checks that the generated Go code in gen/ matches the
// .proto sources. The module root holds no Go package of its own; this test
// lives here because the generator runs from here.
package proto_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	module    = "github.com/eventedge/eventedge/proto"
	protoFile = "eventedge/v1/event.proto"
	generated = "gen/eventedgev1/event.pb.go"
)

// TestGeneratedCodeIsFresh regenerates the Go code with the command of
// `make proto` and compares it byte for byte with the checked-in file.
//
// The output names the protoc and protoc-gen-go versions, so a difference can
// also mean that the tools differ from those that generated the file.
func TestGeneratedCodeIsFresh(t *testing.T) {
	protoc := findTool(t, "protoc", "/usr/bin/protoc")
	plugin := findTool(t, "protoc-gen-go", pluginDirs(t)...)

	out := t.TempDir()
	cmd := exec.Command(protoc,
		"--plugin=protoc-gen-go="+plugin,
		"-I", ".",
		"--go_out="+out,
		"--go_opt=module="+module,
		protoFile,
	)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, msg)
	}

	got, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(generated)))
	if err != nil {
		t.Fatalf("regenerated code: %v", err)
	}
	want, err := os.ReadFile(filepath.FromSlash(generated))
	if err != nil {
		t.Fatalf("checked-in code: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("generated code is stale: run make proto\n%s differs from the output of %s (%s, %s); first difference:\n%s",
			generated, filepath.Base(protoc), versionLine(got, "protoc "), versionLine(got, "protoc-gen-go "), firstDiff(want, got))
	}
}

// findTool returns the path of the named tool: on PATH first, then the first
// of the fallbacks that exists. It skips the test when there is none, as the
// Makefile installs both tools before running the tests.
func findTool(t *testing.T, name string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if filepath.Base(p) != name {
			p = filepath.Join(p, name)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Skipf("%s not found on PATH or in %v: cannot check that the generated code is fresh (make proto installs it)", name, fallbacks)
	return ""
}

// pluginDirs lists where `go install` and the Makefile put protoc-gen-go.
func pluginDirs(t *testing.T) []string {
	var dirs []string
	if bin := os.Getenv("GOBIN"); bin != "" {
		dirs = append(dirs, bin)
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Logf("go env GOPATH: %v", err) // still try the other places
	}
	for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	// The repository's tool directory, one level above this module.
	if root, err := filepath.Abs(".."); err == nil {
		dirs = append(dirs, filepath.Join(root, ".tools", "bin"))
	}
	return dirs
}

// versionLine returns the "// \t<prefix>vX" header line of generated code.
func versionLine(code []byte, prefix string) string {
	for line := range strings.Lines(string(code)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(line, "//")), prefix); ok {
			return prefix + strings.TrimSpace(v)
		}
	}
	return prefix + "(unknown version)"
}

// firstDiff shows the first line where a and b differ.
func firstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  checked in:  " + x + "\n  regenerated: " + y
		}
	}
	return "(none found)"
}
