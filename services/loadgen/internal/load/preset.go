package load

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The standard workloads of issue #8, as named presets: each is a set of
// flag values (5,000 clients in one room unless said, ~200-byte events,
// 8 source addresses, 200 dialers). Flags given on the command line
// override a preset's values; the record's parameters are the effective
// ones, with the preset's name.
//
//	L1        broadcast, 5,000 clients, 10 events/s for 20s: latency below saturation (50k deliveries/s)
//	L2-<rate> broadcast, 5,000 clients, <rate> events/s for 10s: one step of the sustained-throughput sweep
//	L3        broadcast, 5,000 clients, 100 events/s for 10s: overload (500k deliveries/s offered)
//	L4        idle, 10,000 clients held 20s: memory per connection
//	L5        connect, 5,000 clients: the connect storm
//	resume    resume, 5,000 clients each resuming after a 20-event gap: a mass resume, as when a node drains
//	job       broadcast, 5,000 clients, one job's progress with log lines at 50 events/s for 10s: coalescing (--mix job)
var presets = map[string]map[string]string{
	"L1": {"scenario": "broadcast", "clients": "5000", "rate": "10", "duration": "20s"},
	"L3": {"scenario": "broadcast", "clients": "5000", "rate": "100", "duration": "10s", "drain": "10s"},
	"L4": {"scenario": "idle", "clients": "10000", "duration": "20s"},
	"L5": {"scenario": "connect", "clients": "5000"},
	// 20 events published at 200/s before the clients come back; up to
	// 30s for the last client to hold them all.
	"resume": {"scenario": "resume", "clients": "5000", "rate": "200", "duration": "100ms", "drain": "30s"},
	// Five times the edge's --progress-rate: every client coalesces the
	// job's events; up to 20s for the last one to reach every client.
	"job": {"scenario": "broadcast", "mix": "job", "clients": "5000", "rate": "50", "duration": "10s", "drain": "20s"},
}

// presetCommon is what every preset sets.
var presetCommon = map[string]string{"source-addrs": "8", "dialers": "200", "payload-bytes": "200"}

// PresetNames lists the presets, L2 as its pattern.
func PresetNames() []string { return []string{"L1", "L2-<rate>", "L3", "L4", "L5", "resume", "job"} }

// Preset returns the flag values of the named preset (flag name without
// dashes → value), or an error naming the presets.
func Preset(name string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range presetCommon {
		out[k] = v
	}
	if rate, ok := strings.CutPrefix(name, "L2-"); ok {
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || !(r > 0) || r > 1e6 {
			return nil, fmt.Errorf("--preset %s: want L2-<rate> with a rate in (0, 1e6] events/s, e.g. L2-60", name)
		}
		for k, v := range map[string]string{"scenario": "broadcast", "clients": "5000", "rate": rate, "duration": "10s"} {
			out[k] = v
		}
		return out, nil
	}
	p, ok := presets[name]
	if !ok {
		return nil, fmt.Errorf("--preset %q: want one of %s", name, strings.Join(PresetNames(), ", "))
	}
	for k, v := range p {
		out[k] = v
	}
	return out, nil
}

// PresetFlags returns the preset's flag names, sorted (for messages and
// tests).
func PresetFlags(p map[string]string) []string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
