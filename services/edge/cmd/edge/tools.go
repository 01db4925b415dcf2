package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/edge/client"
)

// runPublish implements `edge publish`: it publishes one event given in its
// JSON form (protojson), filling id, timestamp and type when absent, and
// prints the stream sequence. For local use, tests and debugging.
func runPublish(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("edge publish", flag.ContinueOnError)
	natsURL := fs.String("nats-url", firstNonEmpty(getenv("NATS_URL"), "nats://127.0.0.1:4222"), "NATS server URL (env NATS_URL)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the stream's ack")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(`want one argument, the event as JSON, e.g. '{"room":"project:p1","taskDeleted":{"taskId":"t1"}}'`)
	}
	ev := &pb.Event{}
	if err := protojson.Unmarshal([]byte(fs.Arg(0)), ev); err != nil {
		return fmt.Errorf("event JSON: %w", err)
	}
	nc, err := nats.Connect(*natsURL, nats.Name("edge-publish"))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	ack, err := events.Publish(ctx, js, ev)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "published %s %s to %s: seq %d\n", ev.Type, ev.Id, ev.Room, ack.Sequence)
	return err
}

// roomList collects repeated --room flags.
type roomList []string

func (r *roomList) String() string     { return fmt.Sprint(*r) }
func (r *roomList) Set(v string) error { *r = append(*r, v); return nil }

// runListen implements `edge listen`: it connects like a dashboard,
// subscribes to rooms and prints every server message, one per line, until
// ctx ends or the connection closes.
func runListen(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("edge listen", flag.ContinueOnError)
	url := fs.String("url", "ws://localhost:8080/v1/ws", "edge WebSocket URL")
	token := fs.String("token", getenv("EDGE_TOKEN"), "JWT (env EDGE_TOKEN)")
	var rooms roomList
	fs.Var(&rooms, "room", "room to subscribe to (repeatable)")
	since := fs.Int64("since", -1, "replay each room's stored events after this seq first (0: all retained); -1: live only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("--token (or EDGE_TOKEN) is required; make one with `edge token`")
	}
	if len(rooms) == 0 {
		return errors.New("at least one --room is required")
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, *url, client.Options{Token: *token, ClientVersion: "edge-listen"})
	if err != nil {
		return err
	}
	defer c.Close()
	w := c.Welcome()
	fmt.Fprintf(out, "connected to node %s as %s (session %s)\n", w.Node, w.User, w.Session)
	var from *uint64
	if *since >= 0 {
		s := uint64(*since)
		from = &s
	}
	for _, r := range rooms {
		pos, err := c.SubscribeFrom(dctx, r, from)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", r, err)
		}
		fmt.Fprintf(out, "subscribed to %s after seq %d\n", r, pos)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-c.Messages():
			if !ok {
				return c.Err()
			}
			fmt.Fprintf(out, "%s\n", m.Raw)
		}
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
