package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventedge/eventedge/services/loadgen/internal/hist"
)

// Record is one run, as written by --json.
type Record struct {
	Machine    Machine   `json:"machine"`
	Commit     string    `json:"commit"`
	Scenario   string    `json:"scenario"`
	StartedAt  time.Time `json:"startedAt"`
	Parameters Config    `json:"parameters"`
	Results    *Results  `json:"results"`
}

// Machine describes where the load generator ran.
type Machine struct {
	CPUModel string `json:"cpuModel"`
	Cores    int    `json:"cores"` // processors in /proc/cpuinfo (the machine's, not the affinity's)
	// LoadgenCPUs is the CPUs this process may run on (its affinity,
	// e.g. 1 under taskset -c 1).
	LoadgenCPUs int    `json:"loadgenCpus"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"goVersion"`
}

// Results are a run's measurements; the sections a scenario does not
// measure are nil.
type Results struct {
	// OK is false when the delivery check found a problem or a client
	// failed to connect.
	OK        bool              `json:"ok"`
	Elapsed   Duration          `json:"elapsed"`
	Clients   ClientResults     `json:"clients"`
	Connect   *ConnectResults   `json:"connect,omitempty"`
	Latency   *LatencyResults   `json:"latency,omitempty"`
	Delivery  *DeliveryResults  `json:"delivery,omitempty"`
	Publisher *PublisherResults `json:"publisher,omitempty"`
	Rooms     *RoomsResults     `json:"rooms,omitempty"`
	// Groups is the slow scenario's fast and slow clients, each checked
	// on its own ("fast", "slow").
	Groups map[string]*GroupResults `json:"groups,omitempty"`
	Churn  *ChurnResults            `json:"churn,omitempty"`
	// Logs is the job mix's check of the log lines (broadcast --mix job).
	Logs    *LogResults     `json:"logs,omitempty"`
	Resume  *ResumeResults  `json:"resume,omitempty"`
	Edge    *EdgeResults    `json:"edge,omitempty"`
	Loadgen *LoadgenResults `json:"loadgen,omitempty"`
	Metrics *MetricsResults `json:"metrics,omitempty"`
	// MalformedLines counts the server messages the lean receive path
	// could not scan (a note holds the first): any fails the run.
	MalformedLines int      `json:"malformedLines,omitempty"`
	Notes          []string `json:"notes,omitempty"`
}

// ClientResults counts the clients.
type ClientResults struct {
	Requested int `json:"requested"`
	Connected int `json:"connected"`
	Failed    int `json:"failed"`
	// Failures counts failed connects by reason ("dial: HTTP 429" …);
	// FailureSamples holds the first error of each reason.
	Failures       map[string]int    `json:"failures,omitempty"`
	FailureSamples map[string]string `json:"failureSamples,omitempty"`
	// Disconnected counts connections the server ended during the run, by
	// reason.
	Disconnected map[string]int `json:"disconnected,omitempty"`
}

// ConnectResults is the connect storm (every scenario connects first).
type ConnectResults struct {
	Wall          Duration        `json:"wall"`
	PerSecond     float64         `json:"perSecond"`
	Dialers       int             `json:"dialers"`
	ClientLatency *LatencyResults `json:"clientLatency"` // connect + auth + subscribe of one client
	// CPU time over Wall only (the run's edge and loadgen sections cover
	// all of it, the close of every client included): the load
	// generator's, and the edge's when --edge-pid is set.
	LoadgenCPUSeconds float64  `json:"loadgenCpuSeconds"`
	EdgeCPUSeconds    *float64 `json:"edgeCpuSeconds,omitempty"`
}

// LatencyResults summarises a histogram, in milliseconds.
type LatencyResults struct {
	Count  uint64  `json:"count"`
	MinMs  float64 `json:"minMs"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
	// Negative counts values below zero recorded as 0 (clock steps).
	Negative uint64 `json:"negative,omitempty"`
}

// LogResults is the job mix's check of the log lines that reached a few
// clients: each task_progress they received must carry the log lines of
// the events published since the one they received before (the edge
// coalesced those into it), in order, the last EdgeMaxCoalescedLogs of
// them.
type LogResults struct {
	Clients    int `json:"clients"`    // clients whose log lines were checked
	Events     int `json:"events"`     // events they received
	Lines      int `json:"lines"`      // log lines in those events
	Mismatched int `json:"mismatched"` // events whose lines were not the expected ones: fails the run
	// First describes the first mismatched event.
	First string `json:"first,omitempty"`
}

// DeliveryResults is the delivery check over every client.
type DeliveryResults struct {
	Published  int `json:"published"`
	Expected   int `json:"expected"`
	Delivered  int `json:"delivered"`
	Lost       int `json:"lost"`
	Duplicated int `json:"duplicated"`
	OutOfOrder int `json:"outOfOrder"`
	Unexpected int `json:"unexpected"`
	// PerSecond is Delivered over the time from the first publish to the
	// end of the drain.
	PerSecond float64 `json:"perSecond"`
	// MessageBytes is the size of one event message as received (the
	// first one): {"op":"event",…,"event":{…}}, or in the protobuf mode
	// the ServerMessage without its length prefix.
	MessageBytes int `json:"messageBytes"`
	// MeanMessageBytes is the mean size of the event messages received,
	// measured as MessageBytes (uncompressed).
	MeanMessageBytes float64 `json:"meanMessageBytes,omitempty"`
	// Worst describes up to three failing clients.
	Worst []string `json:"worst,omitempty"`
}

// RoomsResults is what the rooms publisher sent and the permission check.
type RoomsResults struct {
	ProjectRooms       int            `json:"projectRooms"`
	ClientsWithoutLogs int            `json:"clientsWithoutLogs"`
	PublishedByType    map[string]int `json:"publishedByType"`
	UserRoomEvents     int            `json:"userRoomEvents"` // published to a client's user room
	LogsEvents         int            `json:"logsEvents"`     // published with requiredPermission logs:read
	// Forbidden counts logs:read events received by a client without
	// that permission: must be 0.
	Forbidden int `json:"forbidden"`
	// ProgressEligible counts the task_progress deliveries the clients may
	// receive, ProgressDelivered those that arrived; task_progress is low
	// priority, which the edge may coalesce or drop, so it is not in the
	// delivery check's expected.
	ProgressEligible  int `json:"progressEligible"`
	ProgressDelivered int `json:"progressDelivered"`
}

// GroupResults is one group of clients of the slow scenario.
type GroupResults struct {
	Clients   int              `json:"clients"`
	Connected int              `json:"connected"`
	Delivery  *DeliveryResults `json:"delivery"`
	Latency   *LatencyResults  `json:"latency"`
	// CutOff and Behind count, over the slow clients, the events
	// published after the last one each received: CutOff for the clients
	// the edge closed, Behind for those still connected (still queued for
	// them after the drain). For each slow client Expected runs only up
	// to that last one. Always 0 for the fast clients.
	CutOff int `json:"cutOff"`
	Behind int `json:"behind"`
	// Closed counts the group's connections the server ended during the
	// run, by reason ("read: close 4008" is a slow consumer).
	Closed map[string]int `json:"closed,omitempty"`
}

// ResumeResults is the resume scenario's replay of the gap.
type ResumeResults struct {
	Since uint64 `json:"since"` // the position every client resumed after
	Gap   int    `json:"gap"`   // events published after it: replayed to each client
	// Complete counts the clients that received the gap's last event
	// (whether they received all of it is Results.Delivery's check).
	Complete int `json:"complete"`
	// Wall is the first dial to the last client complete; absent when
	// not every connected client completed within the drain.
	Wall *Duration `json:"wall,omitempty"`
	// Replay is each complete client's subscribe reply → the gap's last
	// event.
	Replay *LatencyResults `json:"replay"`
}

// ChurnResults is the churning clients of the churn scenario (the steady
// ones are Results.Clients and Results.Delivery).
type ChurnResults struct {
	Target      int `json:"target"`      // connects planned: ChurnRate × Duration
	Connects    int `json:"connects"`    // succeeded
	Disconnects int `json:"disconnects"` // closed by the load generator after ChurnLife
	Failed      int `json:"failed"`
	// Failures counts failed connects by reason, FailureSamples the
	// first error of each.
	Failures       map[string]int    `json:"failures,omitempty"`
	FailureSamples map[string]string `json:"failureSamples,omitempty"`
	// ClosedByServer counts churning connections the server ended before
	// their life was over, by reason.
	ClosedByServer map[string]int `json:"closedByServer,omitempty"`
	// Delivery is the churning clients' check for duplicates, order and
	// unexpected events (not loss: they leave while events flow).
	Delivery *DeliveryResults `json:"delivery"`
}

// PublisherResults says whether the publisher kept to its schedule.
type PublisherResults struct {
	Target    int      `json:"target"`
	Published int      `json:"published"`
	Failed    int      `json:"failed"`
	MaxLag    Duration `json:"maxLag"` // the latest a publish started after its slot
	Late      int      `json:"late"`   // publishes that started more than max(1/rate, LateTolerance) late
	Wall      Duration `json:"wall"`
	FirstErr  string   `json:"firstError,omitempty"`
}

// LoadgenResults is the load generator's own CPU use over the run: near
// its CPUs' count (1 under taskset -c 1), it, not the edge, may be the
// bottleneck.
type LoadgenResults struct {
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUCores   float64 `json:"cpuCores"` // CPUSeconds / elapsed
}

// EdgeResults is the edge process as sampled from /proc.
type EdgeResults struct {
	PID             int      `json:"pid"`
	CPUSeconds      float64  `json:"cpuSeconds"` // over the run
	CPUCores        float64  `json:"cpuCores"`   // CPUSeconds / elapsed
	RSSStartBytes   int64    `json:"rssStartBytes"`
	RSSEndBytes     int64    `json:"rssEndBytes"`
	RSSMaxBytes     int64    `json:"rssMaxBytes"`
	RSSPerConnBytes *float64 `json:"rssPerConnBytes,omitempty"` // idle: (RSS after - before) / connected
	// WrittenBytes is what the edge passed to write calls over the run
	// (wchar of /proc/<pid>/io): the bytes it sent, frames and all; absent
	// when the file is unreadable.
	WrittenBytes *int64 `json:"writtenBytes,omitempty"`
	Samples      int    `json:"samples"`
	Err          string `json:"error,omitempty"`
}

// MetricsResults are the edge's /metrics series at the start of the run
// and at its end, taken while the clients are still connected.
type MetricsResults struct {
	Start map[string]float64 `json:"start"`
	End   map[string]float64 `json:"end"`
	// EdgeLatencyMeanMs is the mean of the edge's own delivery latency
	// over the run (eventedge_delivery_latency_seconds: the event's
	// timestamp to its frame written), nil when the edge wrote no event.
	// Next to the clients' mean it separates the edge's latency from the
	// load generator's own lag in reading frames.
	EdgeLatencyMeanMs *float64 `json:"edgeLatencyMeanMs,omitempty"`
	Err               string   `json:"error,omitempty"`
}

// edgeLatencyMean is EdgeLatencyMeanMs from the start and end snapshots.
func (m *MetricsResults) edgeLatencyMean() *float64 {
	e, ok1 := m.End[edgeLatencySum]
	n, ok2 := m.End[edgeLatencyCount]
	if !ok1 || !ok2 {
		return nil
	}
	e, n = e-m.Start[edgeLatencySum], n-m.Start[edgeLatencyCount]
	if n <= 0 {
		return nil
	}
	ms := e / n * 1000
	return &ms
}

// Duration marshals as seconds (a float) in JSON.
type Duration time.Duration

// MarshalJSON writes the duration in seconds.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).Seconds()) }

func latencyOf(h *hist.Histogram) *LatencyResults {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return &LatencyResults{
		Count: h.Count(), MinMs: ms(h.Min()), MeanMs: h.Mean() / 1e6,
		P50Ms: ms(h.Quantile(0.5)), P90Ms: ms(h.Quantile(0.9)), P99Ms: ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)), MaxMs: ms(h.Max()), Negative: h.Clamped(),
	}
}

// machineInfo reads the CPU model and kernel from /proc; what cannot be
// read is left empty.
func machineInfo(procRoot string) Machine {
	m := Machine{LoadgenCPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile(procRoot + "/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, ok := strings.Cut(line, ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "processor":
				m.Cores++
			case k == "model name" && m.CPUModel == "":
				m.CPUModel = strings.TrimSpace(v)
			}
		}
	}
	if m.Cores == 0 {
		m.Cores = runtime.NumCPU()
	}
	if b, err := os.ReadFile(procRoot + "/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// gitDescribe is `git describe --always --dirty` of the working directory,
// or "" outside a repository or without git.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// WriteTable writes rec as a human table.
func WriteTable(w io.Writer, rec *Record) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	r := rec.Results
	verdict := "ok"
	if !r.OK {
		verdict = "FAIL"
	}
	p := rec.Parameters
	row("scenario", "%s (%s)", rec.Scenario, verdict)
	row("machine", "%s, %d cores (loadgen on %d), kernel %s, %s", rec.Machine.CPUModel, rec.Machine.Cores, rec.Machine.LoadgenCPUs, rec.Machine.Kernel, rec.Machine.GoVersion)
	if rec.Commit != "" {
		row("commit", "%s", rec.Commit)
	}
	params := fmt.Sprintf("clients %d, dialers %d, source addrs %d, room project:%s", p.Clients, p.Dialers, p.SourceAddrs, p.Project)
	payload := fmt.Sprintf("payload ~%d B", p.PayloadBytes)
	if p.Mix != "" && p.Mix != MixPadded {
		payload = "mix " + p.Mix
	}
	switch rec.Scenario {
	case "broadcast":
		params += fmt.Sprintf(", rate %g/s for %s, %s", p.Rate, p.Duration, payload)
	case "rooms":
		params = fmt.Sprintf("clients %d, dialers %d, source addrs %d, %d rooms project:%s-r*, rate %g/s for %s, payload ~%d B, logs events %g, clients without logs %g, user-room events %g",
			p.Clients, p.Dialers, p.SourceAddrs, p.Rooms, p.Project, p.Rate, p.Duration, p.PayloadBytes, p.LogsFraction, p.NoLogsFraction, p.UserFraction)
	case "slow":
		params += fmt.Sprintf(", rate %g/s for %s, %s, slow %g reading every %s", p.Rate, p.Duration, payload, p.SlowFraction, p.SlowReadDelay)
	case "churn":
		params += fmt.Sprintf(", rate %g/s for %s, %s, churn %g/s living %s", p.Rate, p.Duration, payload, p.ChurnRate, p.ChurnLife)
	case "resume":
		params += fmt.Sprintf(", gap published at %g/s for %s, %s", p.Rate, p.Duration, payload)
	case "idle":
		params += fmt.Sprintf(", held %s", p.Duration)
	}
	if p.Protocol != "" {
		params += ", protocol " + p.Protocol
	}
	switch {
	case p.GCPercent < 0:
		params += ", own GC off"
	case p.GCPercent > 0:
		params += fmt.Sprintf(", own GC %d%%", p.GCPercent)
	}
	if p.Preset != "" {
		params = "preset " + p.Preset + ": " + params
	}
	row("parameters", "%s", params)
	row("elapsed", "%.2fs", time.Duration(r.Elapsed).Seconds())
	row("clients", "%d connected, %d failed of %d", r.Clients.Connected, r.Clients.Failed, r.Clients.Requested)
	for _, k := range slices.Sorted(maps.Keys(r.Clients.Failures)) {
		row("  failed: "+k, "%d (first: %s)", r.Clients.Failures[k], r.Clients.FailureSamples[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.Clients.Disconnected)) {
		row("  disconnected: "+k, "%d", r.Clients.Disconnected[k])
	}
	if c := r.Connect; c != nil {
		row("connect", "%.3fs wall, %.0f conn/s with %d dialers", time.Duration(c.Wall).Seconds(), c.PerSecond, c.Dialers)
		if l := c.ClientLatency; l != nil && l.Count > 0 {
			row("  per client (ms)", "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f", l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
		}
		perConn := func(sec float64) float64 { return sec / float64(max(r.Clients.Connected, 1)) * 1e6 }
		cpu := fmt.Sprintf("loadgen %.2fs (%.0f µs per client)", c.LoadgenCPUSeconds, perConn(c.LoadgenCPUSeconds))
		if e := c.EdgeCPUSeconds; e != nil {
			cpu = fmt.Sprintf("edge %.2fs (%.0f µs per client), ", *e, perConn(*e)) + cpu
		}
		row("  cpu while connecting", "%s", cpu)
	}
	if pub := r.Publisher; pub != nil {
		row("publisher", "%d/%d published, %d failed, max lag %s, %d late, %.2fs", pub.Published, pub.Target, pub.Failed,
			time.Duration(pub.MaxLag).Round(time.Microsecond), pub.Late, time.Duration(pub.Wall).Seconds())
		if pub.FirstErr != "" {
			row("  first error", "%s", pub.FirstErr)
		}
	}
	if d := r.Delivery; d != nil {
		row("delivered", "%d/%d expected (%.0f/s), %d B per event message (mean %.0f B)", d.Delivered, d.Expected, d.PerSecond, d.MessageBytes, d.MeanMessageBytes)
		row("delivery check", "lost %d, duplicated %d, out of order %d, unexpected %d", d.Lost, d.Duplicated, d.OutOfOrder, d.Unexpected)
		for _, s := range d.Worst {
			row("  worst", "%s", s)
		}
	}
	if l := r.Logs; l != nil {
		row("log lines", "%d clients checked: %d events, %d lines, %d mismatched", l.Clients, l.Events, l.Lines, l.Mismatched)
		if l.First != "" {
			row("  first", "%s", l.First)
		}
	}
	if rs := r.Rooms; rs != nil {
		types := ""
		for _, k := range slices.Sorted(maps.Keys(rs.PublishedByType)) {
			types += fmt.Sprintf(" %s %d", k, rs.PublishedByType[k])
		}
		row("rooms", "%d project rooms; published%s; %d to user rooms, %d with logs:read", rs.ProjectRooms, types, rs.UserRoomEvents, rs.LogsEvents)
		row("permissions", "%d clients without logs:read, %d forbidden deliveries", rs.ClientsWithoutLogs, rs.Forbidden)
		row("task_progress", "%d/%d deliveries arrived (low priority, not in expected)", rs.ProgressDelivered, rs.ProgressEligible)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Groups)) {
		g := r.Groups[k]
		row(k+" clients", "%d connected of %d", g.Connected, g.Clients)
		if d := g.Delivery; d != nil {
			row("  delivered", "%d/%d expected, %d cut off by a close, %d still queued", d.Delivered, d.Expected, g.CutOff, g.Behind)
			row("  delivery check", "lost %d, duplicated %d, out of order %d, unexpected %d", d.Lost, d.Duplicated, d.OutOfOrder, d.Unexpected)
			for _, s := range d.Worst {
				row("  worst", "%s", s)
			}
		}
		if l := g.Latency; l != nil && l.Count > 0 {
			row("  latency (ms)", "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%d)", l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.Count)
		}
		for _, c := range slices.Sorted(maps.Keys(g.Closed)) {
			row("  closed: "+c, "%d", g.Closed[c])
		}
	}
	if c := r.Churn; c != nil {
		row("churn", "%d/%d connects, %d disconnects, %d failed", c.Connects, c.Target, c.Disconnects, c.Failed)
		for _, k := range slices.Sorted(maps.Keys(c.Failures)) {
			row("  churn failed: "+k, "%d (first: %s)", c.Failures[k], c.FailureSamples[k])
		}
		for _, k := range slices.Sorted(maps.Keys(c.ClosedByServer)) {
			row("  churn closed: "+k, "%d", c.ClosedByServer[k])
		}
		if d := c.Delivery; d != nil {
			row("  churn check", "delivered %d, duplicated %d, out of order %d, unexpected %d", d.Delivered, d.Duplicated, d.OutOfOrder, d.Unexpected)
		}
	}
	if rs := r.Resume; rs != nil {
		if rs.Wall != nil {
			row("resume", "%d events after seq %d replayed to %d of %d clients in %.3fs (first dial to last client complete)", rs.Gap, rs.Since, rs.Complete, r.Clients.Connected, time.Duration(*rs.Wall).Seconds())
		} else {
			row("resume", "%d events after seq %d: %d of %d clients complete within the drain", rs.Gap, rs.Since, rs.Complete, r.Clients.Connected)
		}
		if l := rs.Replay; l != nil && l.Count > 0 {
			row("  replay per client (ms)", "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (subscribe reply to last event)", l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs)
		}
	}
	if l := r.Latency; l != nil {
		row("latency (ms)", "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%d, mean %.2f)",
			l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.Count, l.MeanMs)
	}
	if e := r.Edge; e != nil {
		row("edge cpu", "%.2fs (%.2f cores) pid %d", e.CPUSeconds, e.CPUCores, e.PID)
		row("edge rss", "start %s, end %s, max %s", mib(e.RSSStartBytes), mib(e.RSSEndBytes), mib(e.RSSMaxBytes))
		if e.WrittenBytes != nil {
			row("edge written", "%s (all write calls)", mib(*e.WrittenBytes))
		}
		if e.RSSPerConnBytes != nil {
			row("edge rss per conn", "%.1f KiB", *e.RSSPerConnBytes/1024)
		}
		if e.Err != "" {
			row("  edge sampling error", "%s", e.Err)
		}
	}
	if l := r.Loadgen; l != nil {
		row("loadgen cpu", "%.2fs (%.2f cores)", l.CPUSeconds, l.CPUCores)
	}
	if m := r.Metrics; m != nil {
		for _, k := range slices.Sorted(maps.Keys(m.End)) {
			row("metric "+k, "%g → %g", m.Start[k], m.End[k])
		}
		if m.EdgeLatencyMeanMs != nil {
			row("edge latency", "mean %.2f ms (the edge's own histogram: event timestamp → frame written; compare the clients' mean)", *m.EdgeLatencyMeanMs)
		}
		if m.Err != "" {
			row("  metrics error", "%s", m.Err)
		}
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
