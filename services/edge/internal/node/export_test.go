package node

import "time"

// SetAdminIdleTimeout sets adminIdleTimeout for a test, which must not run
// in parallel with others that start nodes; it returns the restore.
func SetAdminIdleTimeout(d time.Duration) (restore func()) {
	old := adminIdleTimeout
	adminIdleTimeout = d
	return func() { adminIdleTimeout = old }
}
