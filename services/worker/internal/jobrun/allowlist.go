package jobrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/eventedge/eventedge/proto/room"
)

// DefaultAllowList is the worker's built-in allow-list: harmless commands
// that show a success, a failure, and a run long enough to cancel.
const DefaultAllowList = "echo-ok=/bin/echo ok,fail=/bin/false,sleep=/bin/sleep 10"

// Command is one allow-listed command.
type Command struct {
	// Name is what a job names (the request's "command").
	Name string
	// Path is the absolute path of the executable.
	Path string
	// Args are its fixed arguments.
	Args []string
}

// AllowList maps names to commands. Immutable after ParseAllowList.
type AllowList map[string]Command

// Names returns the allowed names, sorted.
func (a AllowList) Names() []string {
	out := make([]string, 0, len(a))
	for n := range a {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseAllowList parses "name=path[ args…]" entries separated by commas,
// e.g. "echo-ok=/bin/echo ok,fail=/bin/false". Arguments are separated by
// spaces (no quoting: an argument cannot hold a space or a comma). Names
// match ^[A-Za-z0-9_-]{1,64}$; paths must be absolute. An empty string is
// an empty list (no exec jobs).
func ParseAllowList(s string) (AllowList, error) {
	list := AllowList{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, cmdline, ok := strings.Cut(entry, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return nil, fmt.Errorf("allow-list entry %q: want name=path[ args]", clip(entry))
		}
		if !room.ValidID(name) {
			return nil, fmt.Errorf("allow-list entry %q: name must be 1-64 characters of A-Z a-z 0-9 _ -", clip(entry))
		}
		fields := strings.Fields(cmdline)
		if len(fields) == 0 || !filepath.IsAbs(fields[0]) {
			return nil, fmt.Errorf("allow-list entry %q: want an absolute path after =", clip(entry))
		}
		if _, dup := list[name]; dup {
			return nil, fmt.Errorf("allow-list entry %q: name %s given twice", clip(entry), name)
		}
		list[name] = Command{Name: name, Path: fields[0], Args: fields[1:]}
	}
	return list, nil
}

// Check reports the first command whose path is not an executable file,
// so that a wrong allow-list fails at start rather than at the first job.
func (a AllowList) Check() error {
	var errs []error
	for _, n := range a.Names() {
		c := a[n]
		fi, err := os.Stat(c.Path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("allow-list %s: %w", n, err))
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("allow-list %s: %s is not an executable file", n, c.Path))
		}
	}
	return errors.Join(errs...)
}

func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
