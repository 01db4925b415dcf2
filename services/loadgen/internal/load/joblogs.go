package load

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// EdgeMaxCoalescedLogs is the edge's default --max-coalesced-logs: a
// coalesced task_progress carries the last this many log lines of the
// events it supersedes. The job mix's log check assumes the edge runs
// with it.
const EdgeMaxCoalescedLogs = 200

// logCheckClients is how many clients the job mix checks the log lines of
// (decoding every message of every client would cost the load generator
// more than reading them).
const logCheckClients = 16

// jobLogs checks the job mix's log lines at a few clients (LogResults).
// published is written by the publisher's collector and read by check
// after the publisher returned (which waits for its collector); each
// checked client's received list is written by its reader and read by
// check after the clients closed (Close waits for the reader).
type jobLogs struct {
	published map[uint64][]string // seq → the event's log lines
	received  [][]receivedLogs    // per checked client, in arrival order
	failed    []error             // per checked client: the first message it could not decode
}

type receivedLogs struct {
	seq   uint64
	lines []string
	reset bool // a reset: the room goes on after seq, nothing before it is owed
}

func newJobLogs(clients int) *jobLogs {
	n := min(clients, logCheckClients)
	return &jobLogs{published: map[uint64][]string{}, received: make([][]receivedLogs, n), failed: make([]error, n)}
}

// publishedEvent records the lines of the event stored at seq.
func (j *jobLogs) publishedEvent(seq uint64, ev *pb.Event) {
	j.published[seq] = lineTexts(ev)
}

// onEvent returns client i's event handler: nil for a client not checked.
// binary is the protobuf mode.
func (j *jobLogs) onEvent(i int, binary bool) func(m *leanMsg) {
	if i >= len(j.received) {
		return nil
	}
	return func(m *leanMsg) {
		lines, err := decodeLines(m.Raw, binary)
		if err != nil {
			if j.failed[i] == nil {
				j.failed[i] = fmt.Errorf("seq %d: %w", m.Seq, err)
			}
			return
		}
		j.received[i] = append(j.received[i], receivedLogs{seq: m.Seq, lines: lines})
	}
}

// onReset returns client i's reset handler: nil for a client not checked.
func (j *jobLogs) onReset(i int) func(seq uint64) {
	if i >= len(j.received) {
		return nil
	}
	return func(seq uint64) { j.received[i] = append(j.received[i], receivedLogs{seq: seq, reset: true}) }
}

// decodeLines returns the log lines of one server event message (a
// task_progress): the JSON message's event.data.logs, or the protobuf
// ServerMessage's event.
func decodeLines(raw []byte, binary bool) ([]string, error) {
	if binary {
		var msg pb.ServerMessage
		if err := proto.Unmarshal(raw, &msg); err != nil {
			return nil, err
		}
		return lineTexts(msg.GetEvent().GetEvent()), nil
	}
	var msg struct {
		Event struct {
			Data struct {
				Logs []struct {
					Line string `json:"line"`
				} `json:"logs"`
			} `json:"data"`
		} `json:"event"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, err
	}
	out := make([]string, len(msg.Event.Data.Logs))
	for i, l := range msg.Event.Data.Logs {
		out[i] = l.Line
	}
	return out, nil
}

func lineTexts(ev *pb.Event) []string {
	logs := ev.GetTaskProgress().GetLogs()
	out := make([]string, len(logs))
	for i, l := range logs {
		out[i] = l.GetLine()
	}
	return out
}

// check compares what each checked client that connected received with
// what was published after its subscribe position pos[i] (or a reset's).
func (j *jobLogs) check(pos []uint64, connected func(i int) bool) *LogResults {
	seqs := make([]uint64, 0, len(j.published))
	for seq := range j.published {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	res := &LogResults{}
	for i, got := range j.received {
		if !connected(i) {
			continue
		}
		res.Clients++
		if j.failed[i] != nil {
			res.Mismatched++
			if res.First == "" {
				res.First = fmt.Sprintf("client c%d: %v", i, j.failed[i])
			}
		}
		prev := pos[i]
		for _, r := range got {
			if r.reset {
				prev = r.seq
				continue
			}
			res.Events++
			res.Lines += len(r.lines)
			// The lines of the events after prev up to r.seq, the last
			// EdgeMaxCoalescedLogs of them.
			lo := sort.Search(len(seqs), func(k int) bool { return seqs[k] > prev })
			var want []string
			for _, s := range seqs[lo:] {
				if s > r.seq {
					break
				}
				want = append(want, j.published[s]...)
			}
			if over := len(want) - EdgeMaxCoalescedLogs; over > 0 {
				want = want[over:]
			}
			if !slices.Equal(r.lines, want) {
				res.Mismatched++
				if res.First == "" {
					res.First = fmt.Sprintf("client c%d, seq %d (after %d): %d lines %q; want %d %q",
						i, r.seq, prev, len(r.lines), clipLines(r.lines), len(want), clipLines(want))
				}
			}
			prev = r.seq
		}
	}
	return res
}

// clipLines is lines for a message: the first three.
func clipLines(lines []string) string {
	if len(lines) > 3 {
		return strings.Join(lines[:3], " | ") + " …"
	}
	return strings.Join(lines, " | ")
}
