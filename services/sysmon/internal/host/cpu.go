package host

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// CPUTimes is the aggregate line of /proc/stat, in clock ticks since boot.
type CPUTimes struct {
	// Busy is every tick not spent idle or waiting for I/O.
	Busy uint64
	// Total is every tick.
	Total uint64
}

// maxTicks bounds one field of the cpu line.
const maxTicks = 1 << 60

// ParseStat reads the aggregate "cpu" line of /proc/stat.
func ParseStat(r io.Reader) (CPUTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice].
		// guest time is already counted in user and nice, so it is not
		// added again. Kernels before 2.6.11 stop after irq/softirq.
		if len(fields) < 5 {
			return CPUTimes{}, fmt.Errorf("%w: /proc/stat cpu line has %d fields", ErrFormat, len(fields)-1)
		}
		var v [8]uint64
		for i := 1; i < len(fields) && i <= len(v); i++ {
			n, err := strconv.ParseUint(fields[i], 10, 64)
			// The bound keeps the sum of eight fields from overflowing;
			// real counters are far below it.
			if err != nil || n > maxTicks {
				return CPUTimes{}, fmt.Errorf("%w: /proc/stat cpu field %d: %q", ErrFormat, i, fields[i])
			}
			v[i-1] = n
		}
		var t CPUTimes
		for _, n := range v {
			t.Total += n
		}
		idle := v[3] + v[4]
		t.Busy = t.Total - idle
		return t, nil
	}
	if err := sc.Err(); err != nil {
		return CPUTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return CPUTimes{}, fmt.Errorf("%w: /proc/stat has no cpu line", ErrFormat)
}

// CPUPercent is the share of CPU time (0-100, all CPUs together) spent busy
// between two readings. It returns 0 when no time passed or the counters
// went backwards (they do not, short of a reboot between the readings).
func CPUPercent(prev, cur CPUTimes) float64 {
	if cur.Total <= prev.Total || cur.Busy < prev.Busy {
		return 0
	}
	p := 100 * float64(cur.Busy-prev.Busy) / float64(cur.Total-prev.Total)
	return min(p, 100)
}
