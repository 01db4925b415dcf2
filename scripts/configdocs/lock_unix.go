//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir (a lock file in it), waiting for
// another configdocs that holds it, so two runs never write the same
// binary at once.
func lockDir(dir string) (unlock func(), ok bool) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true // closing the file releases the lock
}
