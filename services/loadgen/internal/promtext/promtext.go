// Package promtext reads a few series from a Prometheus text exposition
// (an edge's /metrics), summing each metric over its label sets. It is
// deliberately small: the load generator reads a handful of counters and
// gauges at the start and end of a run, not the whole format.
package promtext

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Parse returns, for each metric name in want, the sum of its samples over
// every label set; an entry of want with its labels, as the exposition
// writes them (`name{result="shared"}`), is that one series. Names absent
// from the exposition are absent from the map. Comment lines and other
// metrics are skipped.
func Parse(r io.Reader, want []string) (map[string]float64, error) {
	wanted := make(map[string]bool, len(want))
	for _, w := range want {
		wanted[w] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		if !wanted[name] && !wantedSeries(wanted, line, name) {
			continue
		}
		// The value follows the labels (which may contain spaces inside
		// quotes); an optional timestamp may follow the value.
		rest, series := line[len(name):], ""
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("metric %s: unterminated labels", name)
			}
			series, rest = name+rest[:end+1], rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metric %s: no value", name)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		if wanted[name] {
			out[name] += v
		}
		if series != "" && wanted[series] {
			out[series] += v
		}
	}
	return out, sc.Err()
}

// wantedSeries reports whether line is a series of metric name that want
// names with its labels.
func wantedSeries(wanted map[string]bool, line, name string) bool {
	end := strings.LastIndexByte(line, '}')
	return end > len(name) && line[len(name)] == '{' && wanted[line[:end+1]]
}

// Fetch GETs url and parses it as Parse does.
func Fetch(ctx context.Context, client *http.Client, url string, want []string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return Parse(io.LimitReader(resp.Body, 64<<20), want)
}
