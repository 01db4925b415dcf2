package proctest

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddrsOutsideEphemeralRange: the addresses are loopback, distinct
// across calls, free to listen on, and (where the host leaves room) outside
// the kernel's ephemeral range, so no outgoing connection takes them.
func TestFreeAddrsOutsideEphemeralRange(t *testing.T) {
	lo, hi := fixedPorts()
	t.Logf("fixed range %d-%d (0-0: the host's ephemeral range leaves no room; \"127.0.0.1:0\" is used)", lo, hi)
	addrs := append(FreeAddrs(t, 40), FreeAddr(t), FreeAddr(t))
	seen := map[string]bool{}
	for _, a := range addrs {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port == 0 {
			t.Fatalf("address %q, want 127.0.0.1 and a port", a)
		}
		if lo != 0 && (port < lo || port > hi) {
			t.Fatalf("port %d outside the fixed range %d-%d", port, lo, hi)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("listen on %s, handed out as free: %v", a, err)
		}
		ln.Close()
	}
}
