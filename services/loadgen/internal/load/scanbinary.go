package load

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf mode (subprotocol eventedge.v1.protobuf) has its own
// scanner, for the same reason as ScanLine: a lean client reads thousands
// of messages per second per core, and proto.Unmarshal into a
// ServerMessage allocates the message, its event and every string. So
// ScanBinary walks the wire format with protowire and takes what the
// measurement needs, pointing into the message, as ScanLine does for JSON.
//
// It follows proto.Unmarshal where the two could differ: a field of a
// known number but another wire type is skipped as an unknown field; a
// message field that appears twice is merged (its scalars: the last value
// wins); a oneof member replaces another. Like ScanLine it is lenient only
// about what it skips: the framing of every field it walks is checked,
// but not the inside of the messages it does not need (welcome, expiring,
// a reply's expiresAt, the event's payload and metadata), nor that strings
// are valid UTF-8. Whatever proto.Unmarshal accepts, it accepts and reads
// alike (FuzzScanBinary).

// Field numbers of proto/eventedge/v1/client.proto and event.proto that
// ScanBinary reads (TestScanBinaryFieldNumbers ties them to the generated
// code).
const (
	// ServerMessage's oneof op
	fieldWelcome      protowire.Number = 1
	fieldReply        protowire.Number = 2
	fieldEvent        protowire.Number = 3
	fieldReset        protowire.Number = 4
	fieldPong         protowire.Number = 5
	fieldUnsubscribed protowire.Number = 7

	// Reply, ReplyError
	fieldReplyID    protowire.Number = 1
	fieldReplyOK    protowire.Number = 2
	fieldReplyError protowire.Number = 3
	fieldReplySeq   protowire.Number = 5
	fieldErrCode    protowire.Number = 1
	fieldErrMessage protowire.Number = 2

	// EventMessage; Reset, Unsubscribed (room 1), Pong (id 1)
	fieldMsgRoom  protowire.Number = 1
	fieldMsgSeq   protowire.Number = 2
	fieldMsgEvent protowire.Number = 3
	fieldResetSeq protowire.Number = 3
	fieldPongID   protowire.Number = 1

	// Event, google.protobuf.Timestamp
	fieldEvType       protowire.Number = 2
	fieldEvTimestamp  protowire.Number = 3
	fieldEvPermission protowire.Number = 6
	fieldTSSeconds    protowire.Number = 1
	fieldTSNanos      protowire.Number = 2
)

// pbField is one field of a protobuf message: a varint's value, or a
// length-delimited field's bytes (pointing into the message).
type pbField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// nextField cuts the first field off msg.
func nextField(msg []byte) (pbField, []byte, error) {
	var f pbField
	num, typ, n := protowire.ConsumeTag(msg)
	if n < 0 {
		return f, nil, errMalformed
	}
	msg = msg[n:]
	f.num, f.typ = num, typ
	switch typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(msg)
	case protowire.BytesType:
		f.b, n = protowire.ConsumeBytes(msg)
	default:
		n = protowire.ConsumeFieldValue(num, typ, msg)
	}
	if n < 0 {
		return f, nil, errMalformed
	}
	return f, msg[n:], nil
}

// is reports whether f is field num with wire type typ.
func (f *pbField) is(num protowire.Number, typ protowire.Type) bool {
	return f.num == num && f.typ == typ
}

// binScan is the state of one ScanBinary call: the Line, the oneof member
// seen last, and the event's timestamp, which may come in merged parts.
type binScan struct {
	l          *Line
	op         protowire.Number
	sec, nanos int64
	hasTS      bool
}

// ScanBinary scans one protobuf ServerMessage (a message of a binary
// frame, without its length prefix) into l, as ScanLine does a JSON
// message, without allocating: the same Line for the same message, but
// that ErrMsg is the string's bytes (JSON: its raw content, escapes not
// decoded).
func ScanBinary(msg []byte, l *Line) error {
	*l = Line{}
	s := binScan{l: l}
	for len(msg) > 0 {
		f, rest, err := nextField(msg)
		if err != nil {
			return err
		}
		msg = rest
		if f.typ != protowire.BytesType || f.num < fieldWelcome || f.num > fieldUnsubscribed {
			continue // not an op: unknown, skipped
		}
		if f.num != s.op { // another oneof member replaces what came before
			*l = Line{}
			s = binScan{l: l, op: f.num}
		}
		switch f.num {
		case fieldWelcome: // its fields are not needed
			l.Op = OpWelcome
		case fieldReply:
			l.Op = OpReply
			err = s.reply(f.b)
		case fieldEvent:
			l.Op = OpEvent
			err = s.eventMessage(f.b)
		case fieldReset:
			l.Op = OpReset
			err = s.roomSeq(f.b, fieldResetSeq)
		case fieldPong:
			err = s.pong(f.b)
		case fieldUnsubscribed: // the JSON scanner keeps its room too
			err = s.roomSeq(f.b, 0)
		}
		// expiring (6): nothing the measurement needs
		if err != nil {
			return err
		}
	}
	if s.hasTS {
		l.TS = s.sec*1e9 + s.nanos
	}
	return nil
}

func (s *binScan) reply(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldReplyID, protowire.VarintType):
			s.l.ID = f.v
		case f.is(fieldReplyOK, protowire.VarintType):
			s.l.OK = f.v != 0
		case f.is(fieldReplySeq, protowire.VarintType):
			s.l.Seq = f.v
		case f.is(fieldReplyError, protowire.BytesType):
			if err := s.replyError(f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *binScan) replyError(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldErrCode, protowire.BytesType):
			s.l.ErrCode = f.b
		case f.is(fieldErrMessage, protowire.BytesType):
			s.l.ErrMsg = f.b
		}
	}
	return nil
}

// roomSeq scans a message whose field 1 is a room and, when seqField is
// not 0, that field its seq (Reset; Unsubscribed has none).
func (s *binScan) roomSeq(b []byte, seqField protowire.Number) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldMsgRoom, protowire.BytesType):
			s.l.Room = f.b
		case seqField != 0 && f.is(seqField, protowire.VarintType):
			s.l.Seq = f.v
		}
	}
	return nil
}

func (s *binScan) pong(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		if f.is(fieldPongID, protowire.VarintType) {
			s.l.ID = f.v
		}
	}
	return nil
}

func (s *binScan) eventMessage(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldMsgRoom, protowire.BytesType):
			s.l.Room = f.b
		case f.is(fieldMsgSeq, protowire.VarintType):
			s.l.Seq = f.v
		case f.is(fieldMsgEvent, protowire.BytesType):
			if err := s.event(f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

// event scans an eventedge.v1.Event: its type, timestamp and required
// permission. The payload and metadata are skipped (the delivery check
// and the latency need neither); their framing is still checked.
func (s *binScan) event(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldEvType, protowire.BytesType):
			s.l.Type = f.b
		case f.is(fieldEvPermission, protowire.BytesType):
			s.l.Permission = f.b
		case f.is(fieldEvTimestamp, protowire.BytesType):
			s.hasTS = true
			if err := s.timestamp(f.b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *binScan) timestamp(b []byte) error {
	for len(b) > 0 {
		f, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case f.is(fieldTSSeconds, protowire.VarintType):
			s.sec = int64(f.v)
		case f.is(fieldTSNanos, protowire.VarintType):
			s.nanos = int64(int32(f.v))
		}
	}
	return nil
}

// nextBinary cuts the first message off a binary frame: its length
// prefix, then that many bytes. A broken prefix is an error after which
// the rest of the frame cannot be read.
func nextBinary(frame []byte) (msg, rest []byte, err error) {
	n, w := protowire.ConsumeVarint(frame)
	if w < 0 || n > uint64(len(frame)-w) {
		return nil, nil, errMalformed
	}
	return frame[w : w+int(n)], frame[w+int(n):], nil
}
