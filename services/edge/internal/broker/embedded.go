package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures an embedded NATS server.
type EmbeddedOptions struct {
	// Host to listen on. Default 127.0.0.1.
	Host string
	// Port to listen on; -1 picks a free port. Default (0) 4222.
	Port int
	// StoreDir holds JetStream's files. Required.
	StoreDir string
	// Name is the server name. Default "eventedge-embedded".
	Name string
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it accepts connections. Stop it with Shutdown and
// WaitForShutdown.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir is required")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = 4222
	}
	if o.Name == "" {
		o.Name = "eventedge-embedded"
	}
	// The server runs with NoLog, and its own failures would surface only
	// as "not ready": find the usual two causes first and name them.
	if err := checkWritable(o.StoreDir); err != nil {
		return nil, err
	}
	if o.Port > 0 {
		addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: cannot listen on %s: %w", addr, err)
		}
		ln.Close()
	}
	ns, err := server.NewServer(&server.Options{
		ServerName:             o.Name,
		Host:                   o.Host,
		Port:                   o.Port,
		JetStream:              true,
		StoreDir:               o.StoreDir,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready on %s:%d within 10s", o.Host, o.Port)
	}
	return ns, nil
}

// checkWritable creates dir when missing and checks that a file can be
// written in it (a read-only root filesystem, or a volume owned by another
// user, fails here with the reason).
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("embedded nats: store dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("embedded nats: store dir %s is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
