//go:build !unix

package main

// lockDir cannot lock here: the caller builds into a temporary directory.
func lockDir(string) (func(), bool) { return nil, false }
