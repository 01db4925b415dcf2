//go:build unix

package session

import "syscall"

// canTryWrite: this system has the non-blocking write that tryUncork uses.
const canTryWrite = true

// rawWrite is the Cork's one write to the socket that does not wait: the
// socket is in non-blocking mode (Go's network poller set it so), so a full
// send buffer gives EAGAIN, which counts as nothing written. It runs inside
// raw.Write with c.mu held, and returns true so that raw.Write does not wait
// for the socket either.
func (c *Cork) rawWrite(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), *c.buf)
		switch err {
		case syscall.EINTR:
			continue
		case nil:
			c.tried, c.triedErr = n, nil
		case syscall.EAGAIN:
			c.tried, c.triedErr = 0, nil
		default:
			c.tried, c.triedErr = 0, err
		}
		return true
	}
}
