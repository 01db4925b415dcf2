package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// A setting is one flag as the flag package prints it.
type setting struct {
	Name    string // without dashes
	Type    string // the flag package's name for it: string, duration, int, float, uint, value; "" for a bool
	Env     string // the variable named by a trailing "(env NAME)" in the usage; "" when none
	Default string // the default as printed; "" when it is the type's zero value (the flag package omits those)
	Usage   string // the usage without the env and default suffixes, lines joined by spaces
}

var envSuffix = regexp.MustCompile(`^(.*) \(env ([A-Z][A-Z0-9_]*)\)$`)

// parseUsage reads the output of a flag set's -h: any header lines, then
// flag.PrintDefaults' entries ("  -name type" and its "    \t"-indented
// usage lines, or "  -x type\tusage" for a one-letter name). A line that
// fits neither form after the first entry is an error, so a change of the
// flag package's format cannot pass unnoticed.
func parseUsage(out string) ([]setting, error) {
	var (
		list  []setting
		lines []string // usage lines of the current entry
	)
	finish := func() error {
		if len(list) == 0 {
			return nil
		}
		s := &list[len(list)-1]
		if err := s.splitUsage(strings.Join(lines, " ")); err != nil {
			return fmt.Errorf("flag -%s: %w", s.Name, err)
		}
		lines = nil
		return nil
	}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			if err := finish(); err != nil {
				return nil, err
			}
			head, inline, hasInline := strings.Cut(line[len("  -"):], "\t")
			name, typ, _ := strings.Cut(head, " ")
			if name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("unexpected flag line %q", line)
			}
			list = append(list, setting{Name: name, Type: typ})
			if hasInline {
				lines = append(lines, strings.TrimSpace(inline))
			}
		case strings.HasPrefix(line, "    \t") && len(list) > 0:
			lines = append(lines, strings.TrimSpace(line))
		case len(list) > 0:
			return nil, fmt.Errorf("unexpected line %q after the flags", line)
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return list, nil
}

// splitUsage takes the "(default …)" and "(env NAME)" suffixes off u, in
// the order the services write them: usage, env, then the default the flag
// package appends.
func (s *setting) splitUsage(u string) error {
	if i := strings.LastIndex(u, " (default "); i >= 0 && strings.HasSuffix(u, ")") {
		def := u[i+len(" (default ") : len(u)-1]
		if s.Type == "string" {
			q, err := strconv.Unquote(def)
			if err != nil {
				return fmt.Errorf("default %s: not a quoted string", def)
			}
			def = q
		}
		s.Default, u = def, u[:i]
	}
	if m := envSuffix.FindStringSubmatch(u); m != nil {
		u, s.Env = m[1], m[2]
	}
	s.Usage = strings.TrimSpace(u)
	return nil
}

// zeroDefault is how a default the flag package left out (the type's zero
// value) is written in the docs.
func zeroDefault(typ string) string {
	switch typ {
	case "":
		return "false"
	case "string":
		return ""
	case "duration":
		return "0s"
	case "int", "uint", "float":
		return "0"
	}
	return "none" // a flag.Value such as a repeatable flag: nothing set
}
