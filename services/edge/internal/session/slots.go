package session

// UserSlots bounds the connections one user may hold on the node. A session
// takes a slot after its first successful authentication and, when it got
// one, returns it as it ends; when AcquireUser returns false the session
// closes with 4029 ("too many connections for this user"). The slot is
// taken for the session s, so an implementation can find a user's sessions
// (the server's revocations do). Implementations are safe for concurrent
// use. The server's connection limiter implements it.
type UserSlots interface {
	// AcquireUser takes a slot of user for s, or returns false when the
	// user holds as many connections as allowed.
	AcquireUser(user string, s *Session) bool
	// ReleaseUser returns the slot s took with AcquireUser.
	ReleaseUser(user string, s *Session)
}
