// Package room names the rooms clients subscribe to and maps them to NATS
// subjects.
//
// A room is user:<id>, project:<id> or global. Ids match ^[A-Za-z0-9_-]{1,64}$,
// so no room name that passes Parse can carry a NATS token separator (.) or
// wildcard (*, >) into a subject: every subject eventedge builds from client or
// publisher input goes through this package.
//
// Subjects: events are stored on evt.<kind>[.<id>] in the EVENTS stream and
// re-published by the stream to live.<kind>[.<id>], which edge nodes read.
package room

import (
	"fmt"
	"strings"
)

// Kind is the type of a room.
type Kind uint8

// The room kinds.
const (
	KindUser Kind = iota + 1
	KindProject
	KindGlobal
)

// String returns the kind's name as it appears in room names and subjects.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindProject:
		return "project"
	case KindGlobal:
		return "global"
	}
	return "unknown"
}

// Subject prefixes. StoredPrefix subjects are captured by the EVENTS stream;
// LivePrefix subjects carry the stream's RePublish of every stored event.
const (
	StoredPrefix = "evt"
	LivePrefix   = "live"
)

// MaxIDLen is the longest id a user or project room may have.
const MaxIDLen = 64

// Room is a parsed, valid room. The zero value is not a valid room.
type Room struct {
	Kind Kind
	// ID is empty for the global room.
	ID string
}

// Global is the one global room.
var Global = Room{Kind: KindGlobal}

// User returns the room of user id. It does not validate id; use Parse or
// ValidID for input.
func User(id string) Room { return Room{Kind: KindUser, ID: id} }

// Project returns the room of project id. It does not validate id.
func Project(id string) Room { return Room{Kind: KindProject, ID: id} }

// ValidID reports whether id may name a user or project room:
// 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Parse parses a room name such as "project:p1". The error says what is
// wrong with the name; it is safe to show to the client that sent it.
func Parse(name string) (Room, error) {
	if name == "global" {
		return Global, nil
	}
	kind, id, ok := strings.Cut(name, ":")
	if !ok {
		return Room{}, fmt.Errorf("room %q: want user:<id>, project:<id> or global", clip(name))
	}
	var r Room
	switch kind {
	case "user":
		r = User(id)
	case "project":
		r = Project(id)
	default:
		return Room{}, fmt.Errorf("room %q: unknown room type %q (want user, project or global)", clip(name), clip(kind))
	}
	if !ValidID(id) {
		return Room{}, fmt.Errorf("room %q: id must be 1-%d characters of A-Z a-z 0-9 _ -", clip(name), MaxIDLen)
	}
	return r, nil
}

// String returns the room's name: user:<id>, project:<id> or global.
func (r Room) String() string {
	if r.Kind == KindGlobal {
		return "global"
	}
	return r.Kind.String() + ":" + r.ID
}

// Valid reports whether r is a room that Parse could have returned.
func (r Room) Valid() bool {
	switch r.Kind {
	case KindGlobal:
		return r.ID == ""
	case KindUser, KindProject:
		return ValidID(r.ID)
	}
	return false
}

// Subject returns the subject events of r are published and stored on.
func (r Room) Subject() string { return r.subject(StoredPrefix) }

// LiveSubject returns the subject the EVENTS stream re-publishes r's events
// to, which edge nodes subscribe to.
func (r Room) LiveSubject() string { return r.subject(LivePrefix) }

func (r Room) subject(prefix string) string {
	if r.Kind == KindGlobal {
		return prefix + ".global"
	}
	return prefix + "." + r.Kind.String() + "." + r.ID
}

// FromSubject returns the room of a stored (evt.…) or live (live.…) subject.
func FromSubject(subject string) (Room, error) {
	rest, ok := strings.CutPrefix(subject, StoredPrefix+".")
	if !ok {
		rest, ok = strings.CutPrefix(subject, LivePrefix+".")
	}
	if !ok {
		return Room{}, fmt.Errorf("subject %q: not an event subject", clip(subject))
	}
	if rest == "global" {
		return Global, nil
	}
	kind, id, _ := strings.Cut(rest, ".")
	r, err := Parse(kind + ":" + id)
	if err != nil {
		return Room{}, fmt.Errorf("subject %q: %w", clip(subject), err)
	}
	return r, nil
}

// clip bounds the input echoed back in errors, so an error message cannot be
// used to amplify a huge or hostile input.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
