//go:build unix

package session

import "syscall"

// canTryWrite: this system has the non-blocking write that tryUncork uses.
const canTryWrite = true

// tryFD is the one write to the socket that does not wait: the socket is
// in non-blocking mode (Go's network poller set it so), so a full send
// buffer gives EAGAIN, which counts as nothing written. It runs inside
// RawConn.Write and returns true so that RawConn.Write does not wait for
// the socket either.
func (w *rawWriter) tryFD(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.p)
		switch err {
		case syscall.EINTR:
			continue
		case nil:
			w.n, w.err = n, nil
		case syscall.EAGAIN:
			w.n, w.err = 0, nil
		default:
			w.n, w.err = 0, err
		}
		return true
	}
}
