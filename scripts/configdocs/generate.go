package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// A command is one flag set documented in its own table.
type command struct {
	Title string   // heading
	Pkg   string   // main package, relative to the repository root
	Args  []string // before -h: a subcommand
	Intro string   // one hand-written paragraph: what it is, where its flags are defined
}

// commands is everything documented, in order. Add a service here.
var commands = []command{
	{Title: "edge", Pkg: "./services/edge/cmd/edge",
		Intro: "The edge node: `edge [flags]`. Flags defined in `services/edge/cmd/edge/config.go`; what they do in operation: [operations.md](operations.md)."},
	{Title: "edge token", Pkg: "./services/edge/cmd/edge", Args: []string{"token"},
		Intro: "`edge token [flags]` prints a signed JWT, for local use and tests (`services/edge/cmd/edge/main.go`)."},
	{Title: "edge publish", Pkg: "./services/edge/cmd/edge", Args: []string{"publish"},
		Intro: "`edge publish [flags] JSON` publishes one event, given as JSON, to the `EVENTS` stream and prints its sequence (`services/edge/cmd/edge/tools.go`)."},
	{Title: "edge listen", Pkg: "./services/edge/cmd/edge", Args: []string{"listen"},
		Intro: "`edge listen [flags]` connects like a dashboard, subscribes to rooms and prints every server message (`services/edge/cmd/edge/tools.go`)."},
	{Title: "taskapi", Pkg: "./services/taskapi/cmd/taskapi",
		Intro: "The task API: `taskapi [flags]` (`services/taskapi/cmd/taskapi/config.go`; [README](../services/taskapi/README.md))."},
	{Title: "worker", Pkg: "./services/worker/cmd/worker",
		Intro: "The job worker: `worker [flags]` (`services/worker/cmd/worker/config.go`; [README](../services/worker/README.md))."},
	{Title: "sysmon", Pkg: "./services/sysmon/cmd/sysmon",
		Intro: "The system monitor: `sysmon [flags]`; run one instance (`services/sysmon/cmd/sysmon/config.go`; [README](../services/sysmon/README.md))."},
	{Title: "dashboard", Pkg: "./services/dashboard/cmd/dashboard",
		Intro: "The browser dashboard: `dashboard [flags]` (`services/dashboard/cmd/dashboard/config.go`; [README](../services/dashboard/README.md))."},
	{Title: "devrun", Pkg: "./scripts/devrun",
		Intro: "The development supervisor behind `make run`: `devrun [flags]` (`scripts/devrun/main.go`). It has no environment mirrors; it passes the services their development settings itself."},
}

// repoRoot is the nearest directory at or above the working directory that
// holds go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work in the working directory or above: run inside the repository")
		}
		dir = parent
	}
}

// generate builds every command's binary and returns the document.
func generate(root string) ([]byte, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	dir, release, err := binDir(root)
	if err != nil {
		return nil, err
	}
	defer release()
	bins, err := build(root, dir)
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		return nil, err
	}
	sections := make([][]setting, len(commands))
	for i, c := range commands {
		out, pid, err := help(bins[c.Pkg], c.Args, dir)
		if err != nil {
			return nil, fmt.Errorf("%s -h: %w", c.Title, err)
		}
		list, err := parseUsage(out)
		if err != nil {
			return nil, fmt.Errorf("%s -h: %w", c.Title, err)
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%s -h: no flags in %q", c.Title, out)
		}
		for j := range list {
			list[j].Default = normalise(list[j].Default, host, pid)
		}
		sections[i] = list
	}
	return render(sections), nil
}

// build puts one binary per main package into dir with a single go build
// (packages compile in parallel and come from the build cache when
// unchanged; the flags match make build's, so its cache entries are
// reused; a binary already in dir and up to date is not linked again) and
// returns their paths by package.
func build(root, dir string) (map[string]string, error) {
	bins := map[string]string{}
	args := []string{"build", "-trimpath", "-o", dir + string(filepath.Separator)}
	for _, c := range commands {
		if _, ok := bins[c.Pkg]; ok {
			continue
		}
		bins[c.Pkg] = filepath.Join(dir, filepath.Base(c.Pkg))
		args = append(args, c.Pkg)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("the go command is needed to build the services: %w", err)
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = root
	// Binaries for this machine, whatever GOOS/GOARCH the caller has set:
	// they are run here.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bins, nil
}

// help runs bin args... -h in an empty environment, from dir, so that no
// variable of the caller (EDGE_JWT_SECRET, NATS_URL, …) becomes a default
// in the docs, and returns what it printed and its process id.
func help(bin string, args []string, dir string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "-h")...)
	cmd.Env = []string{}
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", 0, fmt.Errorf("%w\n%s", err, out.String())
	}
	return out.String(), cmd.Process.Pid, nil
}

// normalise replaces what depends on the host and the run in a default, so
// that the document is the same on every machine: a default equal to the
// host name becomes "<hostname>", and one ending in the process's own
// "-<pid>" becomes "<hostname>-<pid>" (the worker's --name: host name and
// process id, cleaned and cut to 64 characters).
func normalise(def, host string, pid int) string {
	switch {
	case host != "" && def == host:
		return "<hostname>"
	case pid > 0 && strings.HasSuffix(def, "-"+strconv.Itoa(pid)):
		return "<hostname>-<pid>"
	}
	return def
}
