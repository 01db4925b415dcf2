package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/services/edge/client"
)

// TestRevocationThroughLeaderFailover: the REVOCATIONS stream has three
// replicas like EVENTS. The NATS node leading it is killed (-9), and a
// revocation published right after is stored by the new leader and
// applied by every edge: the revoked user's old connections are closed
// with 4003 and the old token is refused on each edge. With the killed
// node back, an edge restarted afterwards knows the revocation from the
// stream before it takes clients; a token minted after the revocation is
// let in everywhere.
func TestRevocationThroughLeaderFailover(t *testing.T) {
	nodes := startCluster(t, 3)
	edges := startEdges(t, nodes, 2)
	urls := make([]string, len(nodes))
	for i, nd := range nodes {
		urls[i] = "nats://" + nd.client
	}
	js := connectJS(t, strings.Join(urls, ","))
	leader := streamLeader(t, js, revoke.StreamName) // the edges made it, at three replicas

	old := token(t, "u1", []string{"p1"})
	held := make([]*client.Conn, len(edges))
	for i, e := range edges {
		held[i] = dial(t, e.URL(), old)
	}
	time.Sleep(1100 * time.Millisecond) // the old token's iat is a second before the revocation

	for _, nd := range nodes {
		if nd.name == leader {
			nd.proc.Kill()
		}
	}
	// Published until the new leader acknowledges it: during the election a
	// publish may find no leader.
	waitFor(t, 60*time.Second, "the revocation stored after the leader's death", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := revoke.Publish(ctx, js, revoke.Message{UserID: "u1"})
		return err == nil
	})
	// The edges' consumers may have lived on the killed node: each is
	// recreated after missed heartbeats (10 s), its attempts taking up to
	// 10 s each while the cluster elects leaders.
	for i, c := range held {
		select {
		case <-c.Done():
		case <-time.After(90 * time.Second):
			t.Fatalf("%s: the old token's connection is still open; its output:\n%s", edges[i].name, edges[i].proc.Output())
		}
		if code := client.CloseCode(c.Err()); code != 4003 {
			t.Fatalf("%s: old connection closed with %v, want 4003", edges[i].name, c.Err())
		}
		wantRevoked(t, edges[i].URL(), old)
	}

	for _, nd := range nodes {
		if nd.name == leader {
			nd.proc.Restart()
			nd.waitHealthy(t)
		}
	}
	waitReplicaCurrent(t, js, revoke.StreamName, leader)
	if err := edges[0].proc.Stop(); err != nil {
		t.Fatalf("stop %s: %v", edges[0].name, err)
	}
	edges[0].proc.Restart() // returns once /readyz answers 200
	wantRevoked(t, edges[0].URL(), old)

	time.Sleep(1100 * time.Millisecond) // a new token, from a later second than the revocation
	fresh := token(t, "u1", []string{"p1"})
	for _, e := range edges {
		c := dial(t, e.URL(), fresh)
		if err := c.Subscribe(context.Background(), "project:p1"); err != nil {
			t.Fatalf("%s: a token minted after the revocation: %v", e.name, err)
		}
	}
}

// dial connects and authenticates with tok; the connection is closed when
// the test ends.
func dial(t *testing.T, url, tok string) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Token: tok})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantRevoked checks that url refuses tok with 4003.
func wantRevoked(t *testing.T, url, tok string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{Token: tok})
	if err == nil {
		c.Close()
		t.Fatalf("%s: the revoked token was let in", url)
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != 4003 {
		t.Fatalf("%s: revoked token refused with %v, want 4003", url, err)
	}
}
