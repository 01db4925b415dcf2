package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultProcDir is where the kernel mounts /proc.
const DefaultProcDir = "/proc"

// Sample is one reading of the host.
type Sample struct {
	// CPUPercent is the busy share of all CPUs (0-100) since the previous
	// Sample; since boot for the first.
	CPUPercent float64
	// MemoryPercent is the share of RAM (0-100) in use.
	MemoryPercent float64
	Memory        Memory
}

// Sampler reads the host's CPU and memory use. It remembers the previous
// CPU reading, so a Sampler belongs to one goroutine (the prober's).
type Sampler struct {
	// static after NewSampler
	dir string

	// owned by the caller of Sample
	prev CPUTimes
}

// NewSampler returns a Sampler reading dir ("" means DefaultProcDir).
func NewSampler(dir string) *Sampler {
	if dir == "" {
		dir = DefaultProcDir
	}
	return &Sampler{dir: dir}
}

// Sample reads /proc/stat and /proc/meminfo. A failure of one file does not
// hide the other's value: the error names what failed, and the fields of
// the failed reading are zero.
func (s *Sampler) Sample() (Sample, error) {
	var out Sample
	var errs []error
	if cpu, err := readWith(filepath.Join(s.dir, "stat"), ParseStat); err != nil {
		errs = append(errs, err)
	} else {
		out.CPUPercent = CPUPercent(s.prev, cpu)
		s.prev = cpu
	}
	if mem, err := readWith(filepath.Join(s.dir, "meminfo"), ParseMeminfo); err != nil {
		errs = append(errs, err)
	} else {
		out.Memory = mem
		out.MemoryPercent = mem.UsedPercent()
	}
	return out, errors.Join(errs...)
}

func readWith[T any](path string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err // names the path
	}
	defer f.Close()
	v, err := parse(f)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
