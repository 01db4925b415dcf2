package node_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
)

// TestNoTCPKeepAliveOnClientConnections: a client's connection, idle after
// auth, has no TCP keepalive timer in the kernel (the session's WebSocket
// pings find dead peers; keepalive would cost setsockopt calls on every
// accept and probes between pings). It reads the server side's socket
// from /proc/net/tcp: timer 2 is keepalive.
func TestNoTCPKeepAliveOnClientConnections(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp (not Linux): the kernel's timers cannot be read")
	}
	n := edgetest.StartNATS(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	defer c.Close()
	port := e.Node.Addr().(*net.TCPAddr).Port

	// The server side's socket, once what the edge wrote (the welcome) is
	// acknowledged: until then the kernel shows its retransmit timer
	// (tr 01) rather than the keepalive one.
	var sock []string
	edgetest.Eventually(t, 5*time.Second, func() bool {
		sock = serverSocket(t, port)
		return sock != nil && strings.HasPrefix(sock[4], "00000000:")
	}, "the edge's socket idle, its data acknowledged")
	if tr, _, _ := strings.Cut(sock[5], ":"); tr == "02" {
		t.Errorf("server-side socket %s ↔ %s has a keepalive timer (tr 02): TCP keepalive is on", sock[1], sock[2])
	}
}

// serverSocket returns the fields of the established socket whose local
// port is port in /proc/net/tcp (sl, local_address, rem_address, st,
// tx_queue:rx_queue, tr:tm->when, …), nil when there is none.
func serverSocket(t *testing.T, port int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 6 || f[3] != "01" { // ESTABLISHED
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); ok && err == nil && int(p) == port {
			return f
		}
	}
	return nil
}
