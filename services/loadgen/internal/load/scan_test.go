package load

import (
	"encoding/json"
	"testing"
	"time"
)

// eventLine is a broadcast event as the edge encodes it
// (protocol.EncodeEvent), with a "seq" inside the payload and metadata.
const eventLine = `{"op":"event","room":"project:lg-x","seq":1207,"event":{"id":"01M8B99NJ36E69F4YTKRXZHPMK","type":"task_updated",` +
	`"timestamp":"2026-11-26T06:39:42.659590394Z","priority":"normal","metadata":{"lgseq":"12","seq":"99"},` +
	`"data":{"task":{"title":"a \"seq\":5 title with \\ and } and ]"},"fields":["title"],"seq":77}}}`

func TestScanLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Line
	}{
		{"event", eventLine, Line{Op: OpEvent, Room: []byte("project:lg-x"), Seq: 1207, Type: []byte("task_updated"),
			TS: ts("2026-11-26T06:39:42.659590394Z")}},
		{"event, fields in another order, seq in the payload first",
			`{"event":{"data":{"seq":1,"room":"x"},"requiredPermission":"logs:read","timestamp":"2026-01-02T03:04:05Z","type":"task_progress"},"seq":9,"room":"user:u-1","op":"event"}`,
			Line{Op: OpEvent, Room: []byte("user:u-1"), Seq: 9, Type: []byte("task_progress"), Permission: []byte("logs:read"),
				TS: ts("2026-01-02T03:04:05Z")}},
		{"reset", `{"op":"reset","room":"project:p1","seq":40,"reason":"history_gone"}`,
			Line{Op: OpReset, Room: []byte("project:p1"), Seq: 40}},
		{"reply ok", `{"op":"reply","id":1,"ok":true,"seq":1206}`, Line{Op: OpReply, ID: 1, OK: true, Seq: 1206}},
		{"reply error with escapes", `{"op":"reply","id":2,"ok":false,"error":{"code":"forbidden","message":"no \"tasks:read\" for project:p1"}}`,
			Line{Op: OpReply, ID: 2, ErrCode: []byte("forbidden"), ErrMsg: []byte(`no \"tasks:read\" for project:p1`)}},
		{"welcome", `{"op":"welcome","session":"s\u00e9","node":"n1","user":"u","expiresAt":"2026-11-26T07:00:00Z","extra":[1,{"seq":2}]}`,
			Line{Op: OpWelcome}},
		{"unknown op", `{"op":"expiring","in":60}`, Line{}},
		{"pong", ` {"op":"pong","id":3} `, Line{ID: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Line
			if err := ScanLine([]byte(tt.line), &got); err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if string(g) != string(w) {
				t.Fatalf("got  %s\nwant %s", g, w)
			}
			var v any // every test line is valid JSON
			if err := json.Unmarshal([]byte(tt.line), &v); err != nil {
				t.Fatalf("bad test line: %v", err)
			}
		})
	}
}

func TestScanLineMalformed(t *testing.T) {
	for _, line := range []string{
		``, `not json`, `{`, `{"op":"event"`, `{"op":"event",}`, `{"op":event}`, `{"seq":-1}`, `{"seq":"1"}`,
		`{"seq":18446744073709551616}`, `{"op":"event"} trailing`, `{"event":{"type":"x"}`, `{"a":"unterminated}`,
		`{"a":[1,2}`, `[1]`, `{"a":}`, "{\"a\":\"ctl\x01\"}",
	} {
		var l Line
		if err := ScanLine([]byte(line), &l); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	for _, s := range []string{
		"2026-11-26T06:39:42.659590394Z", "2026-11-26T06:39:42Z", "2026-11-26T06:39:42.5Z", "2024-02-29T23:59:59.000000001Z",
		"1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z", "2000-03-01T00:00:00Z", "2100-12-31T12:00:00+02:00",
		"2026-06-01T10:00:00.123-07:30", "0001-01-01T00:00:00Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseTimestamp([]byte(s))
		if !ok || got != want.UnixNano() && s != "0001-01-01T00:00:00Z" {
			t.Errorf("%s: got %d %v, want %d", s, got, ok, want.UnixNano())
		}
	}
	// Every format the edge can write: RFC3339Nano of UTC times.
	for ns := int64(0); ns < 2e9; ns += 123456789 {
		tm := time.Date(2026, 11, 26, 6, 39, 42, 0, time.UTC).Add(time.Duration(ns) * 7919)
		got, ok := parseTimestamp([]byte(tm.Format(time.RFC3339Nano)))
		if !ok || got != tm.UnixNano() {
			t.Errorf("%s: got %d %v, want %d", tm.Format(time.RFC3339Nano), got, ok, tm.UnixNano())
		}
	}
	for _, s := range []string{"", "2026-11-26", "2026-11-26T06:39:42", "2026-11-26T06:39:42.Z", "2026-13-26T06:39:42Z",
		"2026-11-26 06:39:42Z", "2026-11-26T06:39:42+0200", "2026-11-26T06:39:4xZ", "2026-11-26T06:39:42ZZ"} {
		if _, ok := parseTimestamp([]byte(s)); ok {
			t.Errorf("%q: accepted", s)
		}
	}
}

func TestScanLineAllocs(t *testing.T) {
	line := []byte(eventLine)
	var l Line
	allocs := testing.AllocsPerRun(100, func() {
		_ = ScanLine(line, &l)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per line, want 0", allocs)
	}
}

func BenchmarkScanEventLine(b *testing.B) {
	line := []byte(eventLine)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	var l Line
	for b.Loop() {
		if err := ScanLine(line, &l); err != nil {
			b.Fatal(err)
		}
		if l.TS == 0 {
			b.Fatal("timestamp")
		}
	}
}

// BenchmarkScanBinaryEvent is BenchmarkScanEventLine for the same event
// in the protobuf mode.
func BenchmarkScanBinaryEvent(b *testing.B) {
	msg, _, err := nextBinary(scanCases(b)[0].binary)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	var l Line
	for b.Loop() {
		if err := ScanBinary(msg, &l); err != nil {
			b.Fatal(err)
		}
		if l.TS == 0 {
			b.Fatal("timestamp")
		}
	}
}

func FuzzScanLine(f *testing.F) {
	f.Add([]byte(eventLine))
	f.Add([]byte(`{"op":"reply","id":1,"ok":true,"seq":1206}`))
	f.Add([]byte(`{"a":[{"b":"}\"]"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Line
		if ScanLine(b, &l) == nil && !json.Valid(b) {
			// The scanner is lenient only about what it skips (numbers
			// and literals are not validated); it must never accept an
			// unterminated structure.
			var depth int
			for _, c := range b {
				if c == '{' {
					depth++
				}
			}
			if depth == 0 {
				t.Fatalf("accepted %q without an object", b)
			}
		}
	})
}

// ts is an RFC 3339 time as Unix nanoseconds.
func ts(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}
