package server

import (
	"cmp"
	"slices"

	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// List returns the open sessions sorted by id (the admin API pages
// through them in that order). Safe for concurrent use.
func (s *Server) List() []*session.Session {
	s.mu.Lock()
	out := make([]*session.Session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *session.Session) int { return cmp.Compare(a.ID(), b.ID()) })
	return out
}

// Find returns the open session with id, nil when there is none. Safe for
// concurrent use.
func (s *Server) Find(id string) *session.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		if sess.ID() == id {
			return sess
		}
	}
	return nil
}
