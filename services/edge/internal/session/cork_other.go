//go:build !unix

package session

// canTryWrite: without the non-blocking write (cork_unix.go), every frame
// is written by a writer goroutine.
const canTryWrite = false

func (w *rawWriter) tryFD(uintptr) bool { panic("session: no non-blocking write on this system") }
