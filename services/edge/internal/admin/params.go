package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// Limits of GET /v1/admin/connections.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Bounds of what a caller sends.
const (
	maxIDLen     = 64      // a session id or a cursor
	maxUserLen   = 256     // a user filter
	maxReason    = 123     // a close reason: RFC 6455 leaves 123 bytes for it
	maxCloseBody = 4 << 10 // a close request's body
)

// listParams are the query parameters of GET /v1/admin/connections.
type listParams struct {
	limit  int
	cursor string // list the sessions whose id sorts after it; "" from the first
	user   string // "" any
	room   string // canonical room name; "" any
}

// parseListParams validates the query of GET /v1/admin/connections: limit
// (1–MaxLimit, default DefaultLimit), cursor (the next of a previous page),
// user and room (a room name, e.g. project:p1). Unknown and repeated
// parameters are refused, so a typo does not silently list everything.
func parseListParams(q url.Values) (listParams, *Error) {
	p := listParams{limit: DefaultLimit}
	if err := known(q, "limit", "cursor", "user", "room"); err != nil {
		return p, err
	}
	if v, ok := single(q, "limit"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return p, errBadRequest(fmt.Sprintf("limit %q: want a whole number from 1 to %d", clip(v), MaxLimit))
		}
		p.limit = n
	}
	if v, ok := single(q, "cursor"); ok {
		if !validID(v) {
			return p, errBadRequest(fmt.Sprintf("cursor %q: not a cursor of this API (pass the next of a previous page)", clip(v)))
		}
		p.cursor = v
	}
	if v, ok := single(q, "user"); ok {
		if v == "" || len(v) > maxUserLen || !printable(v) {
			return p, errBadRequest(fmt.Sprintf("user %q: want a user id (the token's sub), 1-%d printable characters", clip(v), maxUserLen))
		}
		p.user = v
	}
	name, err := roomParam(q)
	if err != nil {
		return p, err
	}
	p.room = name
	return p, nil
}

// parseRoomsParams validates the query of GET /v1/admin/rooms: an
// optional room.
func parseRoomsParams(q url.Values) (string, *Error) {
	if err := known(q, "room"); err != nil {
		return "", err
	}
	return roomParam(q)
}

// roomParam returns the canonical name of the room parameter, "" when
// absent.
func roomParam(q url.Values) (string, *Error) {
	v, ok := single(q, "room")
	if !ok {
		return "", nil
	}
	r, err := room.Parse(v)
	if err != nil {
		return "", errBadRequest(fmt.Sprintf("room %q: %v", clip(v), err))
	}
	return r.String(), nil
}

// known refuses parameters other than names, and any given twice.
func known(q url.Values, names ...string) *Error {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first offender, always the same
	for _, k := range keys {
		if !slices.Contains(names, k) {
			return errBadRequest(fmt.Sprintf("unknown parameter %q; this endpoint takes %s", clip(k), strings.Join(names, ", ")))
		}
		if len(q[k]) > 1 {
			return errBadRequest(fmt.Sprintf("parameter %q given %d times; give it once", k, len(q[k])))
		}
	}
	return nil
}

func single(q url.Values, name string) (string, bool) {
	v, ok := q[name]
	if !ok {
		return "", false
	}
	return v[0], true
}

// validID reports whether s looks like a session id (the server's are 16
// characters of lowercase base32): at most maxIDLen of a-z and 0-9.
func validID(s string) bool {
	if s == "" || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// closeRequest is the body of POST /v1/admin/connections/{session}/close.
type closeRequest struct {
	// Code is 4003 (forbidden: the client should not reconnect with the
	// same token) or 1012 (service restart: it reconnects and resumes).
	// Default 1012.
	Code int `json:"code"`
	// Reason is sent in the close frame: at most 123 bytes of printable
	// UTF-8. Default "closed by an operator".
	Reason string `json:"reason"`
}

// Defaults of closeRequest.
const (
	defaultCloseCode   = int(protocol.CloseServiceRestart)
	defaultCloseReason = "closed by an operator"
)

// parseCloseRequest reads and validates a close request's body. An empty
// body takes the defaults; unknown fields are refused.
func parseCloseRequest(body io.Reader) (closeRequest, *Error) {
	req := closeRequest{}
	data, err := io.ReadAll(io.LimitReader(body, maxCloseBody+1))
	if err != nil {
		return req, errBadRequest("read the body: " + err.Error())
	}
	if len(data) > maxCloseBody {
		return req, errBadRequest(fmt.Sprintf("body larger than %d bytes", maxCloseBody))
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, errBadRequest(`body: want {"code":4003|1012,"reason":"…"}: ` + err.Error())
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return req, errBadRequest("body: one JSON object only")
		}
	}
	if req.Code == 0 {
		req.Code = defaultCloseCode
	}
	if req.Code != int(protocol.CloseForbidden) && req.Code != int(protocol.CloseServiceRestart) {
		return req, errBadRequest(fmt.Sprintf("code %d: want 4003 (forbidden, no reconnect) or 1012 (service restart, reconnect)", req.Code))
	}
	if req.Reason == "" {
		req.Reason = defaultCloseReason
	}
	if len(req.Reason) > maxReason {
		return req, errBadRequest(fmt.Sprintf("reason: %d bytes, at most %d (the close frame's room)", len(req.Reason), maxReason))
	}
	if !printable(req.Reason) {
		return req, errBadRequest("reason: printable UTF-8 only (no control characters)")
	}
	return req, nil
}

// closeReason is the close reason for req.
func (req closeRequest) closeReason() *protocol.CloseReason {
	if req.Code == int(protocol.CloseForbidden) {
		return protocol.Forbidden(req.Reason)
	}
	// Labelled as every 1012 is: clients and dashboards treat it as a
	// restart; the log line of the admin action says who and why.
	return &protocol.CloseReason{Code: protocol.CloseServiceRestart, Label: protocol.ReasonServiceRestart.Label, Text: req.Reason}
}
