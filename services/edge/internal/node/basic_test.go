package node_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/edge/internal/edgetest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSubscribeReceivesPublishedEvent(t *testing.T) {
	n := edgetest.StartNATS(t)
	_, js := n.Connect(t)
	e := edgetest.StartEdge(t, n, nil)
	c := edgetest.Dial(t, e, edgetest.Token(t, "u1", []string{"tasks:read"}, []string{"p1"}, time.Hour))
	if w := c.Welcome(); w.User != "u1" || w.Node != "edge-test" || w.Session == "" {
		t.Fatalf("welcome = %+v", w)
	}
	if err := c.Subscribe(ctxT(t), "project:p1"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	ev := events.TaskUpdated(room.Project("p1"), "u7", "t1", &pb.Task{Title: "new title"}, "title")
	ack := edgetest.Publish(t, js, ev)

	m := edgetest.NextEvent(t, c, 5*time.Second)
	if m.Room != "project:p1" || m.Seq != ack.Sequence || m.Event.ID != ev.Id || m.Event.Type != "task_updated" || m.Event.UserID != "u7" {
		t.Fatalf("event = %s", m.Raw)
	}
	var data struct {
		TaskID    string            `json:"taskId"`
		Changes   map[string]string `json:"changes"`
		UpdatedBy string            `json:"updatedBy"`
	}
	if err := json.Unmarshal(m.Event.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.TaskID != "t1" || data.Changes["title"] != "new title" || data.UpdatedBy != "u7" {
		t.Fatalf("data = %s", m.Event.Data)
	}
}
