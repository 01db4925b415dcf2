package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// workloadNames are the standard workloads, in the order they run and print.
var workloadNames = []string{"L1", "L2", "L3", "L4", "L5"}

// targets are the goals of issue #8, as printed next to the figures.
var targets = map[string]string{
	"L1": "p99 ≤ 50 ms, zero loss",
	"L2": "≥ 250k deliveries/s",
	"L3": "≥ 500k/s, zero loss, p99 ≤ 400 ms",
	"L4": "≤ 16 KiB/conn",
	"L5": "≤ 0.75 s",
}

// L2 pass criteria of one sweep step (besides zero loss and every client
// connected).
const (
	l2MaxP99Ms    = 500.0
	l2MaxLateFrac = 0.01 // share of publishes that may start late
)

// parseOnly turns "L1,L5" into the selected workloads, in run order;
// empty selects all.
func parseOnly(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(workloadNames), nil
	}
	want := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.ToUpper(strings.TrimSpace(f))
		if !slices.Contains(workloadNames, f) {
			return nil, fmt.Errorf("--only %q: unknown workload %q (want some of %s)", s, f, strings.Join(workloadNames, ","))
		}
		want[f] = true
	}
	var out []string
	for _, w := range workloadNames {
		if want[w] {
			out = append(out, w)
		}
	}
	return out, nil
}

// parseRates turns "20,40,60" into the L2 sweep's rates, ascending.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(r > 0) || r > 1e6 {
			return nil, fmt.Errorf("--sweep %q: want comma-separated rates in (0, 1e6] events/s", s)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// step is one loadgen run of a workload: its preset and the flags added.
type step struct {
	workload string
	preset   string   // L1, L2-60, …
	extra    []string // flags after --preset (they override it)
	name     string   // its files' names (default: preset)
}

// fileName is the name of the step's record, table and logs, without
// their extensions.
func (s step) fileName() string {
	if s.name != "" {
		return s.name
	}
	return s.preset
}

// quickFlags are what --quick adds to every run: small and short.
var quickFlags = map[string][]string{
	"L1": {"--clients", "200", "--duration", "2s", "--source-addrs", "2", "--drain", "3s"},
	"L2": {"--clients", "200", "--duration", "2s", "--source-addrs", "2", "--drain", "3s"},
	"L3": {"--clients", "200", "--duration", "2s", "--source-addrs", "2", "--drain", "3s"},
	"L4": {"--clients", "200", "--duration", "1s", "--source-addrs", "2"},
	"L5": {"--clients", "200", "--source-addrs", "2"},
}

// plan lists the runs of workload w (L2: one per sweep rate).
func plan(w string, rates []float64, quick bool) []step {
	var extra []string
	if quick {
		extra = quickFlags[w]
	}
	if w != "L2" {
		return []step{{workload: w, preset: w, extra: extra}}
	}
	out := make([]step, 0, len(rates))
	for _, r := range rates {
		out = append(out, step{workload: w, preset: "L2-" + strconv.FormatFloat(r, 'f', -1, 64), extra: extra})
	}
	return out
}

// record is the part of a loadgen JSON record the table needs.
type record struct {
	Machine struct {
		CPUModel    string `json:"cpuModel"`
		Cores       int    `json:"cores"`
		LoadgenCPUs int    `json:"loadgenCpus"`
		Kernel      string `json:"kernel"`
		GoVersion   string `json:"goVersion"`
	} `json:"machine"`
	Commit     string `json:"commit"`
	Parameters struct {
		Preset  string  `json:"preset"`
		Clients int     `json:"clients"`
		Rate    float64 `json:"rate"`
	} `json:"parameters"`
	Results struct {
		OK      bool `json:"ok"`
		Clients struct {
			Connected int `json:"connected"`
			Failed    int `json:"failed"`
		} `json:"clients"`
		Connect *struct {
			Wall float64 `json:"wall"` // seconds
			// CPU over Wall, seconds: the load generator's, and the
			// server's (the edge's, or the hub's) when it was sampled.
			LoadgenCPUSeconds float64  `json:"loadgenCpuSeconds"`
			EdgeCPUSeconds    *float64 `json:"edgeCpuSeconds"`
		} `json:"connect"`
		Latency *struct {
			Count uint64  `json:"count"`
			P50Ms float64 `json:"p50Ms"`
			P99Ms float64 `json:"p99Ms"`
		} `json:"latency"`
		Delivery *struct {
			Published  int     `json:"published"`
			Expected   int     `json:"expected"`
			Delivered  int     `json:"delivered"`
			Lost       int     `json:"lost"`
			Duplicated int     `json:"duplicated"`
			OutOfOrder int     `json:"outOfOrder"`
			PerSecond  float64 `json:"perSecond"`
		} `json:"delivery"`
		Publisher *struct {
			Target    int `json:"target"`
			Published int `json:"published"`
			Failed    int `json:"failed"`
			Late      int `json:"late"`
		} `json:"publisher"`
		Churn *struct {
			Target         int            `json:"target"`
			Connects       int            `json:"connects"`
			Disconnects    int            `json:"disconnects"`
			Failed         int            `json:"failed"`
			ClosedByServer map[string]int `json:"closedByServer"`
			Delivery       *struct {
				Delivered int `json:"delivered"`
			} `json:"delivery"`
		} `json:"churn"`
		Edge *struct {
			CPUCores        float64  `json:"cpuCores"`
			RSSPerConnBytes *float64 `json:"rssPerConnBytes"`
		} `json:"edge"`
		Loadgen *struct {
			CPUCores float64 `json:"cpuCores"`
		} `json:"loadgen"`
	} `json:"results"`
}

// outcome is one run's record, or why there is none.
type outcome struct {
	run step
	rec *record
	err error
}

// row is one line of the final table.
type row struct {
	workload, figure, target string
	met                      *bool // nil: not measured
	detail                   string
}

func boolp(b bool) *bool { return &b }

// l2Pass reports whether a sweep step passes, and why not.
func l2Pass(r *record) (bool, string) {
	res := r.Results
	switch {
	case res.Clients.Failed > 0:
		return false, fmt.Sprintf("%d clients failed", res.Clients.Failed)
	case res.Delivery == nil || res.Publisher == nil || res.Latency == nil:
		return false, "no delivery figures"
	case res.Delivery.Lost+res.Delivery.Duplicated+res.Delivery.OutOfOrder > 0 || res.Delivery.Delivered < res.Delivery.Expected:
		return false, fmt.Sprintf("lost %d of %d", res.Delivery.Lost, res.Delivery.Expected)
	case res.Publisher.Published < res.Publisher.Target || res.Publisher.Failed > 0:
		return false, fmt.Sprintf("published %d of %d", res.Publisher.Published, res.Publisher.Target)
	case float64(res.Publisher.Late) > l2MaxLateFrac*float64(res.Publisher.Target):
		return false, fmt.Sprintf("publisher late %d of %d", res.Publisher.Late, res.Publisher.Target)
	case res.Latency.P99Ms >= l2MaxP99Ms:
		return false, fmt.Sprintf("p99 %.0f ms", res.Latency.P99Ms)
	}
	return true, ""
}

// loss is "0" or "N (x.xx %)".
func loss(lost, expected int) string {
	if lost == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.2f %%)", lost, 100*float64(lost)/float64(max(expected, 1)))
}

// evaluate turns the outcomes of workload w into its table row.
func evaluate(w string, outs []outcome) row {
	r := row{workload: w, target: targets[w]}
	var recs []*record
	var errs []string
	for _, o := range outs {
		if o.rec != nil {
			recs = append(recs, o.rec)
		} else if o.err != nil {
			errs = append(errs, o.run.preset+": "+o.err.Error())
		}
	}
	if len(recs) == 0 {
		r.figure = "no record"
		r.detail = strings.Join(errs, "; ")
		return r
	}
	rec := recs[len(recs)-1]
	res := rec.Results
	switch w {
	case "L1":
		if res.Latency == nil || res.Delivery == nil {
			r.figure = "no latency figures"
			break
		}
		r.figure = fmt.Sprintf("p50 %.1f ms, p99 %.1f ms, loss %s", res.Latency.P50Ms, res.Latency.P99Ms, loss(res.Delivery.Lost, res.Delivery.Expected))
		r.met = boolp(res.Latency.P99Ms <= 50 && res.Delivery.Lost == 0 && res.Clients.Failed == 0)
	case "L2":
		var best *record
		var steps []string
		for _, rc := range recs {
			ok, why := l2Pass(rc)
			step := fmt.Sprintf("%g/s ", rc.Parameters.Rate)
			if ok {
				best = rc
				step += "ok"
			} else {
				step += "fail (" + why + ")"
			}
			steps = append(steps, step)
		}
		r.detail = "sweep: " + strings.Join(steps, ", ")
		if best == nil {
			r.figure = "no passing step"
			r.met = boolp(false)
			break
		}
		ps := best.Results.Delivery.PerSecond
		r.figure = fmt.Sprintf("%s deliveries/s (rate %g/s × %d clients)", kilo(ps), best.Parameters.Rate, best.Results.Clients.Connected)
		r.met = boolp(ps >= 250e3)
	case "L3":
		if res.Latency == nil || res.Delivery == nil {
			r.figure = "no delivery figures"
			break
		}
		d := res.Delivery
		r.figure = fmt.Sprintf("%s delivered/s, loss %s, p99 %.0f ms", kilo(d.PerSecond), loss(d.Lost, d.Expected), res.Latency.P99Ms)
		r.met = boolp(d.PerSecond >= 500e3 && d.Lost == 0 && res.Latency.P99Ms <= 400 && res.Clients.Failed == 0)
	case "L4":
		if res.Edge == nil || res.Edge.RSSPerConnBytes == nil {
			r.figure = "not measured (no edge pid)"
			break
		}
		kib := *res.Edge.RSSPerConnBytes / 1024
		r.figure = fmt.Sprintf("%.1f KiB/conn (%d conns)", kib, res.Clients.Connected)
		r.met = boolp(kib <= 16 && res.Clients.Failed == 0)
	case "L5":
		if res.Connect == nil {
			r.figure = "no connect figures"
			break
		}
		r.figure = fmt.Sprintf("%.2f s (%d conns, %d failed)", res.Connect.Wall, res.Clients.Connected, res.Clients.Failed)
		r.met = boolp(res.Connect.Wall <= 0.75 && res.Clients.Failed == 0)
	}
	if w != "L2" {
		var notes []string
		if res.Edge != nil {
			notes = append(notes, fmt.Sprintf("edge %.2f cores", res.Edge.CPUCores))
		}
		if res.Loadgen != nil {
			notes = append(notes, fmt.Sprintf("loadgen %.2f cores", res.Loadgen.CPUCores))
		}
		if !res.OK {
			notes = append(notes, "loadgen check FAIL")
		}
		r.detail = strings.Join(notes, ", ")
	}
	if len(errs) > 0 {
		r.detail = strings.TrimPrefix(r.detail+"; "+strings.Join(errs, "; "), "; ")
	}
	return r
}

// kilo writes 123456 as "123.5k".
func kilo(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
