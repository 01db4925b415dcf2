package load

import (
	"errors"
	"time"
)

// The lean receive path reads thousands of server messages per second per
// core, so it does not decode them with encoding/json: scanLine walks one
// message's bytes once, without allocating, and picks out what the
// measurement needs. It walks the JSON structure (strings with escapes,
// nested objects and arrays are skipped as whole values), so a field is
// taken only at the level it belongs to, whatever the order of the fields:
// a "seq" inside an event's payload or metadata is never the message's seq.

// Op is the kind of a server message, as the lean path tells them apart.
type Op uint8

// The ops the lean path acts on; every other op is OpOther (pong,
// expiring, unsubscribed, …) and is ignored.
const (
	OpOther Op = iota
	OpEvent
	OpReset
	OpReply
	OpWelcome
)

// Line is what scanLine found in one server message. The byte slices
// point into the scanned line: valid until the line's buffer is reused.
type Line struct {
	Op   Op
	Room []byte // raw string content of "room" (room names need no escapes)
	Seq  uint64 // "seq"
	// ID and OK are a reply's "id" and "ok"; ErrCode and ErrMessage its
	// "error" object's "code" and "message" (raw string contents).
	ID              uint64
	OK              bool
	ErrCode, ErrMsg []byte
	// The event's "type" and "requiredPermission" (raw string contents;
	// a missing one is empty).
	Type, Permission []byte
	// TS is the event's "timestamp" as Unix nanoseconds; 0 when missing
	// or unparsable.
	TS int64
}

// errMalformed is a line that is not one JSON object as the protocol
// defines it.
var errMalformed = errors.New("malformed server message")

// ScanLine scans one server message (a single JSON object) into l,
// without allocating. It is exported for the tests that compare it with
// the edge's real encoder output.
func ScanLine(line []byte, l *Line) error {
	*l = Line{}
	s := scanner{b: line}
	s.ws()
	if !s.eat('{') {
		return errMalformed
	}
	err := s.object(func(key []byte) error {
		switch string(key) { // no allocation: the compiler compares in place
		case "op":
			v, err := s.str()
			if err != nil {
				return err
			}
			switch string(v) {
			case "event":
				l.Op = OpEvent
			case "reset":
				l.Op = OpReset
			case "reply":
				l.Op = OpReply
			case "welcome":
				l.Op = OpWelcome
			}
			return nil
		case "room":
			v, err := s.str()
			l.Room = v
			return err
		case "seq":
			v, err := s.uint()
			l.Seq = v
			return err
		case "id":
			v, err := s.uint()
			l.ID = v
			return err
		case "ok":
			v, err := s.boolean()
			l.OK = v
			return err
		case "error":
			if !s.eat('{') {
				return s.skip()
			}
			return s.object(func(k []byte) error {
				var err error
				switch string(k) {
				case "code":
					l.ErrCode, err = s.str()
				case "message":
					l.ErrMsg, err = s.str()
				default:
					err = s.skip()
				}
				return err
			})
		case "event":
			if !s.eat('{') {
				return s.skip()
			}
			return s.object(func(k []byte) error {
				var err error
				switch string(k) {
				case "type":
					l.Type, err = s.str()
				case "timestamp":
					var ts []byte
					if ts, err = s.str(); err == nil {
						l.TS, _ = parseTimestamp(ts)
					}
				case "requiredPermission":
					l.Permission, err = s.str()
				default:
					err = s.skip()
				}
				return err
			})
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errMalformed // trailing data
	}
	return nil
}

// scanner is a cursor over one JSON text.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// eat skips white space and c, and reports whether c was there.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object scans the members of an object whose '{' was eaten, calling
// member with each key (raw) with the cursor before its value; member
// must consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	if s.eat('}') {
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if !s.eat(':') {
			return errMalformed
		}
		if err := member(key); err != nil {
			return err
		}
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return errMalformed
	}
}

// str scans a string and returns its raw content (escapes not decoded).
func (s *scanner) str() ([]byte, error) {
	if !s.eat('"') {
		return nil, errMalformed
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, nil
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, errMalformed
		default:
			s.i++
		}
	}
	return nil, errMalformed
}

// uint scans a non-negative JSON integer.
func (s *scanner) uint() (uint64, error) {
	s.ws()
	start := s.i
	var v uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, errMalformed
		}
		v = v*10 + d
		s.i++
	}
	if s.i == start {
		return 0, errMalformed
	}
	return v, nil
}

func (s *scanner) boolean() (bool, error) {
	s.ws()
	switch {
	case hasPrefixAt(s.b, s.i, "true"):
		s.i += 4
		return true, nil
	case hasPrefixAt(s.b, s.i, "false"):
		s.i += 5
		return false, nil
	}
	return false, s.skip()
}

func hasPrefixAt(b []byte, i int, p string) bool {
	return len(b)-i >= len(p) && string(b[i:i+len(p)]) == p
}

// skip scans over one value of any kind.
func (s *scanner) skip() error {
	s.ws()
	if s.i >= len(s.b) {
		return errMalformed
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		// Count nesting; strings are scanned so their brackets do not count.
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return errMalformed
	default: // number, true, false, null
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				if s.i == start {
					return errMalformed
				}
				return nil
			}
			s.i++
		}
		if s.i == start {
			return errMalformed
		}
		return nil
	}
}

// parseTimestamp parses an RFC 3339 time as the edge writes event
// timestamps (time.RFC3339Nano: 2026-11-26T06:39:42.659590394Z, the
// fraction 0-9 digits, trailing zeros trimmed; Z or ±hh:mm) and returns
// it as Unix nanoseconds, without allocating.
func parseTimestamp(b []byte) (int64, bool) {
	// 2006-01-02T15:04:05 is 19 bytes.
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	hour, ok4 := num(11, 2)
	minute, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60 {
		return 0, false
	}
	i := 19
	var nanos int64
	if i < len(b) && b[i] == '.' {
		i++
		digits := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 9 {
				nanos = nanos*10 + int64(b[i]-'0')
				digits++
			}
			i++
		}
		if digits == 0 {
			return 0, false
		}
		for ; digits < 9; digits++ {
			nanos *= 10
		}
	}
	var offset int64
	switch {
	case i == len(b)-1 && (b[i] == 'Z' || b[i] == 'z'):
	case i == len(b)-6 && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, ok1 := num(i+1, 2)
		om, ok2 := num(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if b[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - offset
	return secs*int64(time.Second) + nanos, true
}

// daysFromCivil is the number of days from 1970-01-01 to y-m-d in the
// proleptic Gregorian calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
