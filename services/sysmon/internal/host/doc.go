// Package host reads the CPU and memory use of the machine sysmon runs on
// from Linux's /proc (stat and meminfo), with no dependency beyond the
// standard library.
//
// In a container /proc shows the host's numbers, not the container's
// cgroup limits; that is what sysmon reports ("the host's CPU and memory").
package host
