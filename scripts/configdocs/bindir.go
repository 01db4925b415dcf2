package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
)

// binDir returns the directory the binaries are built into, and a function
// that releases it. It is a fixed directory per checkout in the user's
// cache, held under an exclusive lock: go build leaves a binary whose build
// ID shows it up to date alone, so a second run links nothing that has not
// changed. Where there is no user cache directory (or no file locking), a
// fresh temporary directory is used and removed.
func binDir(root string) (string, func(), error) {
	if cache, err := os.UserCacheDir(); err == nil {
		sum := sha256.Sum256([]byte(root))
		dir := filepath.Join(cache, "eventedge-configdocs", hex.EncodeToString(sum[:8]))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if unlock, ok := lockDir(dir); ok {
				return dir, unlock, nil
			}
		}
	}
	dir, err := os.MkdirTemp("", "configdocs-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
