package edgetest

import (
	"testing"

	"github.com/eventedge/eventedge/services/internal/netproxy"
)

// Proxy is a TCP proxy on a random loopback port (see netproxy): Cut drops
// every connection through it, Kill also stops accepting, like a process
// killed with -9.
type Proxy = netproxy.Proxy

// StartProxy starts a proxy to target; it is killed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy { return netproxy.Start(t, target) }
