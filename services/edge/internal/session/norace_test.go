//go:build !race

package session

// raceEnabled: the race detector is on (race_test.go).
const raceEnabled = false
