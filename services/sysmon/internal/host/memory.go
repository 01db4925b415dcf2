package host

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Memory is what /proc/meminfo says about RAM, in bytes.
type Memory struct {
	Total     uint64
	Available uint64
}

// UsedPercent is the share of RAM (0-100) not available to new programs.
func (m Memory) UsedPercent() float64 {
	if m.Total == 0 || m.Available >= m.Total {
		return 0
	}
	return 100 * float64(m.Total-m.Available) / float64(m.Total)
}

// ParseMeminfo reads MemTotal and MemAvailable from /proc/meminfo. Kernels
// older than 3.14 have no MemAvailable; MemFree + Buffers + Cached stands in
// for it there.
func ParseMeminfo(r io.Reader) (Memory, error) {
	vals := map[string]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch name {
		case "MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached":
		default:
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 || len(fields) > 2 || (len(fields) == 2 && fields[1] != "kB") {
			return Memory{}, fmt.Errorf("%w: /proc/meminfo %s: %q", ErrFormat, name, rest)
		}
		n, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil || n > 1<<53 {
			return Memory{}, fmt.Errorf("%w: /proc/meminfo %s: %q", ErrFormat, name, fields[0])
		}
		if len(fields) == 2 {
			n *= 1024
		}
		vals[name] = n
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("read /proc/meminfo: %w", err)
	}
	total, ok := vals["MemTotal"]
	if !ok || total == 0 {
		return Memory{}, fmt.Errorf("%w: /proc/meminfo has no MemTotal", ErrFormat)
	}
	avail, ok := vals["MemAvailable"]
	if !ok {
		avail = vals["MemFree"] + vals["Buffers"] + vals["Cached"]
	}
	return Memory{Total: total, Available: min(avail, total)}, nil
}
