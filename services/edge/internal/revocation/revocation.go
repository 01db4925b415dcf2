// Package revocation keeps the access revocations an edge node knows of,
// so that a client cannot get back what was taken from it by subscribing
// again with the same token, and follows them (Follower) from the
// REVOCATIONS stream (contract: proto/revoke).
//
// A revocation applies to the tokens issued before it was stored: a token
// minted afterwards (whose claims the issuer has already updated) is
// unaffected. Revocations are kept for TTL (default 24h, longer than
// tokens live), in the stream and in each node's List. A node reads the
// whole stream before it reports ready, and a node cut off from NATS reads
// what it missed when it reconnects.
package revocation

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventedge/eventedge/proto/room"
)

// List holds recent revocations. Safe for concurrent use.
type List struct {
	ttl time.Duration
	now func() time.Time

	loaded atomic.Bool // set by the Follower once it has read the stream's revocations

	mu        sync.Mutex
	users     map[string]time.Time            // user-wide revocations: when
	rooms     map[string]map[string]time.Time // user → room → when
	nextPrune time.Time                       // guarded by mu: the first Add from then on prunes
}

// maxPruneInterval is how often Add prunes at most: once per
// min(TTL, maxPruneInterval), so that reading n revocations (a node's
// start after a mass revocation) costs O(n), not O(n²) as a prune per Add
// did. A revocation past the TTL stays until the next prune (as it always
// stayed until the next Add); it changes nothing there: it applies only to
// tokens issued before it, which have expired by then when the TTL is at
// least the longest token lifetime, as --revocation-ttl must be.
const maxPruneInterval = time.Minute

// New returns an empty List keeping revocations for ttl (default 24h).
func New(ttl time.Duration) *List {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	return &List{ttl: ttl, now: time.Now, users: map[string]time.Time{}, rooms: map[string]map[string]time.Time{}}
}

// Add records a revocation of rooms (none: everything) for user, made at
// at (when the stream stored it). A user or room revoked again keeps the
// later time; a revocation older than the TTL is not kept.
func (l *List) Add(user string, rooms []room.Room, at time.Time) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !now.Before(l.nextPrune) {
		l.prune(now)
		l.nextPrune = now.Add(min(l.ttl, maxPruneInterval))
	}
	if now.Sub(at) > l.ttl {
		return
	}
	if len(rooms) == 0 {
		l.users[user] = later(l.users[user], at)
		return
	}
	m := l.rooms[user]
	if m == nil {
		m = map[string]time.Time{}
		l.rooms[user] = m
	}
	for _, r := range rooms {
		m[r.String()] = later(m[r.String()], at)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Loaded reports whether the list holds every stored revocation (the
// Follower has read the stream up to where it was when the node started).
// Until then the node lets no one authenticate: a revoked token would get
// in.
func (l *List) Loaded() bool { return l.loaded.Load() }

// setLoaded marks the list loaded (see Loaded); the Follower calls it.
func (l *List) setLoaded() { l.loaded.Store(true) }

// User reports whether a token of user issued at issuedAt was revoked as a
// whole. A token without iat (zero issuedAt) counts as issued before.
func (l *List) User(user string, issuedAt time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.users[user]
	return ok && Before(issuedAt, at)
}

// Before reports whether a token issued at iat predates a revocation made
// at at, which then applies to it. iat has whole seconds, so a token
// minted in the second of the revocation (the issuer's fresh token) is
// not revoked; a token without iat (zero) always is.
func Before(iat, at time.Time) bool { return iat.Before(at.Truncate(time.Second)) }

// Hits reports whether a revocation made at at applies to an open
// connection whose current token was issued at iat and accepted at
// acceptedAt: every connection that held its token when the revocation
// was made (accepted before at), as a revocation has always closed them,
// and one accepted later (while the node did not know the revocation yet:
// it was cut off from NATS) only when its token predates the revocation by
// Before's rule, the rule a new authentication goes by. So a connection
// made with the issuer's new token is spared, and one that is hit and
// reconnects, or subscribes to the revoked room again, with the same token
// is let in only if Before would let it in (a token from the revocation's
// second: the same-second grace of Before).
func Hits(iat, acceptedAt, at time.Time) bool { return acceptedAt.Before(at) || Before(iat, at) }

// Room reports whether r was revoked for a token of user issued at issuedAt
// (or the user's access as a whole).
func (l *List) Room(user string, r room.Room, issuedAt time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if at, ok := l.users[user]; ok && Before(issuedAt, at) {
		return true
	}
	at, ok := l.rooms[user][r.String()]
	return ok && Before(issuedAt, at)
}

// prune drops the revocations older than the TTL. l.mu held.
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
