// Package revocation keeps the access revocations an edge node has been
// told about on NATS (subject ctl.revoke), so that a client cannot get back
// what was taken from it by subscribing again with the same token.
//
// A revocation applies to the tokens issued before it: a token minted
// afterwards (whose claims the issuer has already updated) is unaffected.
// Revocations are kept for TTL (default 24h, longer than tokens live) and
// only in memory: a node started after a revocation does not know it, so
// keep tokens short-lived.
package revocation

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

// Subject is the NATS subject revocations are published on.
const Subject = "ctl.revoke"

// Message is a revocation as published on Subject:
// {"userId":"u1","rooms":["project:p1"]}; without rooms every connection
// of the user is closed (4003).
type Message struct {
	UserID string   `json:"userId"`
	Rooms  []string `json:"rooms,omitempty"`
}

// MaxRooms bounds the rooms of one revocation message.
const MaxRooms = 256

// Parse decodes and validates a revocation message.
func Parse(data []byte) (Message, []room.Room, error) {
	var m Message
	if len(data) > 64<<10 {
		return m, nil, errors.New("revocation: message larger than 64 KiB")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, nil, fmt.Errorf("revocation: %w", err)
	}
	if !room.ValidID(m.UserID) {
		return m, nil, fmt.Errorf("revocation: userId %q: want 1-64 characters of A-Z a-z 0-9 _ -", m.UserID)
	}
	if len(m.Rooms) > MaxRooms {
		return m, nil, fmt.Errorf("revocation: %d rooms, at most %d", len(m.Rooms), MaxRooms)
	}
	rooms := make([]room.Room, 0, len(m.Rooms))
	for _, name := range m.Rooms {
		r, err := room.Parse(name)
		if err != nil {
			return m, nil, fmt.Errorf("revocation: %w", err)
		}
		rooms = append(rooms, r)
	}
	return m, rooms, nil
}

// List holds recent revocations. Safe for concurrent use.
type List struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	users map[string]time.Time            // user-wide revocations: when
	rooms map[string]map[string]time.Time // user → room → when
}

// New returns an empty List keeping revocations for ttl (default 24h).
func New(ttl time.Duration) *List {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &List{ttl: ttl, now: time.Now, users: map[string]time.Time{}, rooms: map[string]map[string]time.Time{}}
}

// Add records a revocation of rooms (none: everything) for user, now.
func (l *List) Add(user string, rooms []room.Room) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	if len(rooms) == 0 {
		l.users[user] = now
		return
	}
	m := l.rooms[user]
	if m == nil {
		m = map[string]time.Time{}
		l.rooms[user] = m
	}
	for _, r := range rooms {
		m[r.String()] = now
	}
}

// User reports whether a token of user issued at issuedAt was revoked as a
// whole. A token without iat (zero issuedAt) counts as issued before.
func (l *List) User(user string, issuedAt time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.users[user]
	return ok && before(issuedAt, at)
}

// before reports whether a token issued at iat predates a revocation at
// at. iat has whole seconds, so a token minted in the second of the
// revocation (the issuer's fresh token) is not revoked.
func before(iat, at time.Time) bool { return iat.Before(at.Truncate(time.Second)) }

// Room reports whether r was revoked for a token of user issued at issuedAt
// (or the user's access as a whole).
func (l *List) Room(user string, r room.Room, issuedAt time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.users[user]; ok && before(issuedAt, at) {
		return true
	}
	at, ok := l.rooms[user][r.String()]
	return ok && before(issuedAt, at)
}

func (l *List) prune(now time.Time) {
	for u, at := range l.users {
		if now.Sub(at) > l.ttl {
			delete(l.users, u)
		}
	}
	for u, m := range l.rooms {
		for r, at := range m {
			if now.Sub(at) > l.ttl {
				delete(m, r)
			}
		}
		if len(m) == 0 {
			delete(l.rooms, u)
		}
	}
}
