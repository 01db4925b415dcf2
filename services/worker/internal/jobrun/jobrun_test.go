package jobrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// recorder is a Sink that keeps everything.
type recorder struct {
	mu       sync.Mutex
	progress []float64
	stages   []string
	lines    []string // "stream: line"
}

func (r *recorder) Progress(p float64, stage, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
	r.stages = append(r.stages, stage)
}

func (r *recorder) Log(s pb.LogStream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, strings.TrimPrefix(s.String(), "LOG_STREAM_")+": "+line)
}

func (r *recorder) has(line string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.lines, line)
}

func TestDemoIsDeterministic(t *testing.T) {
	var runs [2]*recorder
	for i := range runs {
		runs[i] = &recorder{}
		start := time.Now()
		if err := (Demo{Duration: 200 * time.Millisecond}).Run(context.Background(), runs[i]); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 200*time.Millisecond {
			t.Errorf("demo took %s, want its duration", took)
		}
	}
	a, b := runs[0], runs[1]
	if !slices.Equal(a.lines, b.lines) || !slices.Equal(a.progress, b.progress) || !slices.Equal(a.stages, b.stages) {
		t.Error("two demo runs differ")
	}
	if len(a.lines) < 20 || !slices.IsSorted(a.progress) || a.progress[len(a.progress)-1] >= 1 || a.progress[0] <= 0 {
		t.Errorf("demo: %d lines, progress %v", len(a.lines), a.progress)
	}
	var stages []string
	for _, s := range a.stages {
		if len(stages) == 0 || stages[len(stages)-1] != s {
			stages = append(stages, s)
		}
	}
	if !slices.Equal(stages, []string{"checkout", "build", "test", "deploy"}) {
		t.Errorf("stages %v", stages)
	}
	if !slices.ContainsFunc(a.lines, func(l string) bool { return strings.HasPrefix(l, "STDERR: ") }) {
		t.Error("the demo has no stderr line")
	}
}

func TestDemoStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	time.AfterFunc(50*time.Millisecond, func() { cancel(stop) })
	if err := (Demo{Duration: time.Minute}).Run(ctx, &recorder{}); !errors.Is(err, stop) {
		t.Errorf("Run = %v, want the cancel cause", err)
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmd.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecStreamsLinesAndProgress(t *testing.T) {
	p := script(t, `echo "hello $EVENTEDGE_TASK_ID"
echo "PROGRESS 0.5 build"
echo oops >&2
printf 'no newline at end'
`)
	rec := &recorder{}
	err := Exec{}.Run(context.Background(), Command{Name: "s", Path: p}, Env{TaskID: "t1"}, rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STDOUT: hello t1", "STDERR: oops", "STDOUT: no newline at end", "SYSTEM: $ " + p} {
		if !rec.has(want) {
			t.Errorf("lines %q lack %q", rec.lines, want)
		}
	}
	if !slices.Equal(rec.progress, []float64{0.5}) || rec.stages[0] != "build" || rec.has("STDOUT: PROGRESS 0.5 build") {
		t.Errorf("progress %v %v; PROGRESS lines are not logged", rec.progress, rec.stages)
	}
}

func TestExecFailureKeepsStderr(t *testing.T) {
	p := script(t, "echo 'fatal: no such branch' >&2\nexit 3\n")
	rec := &recorder{}
	err := Exec{}.Run(context.Background(), Command{Name: "bad", Path: p}, Env{}, rec)
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Run = %v, want exit status 3", err)
	}
	if !rec.has("STDERR: fatal: no such branch") {
		t.Errorf("stderr not logged: %q", rec.lines)
	}
}

func TestExecCancelKillsTheProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "survived")
	// The child of the shell would outlive a kill of the shell alone.
	p := script(t, "(sleep 1; touch "+marker+") &\necho started\nwait\n")
	rec := &recorder{}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("cancelled by test")
	go func() {
		for !rec.has("STDOUT: started") {
			time.Sleep(5 * time.Millisecond)
		}
		cancel(stop)
	}()
	start := time.Now()
	err := Exec{WaitDelay: 200 * time.Millisecond}.Run(ctx, Command{Name: "slow", Path: p}, Env{}, rec)
	if !errors.Is(err, stop) {
		t.Errorf("Run = %v, want the cancel cause", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("cancel took %s", took)
	}
	time.Sleep(1200 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the child process survived the cancellation")
	}
}

func TestExecTimeoutAndLongLines(t *testing.T) {
	p := script(t, "head -c 10000 /dev/zero | tr '\\0' x; echo; echo after; sleep 5\n")
	rec := &recorder{}
	err := Exec{MaxRunTime: 300 * time.Millisecond, MaxLineBytes: 100}.Run(context.Background(), Command{Name: "x", Path: p}, Env{}, rec)
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Run = %v, want ErrTimeout", err)
	}
	if !rec.has("STDOUT: "+strings.Repeat("x", 100)+"…") || !rec.has("STDOUT: after") {
		t.Errorf("lines %q", rec.lines)
	}
}

func TestParseAllowList(t *testing.T) {
	l, err := ParseAllowList(" echo-ok=/bin/echo ok ,fail=/bin/false,, two=/bin/echo a  b")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(l.Names(), []string{"echo-ok", "fail", "two"}) || !slices.Equal(l["two"].Args, []string{"a", "b"}) || l["fail"].Path != "/bin/false" {
		t.Errorf("list = %+v", l)
	}
	if err := l.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	def, err := ParseAllowList(DefaultAllowList)
	if err != nil || def.Check() != nil || len(def) != 3 {
		t.Errorf("default list %v: %v", def, err)
	}
	if empty, err := ParseAllowList(""); err != nil || len(empty) != 0 {
		t.Errorf("empty: %v %v", empty, err)
	}
	for _, bad := range []string{"noequals", "a b=/bin/true", "x=relative/path", "x=", "x=/bin/true,x=/bin/false"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
	missing, _ := ParseAllowList("m=/nonexistent/cmd,d=/tmp")
	if err := missing.Check(); err == nil || !strings.Contains(err.Error(), "m") || !strings.Contains(err.Error(), "executable") {
		t.Errorf("Check of missing commands = %v", err)
	}
}

func TestParseProgress(t *testing.T) {
	for line, want := range map[string]struct {
		p     float64
		stage string
		ok    bool
	}{
		"PROGRESS 0.4 build":       {0.4, "build", true},
		"PROGRESS 1":               {1, "", true},
		"PROGRESS 0 unit tests":    {0, "unit tests", true},
		"PROGRESS 1.5 x":           {0, "", false},
		"PROGRESS -0.1 x":          {0, "", false},
		"PROGRESS NaN x":           {0, "", false},
		"PROGRESS abc":             {0, "", false},
		"progress 0.5":             {0, "", false},
		" PROGRESS 0.5":            {0, "", false},
		"PROGRESSIVE 0.5 download": {0, "", false},
	} {
		p, s, ok := ParseProgress(line)
		if p != want.p || s != want.stage || ok != want.ok {
			t.Errorf("ParseProgress(%q) = %v %q %v, want %v", line, p, s, ok, want)
		}
	}
}

func FuzzParseProgress(f *testing.F) {
	f.Add("PROGRESS 0.5 build")
	f.Add("PROGRESS 1e-3")
	f.Add("PROGRESS +Inf x")
	f.Fuzz(func(t *testing.T, line string) {
		p, _, ok := ParseProgress(line)
		if ok && !(p >= 0 && p <= 1) {
			t.Fatalf("ParseProgress(%q) = %v", line, p)
		}
	})
}

func FuzzParseAllowList(f *testing.F) {
	f.Add(DefaultAllowList)
	f.Add("a=/x y,b=/z")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseAllowList(s)
		if err != nil {
			return
		}
		for n, c := range l {
			if n != c.Name || !filepath.IsAbs(c.Path) || strings.ContainsAny(n, " ,=") {
				t.Fatalf("entry %q: %+v", n, c)
			}
		}
	})
}

func FuzzLineWriter(f *testing.F) {
	f.Add([]byte("a\nb\r\nccc"), 2)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = max%64 + 1
		if max < 1 {
			max += 64
		}
		var lines []string
		w := &lineWriter{max: max, emit: func(l string) { lines = append(lines, l) }}
		_, _ = w.Write(data)
		w.flush()
		for _, l := range lines {
			// Invalid UTF-8 bytes become U+FFFD (3 bytes each).
			if len(strings.TrimSuffix(l, "…")) > 3*max || strings.Contains(l, "\n") || !utf8.ValidString(l) {
				t.Fatalf("line %q (max %d)", l, max)
			}
		}
	})
}
