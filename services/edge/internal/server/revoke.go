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
func (s *Server) Revoke(user string, rooms []room.Room, at time.Time) int {
	s.mu.Lock()
	var hit []*session.Session
	for sess := range s.sessions {
		if c, acceptedAt := sess.Token(); c != nil && c.Subject == user && revocation.Hits(c.IssuedAt, acceptedAt, at) {
			hit = append(hit, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range hit {
		sess.Revoke(rooms)
	}
	return len(hit)
}
