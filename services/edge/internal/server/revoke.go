package server

import (
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// Revoke applies a revocation to every session of user on this node: the
// rooms are left, or without rooms the sessions are closed with 4003. It
// returns the number of sessions affected.
func (s *Server) Revoke(user string, rooms []room.Room) int {
	s.mu.Lock()
	var hit []*session.Session
	for sess := range s.sessions {
		if c := sess.Claims(); c != nil && c.Subject == user {
			hit = append(hit, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range hit {
		sess.Revoke(rooms)
	}
	return len(hit)
}
