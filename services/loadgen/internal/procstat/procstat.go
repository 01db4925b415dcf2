// Package procstat reads a process's CPU time and resident memory from
// Linux's /proc, for sampling the edge process while a load runs.
package procstat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)
// needs cgo, which the static build avoids).
const ClockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	At time.Time
	// CPU is user + system time consumed since the process started.
	CPU time.Duration
	// RSS is the resident set size in bytes (VmRSS).
	RSS int64
	// Written is the bytes the process has passed to write calls, sockets
	// included (wchar of /proc/<pid>/io); -1 when that file is unreadable.
	Written int64
}

// Read samples process pid from root (normally "/proc").
func Read(root string, pid int) (Sample, error) {
	dir := filepath.Join(root, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Sample{}, err
	}
	cpu, err := ParseStat(stat)
	if err != nil {
		return Sample{}, fmt.Errorf("%s/stat: %w", dir, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return Sample{}, err
	}
	rss, err := ParseStatusRSS(status)
	if err != nil {
		return Sample{}, fmt.Errorf("%s/status: %w", dir, err)
	}
	written := int64(-1)
	if io, err := os.ReadFile(filepath.Join(dir, "io")); err == nil {
		if w, err := ParseIOWchar(io); err == nil {
			written = w
		}
	}
	return Sample{At: time.Now(), CPU: cpu, RSS: rss, Written: written}, nil
}

// ParseIOWchar returns wchar from the contents of /proc/<pid>/io
// ("wchar: 12345").
func ParseIOWchar(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("wchar:")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		}
	}
	return 0, errors.New("no wchar line")
}

// ParseStat returns utime + stime from the contents of /proc/<pid>/stat.
// The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
func ParseStat(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	// After ")": field 3 (state) onwards; utime and stime are fields 14
	// and 15, so indexes 11 and 12 here.
	f := bytes.Fields(b[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("utime/stime: %w", err)
	}
	ticks := utime + stime
	return time.Duration(ticks) * (time.Second / ClockTicks), nil
}

// ParseStatusRSS returns VmRSS in bytes from the contents of
// /proc/<pid>/status ("VmRSS:   12345 kB").
func ParseStatusRSS(b []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want '<n> kB'", sc.Text())
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or the process is a zombie)")
}
