package session

import (
	"fmt"

	"github.com/eventedge/eventedge/proto/room"
	"github.com/eventedge/eventedge/services/edge/internal/auth"
	"github.com/eventedge/eventedge/services/edge/internal/protocol"
)

// authenticate handles the first authentication (from the header or the
// first auth message) and later token refreshes.
func (s *Session) authenticate(id *uint64, token, deviceID, clientVersion string) {
	claims, err := s.env.Verifier.Verify(token)
	prev := s.Claims()
	if err != nil {
		reason := auth.ReasonOf(err)
		s.env.Metrics.AuthFailures.WithLabelValues(string(reason)).Inc()
		if prev == nil {
			s.Close(protocol.Unauthenticated(err.Error()))
			return
		}
		// A failed refresh leaves the current, still valid token in force.
		s.send(s.info.Mode.Error(id, protocol.CodeUnauthorized, err.Error()))
		return
	}
	if s.env.Revocations != nil && s.env.Revocations.User(claims.Subject, claims.IssuedAt) {
		s.env.Metrics.AuthFailures.WithLabelValues("revoked").Inc()
		s.Close(protocol.Forbidden("access revoked: get a new token"))
		return
	}
	if prev != nil && claims.Subject != prev.Subject {
		s.env.Metrics.AuthFailures.WithLabelValues(string(auth.ReasonSubjectDiffs)).Inc()
		s.send(s.info.Mode.Error(id, protocol.CodeUnauthorized, "token refresh: sub differs from the session's user"))
		return
	}
	// Per-user connection limit (slots.go; added with the server's
	// connection limits): the first authentication takes a slot, released
	// by Run's teardown.
	if prev == nil && s.env.Users != nil {
		if !s.env.Users.AcquireUser(claims.Subject, s) {
			s.Close(protocol.RateLimited("too many connections for this user"))
			return
		}
		s.userSlot = claims.Subject
	}
	s.setClaims(claims)
	// Checked again now that the token is the session's: a revocation
	// added to the list after the check above and applied (Server.Revoke)
	// before setClaims found the old token or none, and missed this one.
	if s.env.Revocations != nil && s.env.Revocations.User(claims.Subject, claims.IssuedAt) {
		s.env.Metrics.AuthFailures.WithLabelValues("revoked").Inc()
		s.Close(protocol.Forbidden("access revoked: get a new token"))
		return
	}
	if prev != nil {
		// Filtering follows the new claims from here on, before the reply
		// says they are in force (each subscription keeps the answer of the
		// claims it last asked: hub.Subscription.ClaimsChanged).
		s.subsMu.Lock()
		for _, st := range s.subs {
			st.sub.ClaimsChanged()
		}
		s.subsMu.Unlock()
		s.armExpiry(claims) // before the reply: the old token's notice cannot follow it (clock.go)
		s.send(s.info.Mode.Refreshed(id, claims.ExpiresAt))
		s.subsMu.Lock()
		s.recheckSubscriptions(claims)
		s.subsMu.Unlock()
		return
	}
	if s.authTimer != nil {
		s.authTimer.Stop()
		s.authTimer = nil // a long-lived connection keeps no spent timer
	}
	if deviceID != "" {
		s.deviceID.Store(&deviceID)
	}
	if clientVersion != "" {
		s.act.clientVersion.Store(&clientVersion)
	}
	s.send(s.info.Mode.Welcome(s.info.ID, s.env.Node, claims.Subject, claims.ExpiresAt))
	s.armExpiry(claims) // after the welcome, which a token's first notice must not precede
	// No "node" field: the node's logger carries it (a second one would be
	// a duplicate key in the JSON line).
	s.logEvent(s.env.Log.Info()).Str("device", deviceID).Str("client_version", clientVersion).
		Str("user_agent", s.info.UserAgent).Msg("connection authenticated")
}

// recheckSubscriptions leaves the rooms the refreshed claims no longer allow.
func (s *Session) recheckSubscriptions(c *auth.Claims) {
	for name, st := range s.subs {
		if err := s.mayJoin(c, st.sub.Room()); err != nil {
			s.leave(st)
			delete(s.subs, name)
			s.send(s.info.Mode.Unsubscribed(name, "forbidden"))
		}
	}
}

// mayJoin applies the built-in room rules and the room policy's extra
// permissions.
func (s *Session) mayJoin(c *auth.Claims, r room.Room) error {
	if err := c.CanJoin(r); err != nil {
		return err
	}
	for _, p := range s.env.Policy.For(r).Permissions {
		if !c.Has(p) {
			return fmt.Errorf("%w: %s needs permission %s", auth.ErrForbidden, r, p)
		}
	}
	return nil
}
