package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/client"
	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
	"github.com/eventedge/eventedge/services/edge/internal/node"
)

// TestThousandClientsReceiveBurstInOrder: 1,000 clients in one room each
// receive every event of a 100-event burst, in publish order.
func TestThousandClientsReceiveBurstInOrder(t *testing.T) {
	const clients, burst = 1000, 100
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	// One user holds every connection: allow it more than the default 100.
	e := edgetest.StartEdge(t, n, func(o *node.Options) { o.Server.MaxConnsPerUser = clients })
	tok := edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour)

	conns := make([]*client.Conn, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := client.Dial(ctx, e.URL, client.Options{Token: tok, MessageBuffer: burst})
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			if err := c.Subscribe(ctx, "project:p1"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatalf("client setup: %v", err)
	}

	ids := make([]string, burst)
	for i := range burst {
		// task_updated (normal priority): never coalesced or throttled.
		// Each publish has its own deadline: under -race on a loaded
		// machine the fan-out of the earlier events slows the acks.
		ev := events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: fmt.Sprint("v", i)}, "title")
		ids[i] = ev.Id
		edgetest.Publish(t, js, ev)
	}

	var recv sync.WaitGroup
	failures := make(chan string, clients)
	for ci, c := range conns {
		recv.Add(1)
		go func() {
			defer recv.Done()
			var lastSeq uint64
			for i := range burst {
				select {
				case m, ok := <-c.Messages():
					if !ok {
						failures <- fmt.Sprintf("client %d: closed after %d events: %v", ci, i, c.Err())
						return
					}
					if m.Event == nil || m.Event.ID != ids[i] || m.Seq <= lastSeq {
						failures <- fmt.Sprintf("client %d: event %d is %s", ci, i, m.Raw)
						return
					}
					lastSeq = m.Seq
				case <-time.After(60 * time.Second):
					failures <- fmt.Sprintf("client %d: got %d of %d events", ci, i, burst)
					return
				}
			}
		}()
	}
	recv.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
}

// TestJSONAndProtobufPublishersLookTheSame: an event published as protojson
// (Content-Type: application/json) reaches clients exactly as the same
// event published as protobuf.
func TestJSONAndProtobufPublishersLookTheSame(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read", "system:read"}, []string{"p1"}, time.Hour))
	for _, r := range []string{"project:p1", "global"} {
		if err := c.Subscribe(ctxT(t), r); err != nil {
			t.Fatal(err)
		}
	}
	samples := []*pb.Event{
		events.TaskCreated(room.Project("p1"), "u1", &pb.Task{Id: "t1", ProjectId: "p1", Title: "Write docs", Status: pb.TaskStatus_TASK_STATUS_TODO, Labels: []string{"docs"}}),
		events.TaskUpdated(room.Project("p1"), "u2", "t1", &pb.Task{Status: pb.TaskStatus_TASK_STATUS_RUNNING}, "status"),
		events.TaskDeleted(room.Project("p1"), "u1", "t1"),
		events.TaskProgress(room.Project("p1"), &pb.TaskProgress{TaskId: "t1", ExecutionId: "x1", Progress: 0.25, Stage: "build", Logs: []*pb.LogEntry{{Line: "ok", Stream: pb.LogStream_LOG_STREAM_STDOUT}}}),
		events.SystemStatus(&pb.SystemStatus{Status: pb.HealthStatus_HEALTH_STATUS_DEGRADED, Alerts: []*pb.Alert{{Id: "a1", Severity: pb.Severity_SEVERITY_WARNING, Message: "edge-2 silent"}}}),
	}
	for _, ev := range samples {
		ev.Metadata = map[string]string{"trace": "abc"}
		// Protobuf first…
		edgetest.Publish(t, js, ev)
		viaProto := edgetest.NextEvent(t, c, 5*time.Second)

		// …then the same event as JSON, under a new id so JetStream keeps it.
		jev := cloneWithID(t, ev, ev.Id+"-json")
		body, err := protojson.Marshal(jev)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := room.Parse(ev.Room)
		msg := &nats.Msg{Subject: r.Subject(), Data: body, Header: nats.Header{}}
		msg.Header.Set(events.HeaderContentType, events.ContentTypeJSON)
		msg.Header.Set(nats.MsgIdHdr, jev.Id)
		if _, err := js.PublishMsg(ctxT(t), msg); err != nil {
			t.Fatal(err)
		}
		viaJSON := edgetest.NextEvent(t, c, 5*time.Second)

		a, b := normalized(t, viaProto.Raw), normalized(t, viaJSON.Raw)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: protobuf and JSON publishes differ:\n%s\n%s", ev.Type, viaProto.Raw, viaJSON.Raw)
		}
	}
}

func cloneWithID(t *testing.T, ev *pb.Event, id string) *pb.Event {
	t.Helper()
	b, err := protojson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	out := &pb.Event{}
	if err := protojson.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	out.Id = id
	return out
}

// normalized decodes a client event message with the parts that must
// differ (id, seq) removed.
func normalized(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "seq")
	delete(m["event"].(map[string]any), "id")
	return m
}
