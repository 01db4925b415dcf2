package server

import (
	"time"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/revocation"
	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Revoke applies a revocation made at at to every session of user on this
// node that it hits (revocation.Hits: the sessions that held their token
// when it was made, and later ones whose token predates it): the rooms are
// left, or without rooms the sessions are closed with 4003. A session
// opened with a token issued after the revocation, while the node did not
// know it yet, is left alone. It returns the number of sessions affected.
//
// The user's sessions come from the connection limiter's index (the
// sessions holding a slot of the user: authenticated, not yet ended), so a
// revocation costs the user's connections, not the node's. A session that
// took its slot but has not stored its token yet is not hit here: it
// checks the revocation list again once it has (session/auth.go).
func (s *Server) Revoke(user string, rooms []room.Room, at time.Time) int {
	var hit []*session.Session
	for _, sess := range s.lim.sessionsOf(user) {
		if c, acceptedAt := sess.Token(); c != nil && c.Subject == user && revocation.Hits(c.IssuedAt, acceptedAt, at) {
			hit = append(hit, sess)
		}
	}
	for _, sess := range hit {
		sess.Revoke(rooms)
	}
	return len(hit)
}
