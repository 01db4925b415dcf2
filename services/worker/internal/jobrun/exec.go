package jobrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Exec configures exec runs. The zero value of each field selects its
// default.
type Exec struct {
	// MaxRunTime bounds one run; the process group is killed after it.
	// Default 1h.
	MaxRunTime time.Duration
	// MaxLineBytes cuts longer output lines (the rest of the line is
	// dropped, the kept part ends with "…"). Default 4096.
	MaxLineBytes int
	// WaitDelay is how long a run waits for the output pipes after the
	// process exits (a background child may hold them). Default 2s.
	WaitDelay time.Duration
	// TempDir is where each run's working directory is created. Default
	// os.TempDir().
	TempDir string
}

// Defaults of Exec.
const (
	DefaultMaxRunTime   = time.Hour
	DefaultMaxLineBytes = 4096
	DefaultWaitDelay    = 2 * time.Second
)

// Env names the run to the command.
type Env struct {
	ProjectID, TaskID, ExecutionID string
}

// Run runs c to completion and returns nil when it exits 0, an error
// naming its exit status otherwise, or the context's cause when ctx ended
// first (the process group is killed then).
func (x Exec) Run(ctx context.Context, c Command, env Env, sink Sink) error {
	if x.MaxRunTime <= 0 {
		x.MaxRunTime = DefaultMaxRunTime
	}
	if x.MaxLineBytes <= 0 {
		x.MaxLineBytes = DefaultMaxLineBytes
	}
	if x.WaitDelay <= 0 {
		x.WaitDelay = DefaultWaitDelay
	}
	dir, err := os.MkdirTemp(x.TempDir, "eventedge-exec-")
	if err != nil {
		return fmt.Errorf("exec %s: work dir: %w", c.Name, err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeoutCause(ctx, x.MaxRunTime, ErrTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + dir,
		"LANG=C.UTF-8",
		"EVENTEDGE_PROJECT_ID=" + env.ProjectID,
		"EVENTEDGE_TASK_ID=" + env.TaskID,
		"EVENTEDGE_EXECUTION_ID=" + env.ExecutionID,
	}
	stdout := &lineWriter{max: x.MaxLineBytes, emit: func(l string) {
		if p, stage, ok := ParseProgress(l); ok {
			sink.Progress(p, stage, "")
			return
		}
		sink.Log(pb.LogStream_LOG_STREAM_STDOUT, l)
	}}
	stderr := &lineWriter{max: x.MaxLineBytes, emit: func(l string) { sink.Log(pb.LogStream_LOG_STREAM_STDERR, l) }}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = x.WaitDelay
	setProcessGroup(cmd)

	sink.Log(pb.LogStream_LOG_STREAM_SYSTEM, "$ "+strings.Join(append([]string{c.Path}, c.Args...), " "))
	err = cmd.Run()
	stdout.flush()
	stderr.flush()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return fmt.Errorf("%s: %s", c.Name, ee.ProcessState.String())
	case errors.Is(err, exec.ErrWaitDelay):
		return nil // exited 0; a background child kept the output open
	}
	return fmt.Errorf("exec %s: %w", c.Name, err)
}

// ParseProgress parses a "PROGRESS <0..1> <stage>" line. The stage may be
// empty; any other line, or a value outside 0..1, is not a progress line.
func ParseProgress(line string) (p float64, stage string, ok bool) {
	rest, found := strings.CutPrefix(line, "PROGRESS ")
	if !found {
		return 0, "", false
	}
	num, stage, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	p, err := strconv.ParseFloat(num, 64)
	if err != nil || !(p >= 0 && p <= 1) {
		return 0, "", false
	}
	return p, strings.TrimSpace(stage), true
}

// lineWriter splits written bytes into lines. exec writes each stream from
// one goroutine; mu makes flush safe after Wait anyway.
type lineWriter struct {
	max  int
	emit func(string)

	mu       sync.Mutex
	buf      bytes.Buffer
	skipping bool // dropping the rest of an over-long line
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.skipping {
			room := w.max - w.buf.Len()
			if len(chunk) > room {
				w.buf.Write(chunk[:max(room, 0)])
				w.buf.WriteString("…")
				w.emitLocked()
				w.skipping = true
			} else {
				w.buf.Write(chunk)
			}
		}
		if i < 0 {
			break
		}
		if !w.skipping {
			w.emitLocked()
		}
		w.skipping = false
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) emitLocked() {
	line := strings.TrimSuffix(w.buf.String(), "\r")
	w.buf.Reset()
	w.emit(strings.ToValidUTF8(line, "\uFFFD"))
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 && !w.skipping {
		w.emitLocked()
	}
}
