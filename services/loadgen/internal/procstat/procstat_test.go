package procstat

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseFixtures(t *testing.T) {
	stat, err := os.ReadFile("testdata/stat")
	if err != nil {
		t.Fatal(err)
	}
	cpu, err := ParseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	// utime 1234 + stime 567 ticks of 10 ms.
	if want := 18010 * time.Millisecond; cpu != want {
		t.Errorf("cpu = %s, want %s", cpu, want)
	}
	status, err := os.ReadFile("testdata/status")
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ParseStatusRSS(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(51234 * 1024); rss != want {
		t.Errorf("rss = %d, want %d", rss, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 abc 5 6"} {
		if _, err := ParseStat([]byte(s)); err == nil {
			t.Errorf("ParseStat(%q): no error", s)
		}
	}
	for _, s := range []string{"", "Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n"} {
		if _, err := ParseStatusRSS([]byte(s)); err == nil {
			t.Errorf("ParseStatusRSS(%q): no error", s)
		}
	}
}

func TestReadFromRoot(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "4242")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"stat", "status"} {
		b, err := os.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Read(root, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS != 51234*1024 || s.CPU != 18010*time.Millisecond || s.Written != -1 {
		t.Errorf("sample = %+v (no io file: Written -1)", s)
	}
	if err := os.WriteFile(filepath.Join(dir, "io"), []byte("rchar: 10\nwchar: 123456\nsyscr: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Read(root, 4242); err != nil || s.Written != 123456 {
		t.Errorf("with io: %+v, %v; want Written 123456", s, err)
	}
}

func TestParseIOWcharErrors(t *testing.T) {
	for _, s := range []string{"", "rchar: 1\n", "wchar: x\n"} {
		if _, err := ParseIOWchar([]byte(s)); err == nil {
			t.Errorf("ParseIOWchar(%q): no error", s)
		}
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 {
		t.Errorf("own RSS = %d", s.RSS)
	}
	if s.Written < 0 {
		t.Errorf("own wchar unreadable: %d", s.Written)
	}
}
