package host_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventedge/eventedge/services/sysmon/internal/host"
)

func TestParseStat(t *testing.T) {
	in := "cpu  100 20 30 800 50 0 0 0 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1 2\n"
	got, err := host.ParseStat(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	// total 1000: user 100 + nice 20 + system 30 + idle 800 + iowait 50;
	// guest (7) is part of user already.
	if want := (host.CPUTimes{Busy: 150, Total: 1000}); got != want {
		t.Errorf("ParseStat = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5\n", "cpu -1 2 3 4 5\n"} {
		if _, err := host.ParseStat(strings.NewReader(bad)); !errors.Is(err, host.ErrFormat) {
			t.Errorf("ParseStat(%q) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestCPUPercent(t *testing.T) {
	for _, tc := range []struct {
		prev, cur host.CPUTimes
		want      float64
	}{
		{host.CPUTimes{}, host.CPUTimes{Busy: 25, Total: 100}, 25},
		{host.CPUTimes{Busy: 25, Total: 100}, host.CPUTimes{Busy: 75, Total: 200}, 50},
		{host.CPUTimes{Busy: 25, Total: 100}, host.CPUTimes{Busy: 25, Total: 100}, 0},
		{host.CPUTimes{Busy: 25, Total: 100}, host.CPUTimes{Busy: 5, Total: 50}, 0},
	} {
		if got := host.CPUPercent(tc.prev, tc.cur); got != tc.want {
			t.Errorf("CPUPercent(%+v, %+v) = %v, want %v", tc.prev, tc.cur, got, tc.want)
		}
	}
}

func TestParseMeminfo(t *testing.T) {
	in := "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\nBuffers:  10 kB\nHugePages_Total:       0\n"
	m, err := host.ParseMeminfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Total != 1000*1024 || m.Available != 250*1024 || m.UsedPercent() != 75 {
		t.Errorf("ParseMeminfo = %+v (%v%%), want 1000 kB, 250 kB available, 75%%", m, m.UsedPercent())
	}
	// Before Linux 3.14: no MemAvailable.
	old := "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
	if m, err := host.ParseMeminfo(strings.NewReader(old)); err != nil || m.Available != 400*1024 {
		t.Errorf("ParseMeminfo(old kernel) = %+v, %v; want 400 kB available", m, err)
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: x kB\n", "MemTotal: 1 MB\n", "MemTotal: 0 kB\n"} {
		if _, err := host.ParseMeminfo(strings.NewReader(bad)); !errors.Is(err, host.ErrFormat) {
			t.Errorf("ParseMeminfo(%q) = %v, want ErrFormat", bad, err)
		}
	}
}

// TestSamplerThisMachine reads the real /proc of the machine the tests run
// on.
func TestSamplerThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this machine")
	}
	s := host.NewSampler("")
	for i := range 2 {
		got, err := s.Sample()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if got.CPUPercent < 0 || got.CPUPercent > 100 || got.MemoryPercent <= 0 || got.MemoryPercent >= 100 || got.Memory.Total == 0 {
			t.Errorf("sample %d = %+v: want CPU in [0,100], memory in (0,100)", i, got)
		}
	}
}

func TestSamplerMissingFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal: 100 kB\nMemAvailable: 40 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := host.NewSampler(dir).Sample()
	if err == nil || !strings.Contains(err.Error(), "stat") {
		t.Errorf("Sample error = %v, want one naming the missing stat file", err)
	}
	if got.MemoryPercent != 60 {
		t.Errorf("MemoryPercent = %v, want 60 despite the missing stat file", got.MemoryPercent)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("cpu  100 20 30 800 50 0 0 0 7 0\n")
	f.Add("cpu 1 2 3 4\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := host.ParseStat(strings.NewReader(in))
		if err == nil && c.Busy > c.Total {
			t.Fatalf("busy %d > total %d", c.Busy, c.Total)
		}
		if p := host.CPUPercent(host.CPUTimes{}, c); p < 0 || p > 100 {
			t.Fatalf("CPUPercent = %v", p)
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add("MemTotal: 1000 kB\nMemAvailable: 250 kB\n")
	f.Fuzz(func(t *testing.T, in string) {
		m, err := host.ParseMeminfo(strings.NewReader(in))
		if err != nil {
			return
		}
		if p := m.UsedPercent(); p < 0 || p > 100 {
			t.Fatalf("UsedPercent = %v for %+v", p, m)
		}
	})
}
