//go:build !unix

package jobrun

import "os/exec"

// setProcessGroup: without process groups, cancellation kills the process
// only (exec.CommandContext's default).
func setProcessGroup(*exec.Cmd) {}
