package broker_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventedge/eventedge/services/edge/internal/broker"
)

// TestStartEmbeddedNamesTheCause: a store that cannot be written and a port
// that is taken are reported as such, not as a server that never became
// ready.
func TestStartEmbeddedNamesTheCause(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := broker.StartEmbedded(broker.EmbeddedOptions{Port: -1, StoreDir: filepath.Join(file, "store")})
	if err == nil || !strings.Contains(err.Error(), "store dir") {
		t.Errorf("store under a file: %v, want an error about the store dir", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = broker.StartEmbedded(broker.EmbeddedOptions{Port: port, StoreDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cannot listen on 127.0.0.1:") {
		t.Errorf("port in use: %v, want cannot listen", err)
	}

	ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Port: -1, StoreDir: filepath.Join(t.TempDir(), "new")})
	if err != nil {
		t.Fatalf("a store dir to create: %v", err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
}
