package server

import (
	"time"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Revoke applies a revocation made at at to every session of user on this
// node whose token's iat is before at: the rooms are left, or without
// rooms the sessions are closed with 4003. A session holding a token
// issued after the revocation (one read late, after a disconnection from
// NATS, when the user had reconnected with a new token) is left alone.
// Unlike revocation.Before, which new authentications go by, at is not
// cut to whole seconds here: a token minted in the second of the
// revocation but before it is hit, at the cost of also closing a fresh
// one minted in that second (its client reconnects, and is let in). It
// returns the number of sessions affected.
func (s *Server) Revoke(user string, rooms []room.Room, at time.Time) int {
	s.mu.Lock()
	var hit []*session.Session
	for sess := range s.sessions {
		if c := sess.Claims(); c != nil && c.Subject == user && c.IssuedAt.Before(at) {
			hit = append(hit, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range hit {
		sess.Revoke(rooms)
	}
	return len(hit)
}
