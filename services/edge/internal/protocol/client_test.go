package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func id(v uint64) *uint64 { return &v }

func TestDecode(t *testing.T) {
	sixteen := `"a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p"`
	cases := []struct {
		name string
		in   string
		want *ClientMessage // nil: an error is expected
		// For errors: the id the DecodeError must carry (nil: none) and a
		// substring of its reason.
		wantID  *uint64
		wantErr string
	}{
		{name: "auth", in: `{"op":"auth","token":"t.o.k","deviceId":"dev-1","clientVersion":"web/1.2.3"}`,
			want: &ClientMessage{Op: OpAuth, Token: "t.o.k", DeviceID: "dev-1", ClientVersion: "web/1.2.3"}},
		{name: "auth with id", in: `{"op":"auth","id":3,"token":"x"}`, want: &ClientMessage{Op: OpAuth, ID: id(3), Token: "x"}},
		{name: "subscribe", in: `{"op":"subscribe","id":1,"room":"project:p1","events":["task_created","task_updated"]}`,
			want: &ClientMessage{Op: OpSubscribe, ID: id(1), Room: "project:p1", Events: []string{"task_created", "task_updated"}}},
		{name: "subscribe id 0", in: `{"op":"subscribe","id":0,"room":"global"}`, want: &ClientMessage{Op: OpSubscribe, ID: id(0), Room: "global"}},
		{name: "subscribe max uint64 id", in: `{"op":"subscribe","id":18446744073709551615,"room":"global"}`,
			want: &ClientMessage{Op: OpSubscribe, ID: id(18446744073709551615), Room: "global"}},
		{name: "subscribe 16 events", in: `{"op":"subscribe","id":1,"room":"global","events":[` + sixteen + `]}`,
			want: &ClientMessage{Op: OpSubscribe, ID: id(1), Room: "global", Events: strings.Split(strings.ReplaceAll(sixteen, `"`, ""), ",")}},
		{name: "unsubscribe", in: `{"op":"unsubscribe","id":2,"room":"user:alice"}`, want: &ClientMessage{Op: OpUnsubscribe, ID: id(2), Room: "user:alice"}},
		{name: "ping", in: `{"op":"ping"}`, want: &ClientMessage{Op: OpPing}},
		{name: "ping with id", in: `{"op":"ping","id":9}`, want: &ClientMessage{Op: OpPing, ID: id(9)}},
		{name: "surrounding whitespace", in: " \t{\"op\":\"ping\"}\r\n ", want: &ClientMessage{Op: OpPing}},
		{name: "deviceId of 64 characters", in: `{"op":"auth","token":"x","deviceId":"` + strings.Repeat("d", 64) + `"}`,
			want: &ClientMessage{Op: OpAuth, Token: "x", DeviceID: strings.Repeat("d", 64)}},

		{name: "empty", in: ``, wantErr: "malformed message"},
		{name: "not an object", in: `[1,2]`, wantErr: "malformed message"},
		{name: "null", in: `null`, wantErr: "op is required"},
		{name: "empty object", in: `{}`, wantErr: "op is required"},
		{name: "unknown field", in: `{"op":"ping","bogus":1}`, wantErr: `unknown field "bogus"`},
		{name: "unknown field with id", in: `{"op":"subscribe","id":4,"room":"global","evnets":["x"]}`, wantID: id(4), wantErr: `unknown field "evnets"`},
		{name: "unknown op", in: `{"op":"nope"}`, wantErr: `unknown op "nope"`},
		{name: "unknown op with id", in: `{"op":"nope","id":7}`, wantID: id(7), wantErr: `unknown op "nope"`},
		{name: "unknown op is clipped", in: `{"op":"` + strings.Repeat("x", 500) + `"}`, wantErr: `unknown op "` + strings.Repeat("x", 40) + `…"`},
		{name: "op wrong case", in: `{"op":"PING"}`, wantErr: "unknown op"},
		{name: "truncated JSON", in: `{"op":"subscribe","id":7,"room":`, wantErr: "malformed message"},
		{name: "syntax error", in: `{"op":"ping",}`, wantErr: "invalid JSON at byte"},
		{name: "id is a string", in: `{"op":"subscribe","id":"1","room":"global"}`, wantErr: `field "id"`},
		{name: "id is negative", in: `{"op":"subscribe","id":-1,"room":"global"}`, wantErr: `field "id"`},
		{name: "id is fractional", in: `{"op":"subscribe","id":1.5,"room":"global"}`, wantErr: `field "id"`},
		{name: "id overflows uint64", in: `{"op":"subscribe","id":18446744073709551616,"room":"global"}`, wantErr: `field "id"`},
		{name: "op is a number", in: `{"op":1,"id":5}`, wantID: id(5), wantErr: `field "op"`},
		{name: "events is a string", in: `{"op":"subscribe","id":5,"room":"global","events":"task_created"}`, wantID: id(5), wantErr: `field "events"`},
		{name: "subscribe without id", in: `{"op":"subscribe","room":"global"}`, wantErr: "subscribe: id is required"},
		{name: "subscribe without room", in: `{"op":"subscribe","id":1}`, wantID: id(1), wantErr: "subscribe: room is required"},
		{name: "subscribe with empty room", in: `{"op":"subscribe","id":1,"room":""}`, wantID: id(1), wantErr: "subscribe: room is required"},
		{name: "subscribe 17 events", in: `{"op":"subscribe","id":1,"room":"global","events":[` + sixteen + `,"q"]}`, wantID: id(1), wantErr: "17 types, at most 16"},
		{name: "unsubscribe without id", in: `{"op":"unsubscribe","room":"global"}`, wantErr: "unsubscribe: id is required"},
		{name: "unsubscribe without room", in: `{"op":"unsubscribe","id":2}`, wantID: id(2), wantErr: "unsubscribe: room is required"},
		{name: "unsubscribe with events", in: `{"op":"unsubscribe","id":2,"room":"global","events":["task_created"]}`, wantID: id(2), wantErr: "only id and room are allowed"},
		{name: "auth without token", in: `{"op":"auth","id":1}`, wantID: id(1), wantErr: "auth: token is required"},
		{name: "deviceId of 65 characters", in: `{"op":"auth","token":"x","deviceId":"` + strings.Repeat("d", 65) + `"}`, wantErr: "deviceId must be"},
		{name: "deviceId with newline", in: `{"op":"auth","token":"x","deviceId":"a\nb"}`, wantErr: "deviceId must be"},
		{name: "deviceId with NUL", in: `{"op":"auth","token":"x","deviceId":"a\u0000b"}`, wantErr: "deviceId must be"},
		{name: "deviceId with DEL", in: `{"op":"auth","token":"x","deviceId":"a\u007fb"}`, wantErr: "deviceId must be"},
		{name: "deviceId non-ASCII", in: `{"op":"auth","token":"x","deviceId":"appareil-é"}`, wantErr: "deviceId must be"},
		{name: "clientVersion of 33 characters", in: `{"op":"auth","token":"x","clientVersion":"` + strings.Repeat("v", 33) + `"}`, wantErr: "clientVersion must be"},
		{name: "clientVersion with tab", in: `{"op":"auth","token":"x","clientVersion":"1\t2"}`, wantErr: "clientVersion must be"},
		{name: "two objects", in: `{"op":"ping","id":1} {"op":"ping"}`, wantID: id(1), wantErr: "trailing data"},
		{name: "trailing garbage", in: `{"op":"ping"}x`, wantErr: "trailing data"},
		{name: "trailing number", in: `{"op":"ping"}1`, wantErr: "trailing data"},
		{name: "trailing brace", in: `{"op":"ping"}}`, wantErr: "trailing data"},
		{name: "trailing vertical tab (not JSON whitespace)", in: "{\"op\":\"ping\"}\v", wantErr: "trailing data"},
		{name: "trailing bracket and more", in: `{"op":"ping"}]{"op":"nope"}`, wantErr: "trailing data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.in))
			if tc.want != nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(m, tc.want) {
					t.Errorf("Decode = %s, want %s", dump(m), dump(tc.want))
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode = %s, want an error containing %q", dump(m), tc.wantErr)
			}
			if m != nil {
				t.Errorf("Decode returned a message %s with error %v", dump(m), err)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if !strings.Contains(de.Reason, tc.wantErr) {
				t.Errorf("reason %q, want it to contain %q", de.Reason, tc.wantErr)
			}
			if de.Error() != de.Reason {
				t.Errorf("Error() = %q, want the reason %q", de.Error(), de.Reason)
			}
			switch {
			case tc.wantID == nil && de.ID != nil:
				t.Errorf("ID = %d, want none", *de.ID)
			case tc.wantID != nil && de.ID == nil:
				t.Errorf("ID = none, want %d", *tc.wantID)
			case tc.wantID != nil && *de.ID != *tc.wantID:
				t.Errorf("ID = %d, want %d", *de.ID, *tc.wantID)
			}
		})
	}
}

func dump(m *ClientMessage) string {
	if m == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestSplit(t *testing.T) {
	cases := []struct {
		name  string
		frame string
		stop  int // stop after this many messages; 0: never
		want  []string
	}{
		{name: "empty", frame: "", want: nil},
		{name: "one", frame: `{"op":"ping"}`, want: []string{`{"op":"ping"}`}},
		{name: "several", frame: "{\"a\":1}\n{\"b\":2}\n{\"c\":3}", want: []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		{name: "trailing newline", frame: "{\"a\":1}\n{\"b\":2}\n", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "blank lines", frame: "\n\n{\"a\":1}\n   \n\t\n{\"b\":2}\n\n", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "only newlines", frame: "\n\n\n", want: nil},
		{name: "CRLF", frame: "{\"a\":1}\r\n{\"b\":2}\r\n", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "surrounding spaces trimmed", frame: "  {\"a\":1}  \n", want: []string{`{"a":1}`}},
		{name: "only JSON whitespace trimmed", frame: "\v{\"a\":1}\f\n", want: []string{"\v{\"a\":1}\f"}},
		{name: "early stop", frame: "1\n2\n3\n4", stop: 2, want: []string{"1", "2"}},
		{name: "stop at first", frame: "1\n2", stop: 1, want: []string{"1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			Split([]byte(tc.frame), func(msg []byte) bool {
				got = append(got, string(msg))
				return tc.stop == 0 || len(got) < tc.stop
			})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Split(%q) = %q, want %q", tc.frame, got, tc.want)
			}
		})
	}
}

// TestSplitDecode is the server's read path: one frame, several messages,
// each decoded on its own.
func TestSplitDecode(t *testing.T) {
	frame := []byte("{\"op\":\"auth\",\"token\":\"t\"}\n{\"op\":\"subscribe\",\"id\":1,\"room\":\"global\"}\n\n{\"op\":\"ping\",\"id\":2}\n")
	var ops []string
	Split(frame, func(msg []byte) bool {
		m, err := Decode(msg)
		if err != nil {
			t.Errorf("Decode(%q): %v", msg, err)
			return false
		}
		ops = append(ops, m.Op)
		return true
	})
	if want := []string{OpAuth, OpSubscribe, OpPing}; !reflect.DeepEqual(ops, want) {
		t.Errorf("ops = %q, want %q", ops, want)
	}
}

// FuzzDecode checks that Decode never panics, that every error is a
// *DecodeError, and that a message it accepts follows the documented rules.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"op":"auth","token":"t.o.k","deviceId":"dev-1","clientVersion":"web/1.2.3"}`,
		`{"op":"subscribe","id":1,"room":"project:p1","events":["task_created"]}`,
		`{"op":"unsubscribe","id":2,"room":"user:alice"}`,
		`{"op":"ping","id":3}`,
		`{"op":"ping"}`,
		`{"op":"nope","id":7}`,
		`{"op":"subscribe","id":7,"room":`,
		`{"op":"subscribe","id":"1","room":"global"}`,
		`{"op":"ping"} {"op":"ping"}`,
		`{"op":"ping","ID":1,"Room":"x"}`,
		`{"op":"auth","token":"x","deviceId":"a\u0000"}`,
		`null`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %v (%T) is not a *DecodeError", err, err)
			}
			if m != nil {
				t.Fatalf("message and error both returned: %v", err)
			}
			if de.Reason == "" {
				t.Fatal("DecodeError with an empty reason")
			}
			return
		}
		if err := checkRules(m); err != nil {
			t.Fatalf("Decode(%q) accepted %s: %v", data, dump(m), err)
		}
		if !json.Valid(data) {
			t.Fatalf("Decode(%q) accepted input that is not one JSON value", data)
		}
	})
}

// checkRules restates the documented rules a decoded message obeys.
func checkRules(m *ClientMessage) error {
	switch m.Op {
	case OpAuth:
		if m.Token == "" {
			return errors.New("auth without token")
		}
		if len(m.DeviceID) > MaxDeviceIDLen || len(m.ClientVersion) > MaxClientVersionLen {
			return errors.New("auth field too long")
		}
		for _, s := range []string{m.DeviceID, m.ClientVersion} {
			for _, c := range []byte(s) {
				if c < 0x20 || c > 0x7e {
					return fmt.Errorf("auth field %q not printable ASCII", s)
				}
			}
		}
	case OpSubscribe, OpUnsubscribe:
		if m.ID == nil || m.Room == "" {
			return errors.New("subscribe/unsubscribe without id or room")
		}
		if len(m.Events) > MaxEventsFilter {
			return errors.New("too many events")
		}
		if m.Op == OpUnsubscribe && len(m.Events) > 0 {
			return errors.New("unsubscribe with events")
		}
	case OpPing:
	default:
		return fmt.Errorf("unknown op %q", m.Op)
	}
	return nil
}

// FuzzSplit checks that Split never panics and only yields non-empty
// messages without a newline, trimmed of JSON's whitespace (not of other
// Unicode spaces, which a message then keeps and its decoding refuses),
// whose total never exceeds the frame.
func FuzzSplit(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"))
	f.Add([]byte("\n\n \r\n"))
	f.Add([]byte("x"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		total := 0
		Split(frame, func(msg []byte) bool {
			if len(msg) == 0 {
				t.Fatal("empty message")
			}
			if bytes.IndexByte(msg, '\n') >= 0 {
				t.Fatalf("message %q holds a newline", msg)
			}
			if !bytes.Equal(msg, bytes.Trim(msg, " \t\r\n")) {
				t.Fatalf("message %q is not trimmed of JSON whitespace", msg)
			}
			total += len(msg)
			return true
		})
		if total > len(frame) {
			t.Fatalf("messages total %d bytes from a %d-byte frame", total, len(frame))
		}
	})
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	msg := []byte(`{"op":"subscribe","id":42,"room":"project:p1","events":["task_created","task_updated","task_progress"]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
