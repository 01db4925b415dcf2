package taskstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

	"github.com/eventedge/eventedge/services/internal/natstest"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

const wait = 5 * time.Second

type fixture struct {
	srv   *natstest.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	store *taskstore.Store
}

func setup(t *testing.T, opts taskstore.Options) *fixture {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	if opts.SweepMinAge == 0 {
		opts.SweepMinAge = -1
	}
	opts.MemoryStorage = true
	st, err := taskstore.Open(context.Background(), js, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, nc: nc, js: js, store: st}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestOpenIsIdempotent(t *testing.T) {
	f := setup(t, taskstore.Options{})
	for i := 0; i < 2; i++ {
		if _, err := taskstore.Open(ctx(t), f.js, taskstore.Options{}); err != nil {
			t.Fatalf("Open again: %v", err)
		}
	}
	kv, err := f.js.KeyValue(ctx(t), taskstore.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 {
		t.Errorf("history = %d, want 1", st.History())
	}
	if err := f.store.Check(ctx(t)); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := f.js.DeleteKeyValue(ctx(t), taskstore.DefaultBucket); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Check(ctx(t)); err == nil {
		t.Error("Check after the bucket was deleted: nil, want an error")
	}
}

func TestCreatePublishesTaskCreated(t *testing.T) {
	f := setup(t, taskstore.Options{})
	project := natstest.Events(t, f.nc, "live.project.p1")
	user := natstest.Events(t, f.nc, "live.user.u2")
	in := &pb.Task{Id: "t1", Title: "Write docs", Assignee: "u2", Labels: []string{"docs"}}
	got, err := f.store.Create(ctx(t), "p1", in, taskstore.Write{Actor: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if in.ProjectId != "" || in.Revision != 0 {
		t.Errorf("Create modified its argument: %v", in)
	}
	if got.Revision == 0 || got.ProjectId != "p1" || got.CreatedBy != "u1" || got.Status != pb.TaskStatus_TASK_STATUS_TODO || got.CreatedAt == nil {
		t.Errorf("created = %v", got)
	}
	for _, ch := range []<-chan *natstest.Received{project, user} {
		ev := natstest.Next(t, ch, wait)
		tc := ev.GetTaskCreated()
		if tc == nil || !proto.Equal(tc.Task, got) || tc.CreatedBy != "u1" || ev.UserId != "u1" {
			t.Errorf("event = %v\nwant task %v", ev, got)
		}
		if ev.Metadata["revision"] != strconv.FormatUint(got.Revision, 10) || ev.Metadata["source"] != "taskapi" {
			t.Errorf("metadata = %v, want revision %d and source taskapi", ev.Metadata, got.Revision)
		}
	}
	// The outbox clear keeps the revision: the ETag stays valid.
	again, err := f.store.Get(ctx(t), "p1", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again, got) {
		t.Errorf("Get = %v\nwant %v", again, got)
	}
	if _, err := f.store.Create(ctx(t), "p1", in, taskstore.Write{}); !errors.Is(err, taskstore.ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
	natstest.Quiet(t, project, 100*time.Millisecond)
}

func TestCreateGeneratesID(t *testing.T) {
	f := setup(t, taskstore.Options{})
	a, err := f.store.Create(ctx(t), "p1", &pb.Task{Title: "a"}, taskstore.Write{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.store.Create(ctx(t), "p1", &pb.Task{Title: "b"}, taskstore.Write{})
	if err != nil {
		t.Fatal(err)
	}
	if !taskstore.ValidID(a.Id) || a.Id >= b.Id {
		t.Errorf("ids %q, %q: want valid ids sorting by creation", a.Id, b.Id)
	}
}

func TestValidation(t *testing.T) {
	f := setup(t, taskstore.Options{})
	long := string(make([]byte, 201))
	for _, tc := range []struct {
		project string
		task    *pb.Task
		field   string
	}{
		{"p1", &pb.Task{}, "title"},
		{"p1", &pb.Task{Title: "  "}, "title"},
		{"p1", &pb.Task{Title: "a\x00b"}, "title"},
		{"p1", &pb.Task{Title: "x" + long}, "title"},
		{"p1", &pb.Task{Title: "t", Assignee: "a.b"}, "assignee"},
		{"p1", &pb.Task{Title: "t", Labels: []string{"a", "a"}}, "labels"},
		{"p1", &pb.Task{Title: "t", Labels: []string{""}}, "labels"},
		{"p1", &pb.Task{Title: "t", Status: 42}, "status"},
		{"p1", &pb.Task{Title: "t", Id: "bad id"}, "id"},
		{"p1", &pb.Task{Title: "t", ProjectId: "p2"}, "projectId"},
		{"p.1", &pb.Task{Title: "t"}, "projectId"},
	} {
		_, err := f.store.Create(ctx(t), tc.project, tc.task, taskstore.Write{})
		var fe *taskstore.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, taskstore.ErrInvalid) {
			t.Errorf("Create(%q, %v) = %v, want a FieldError on %s", tc.project, tc.task, err, tc.field)
		}
	}
}

func TestUpdatePublishesOnlyTheChanges(t *testing.T) {
	f := setup(t, taskstore.Options{})
	created, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "old", Assignee: "u2", Labels: []string{"x"}}, taskstore.Write{Actor: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	project := natstest.Events(t, f.nc, "live.project.p1")
	u3 := natstest.Events(t, f.nc, "live.user.u3")

	updated, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{Actor: "u9", IfRevision: created.Revision}, func(t *pb.Task) ([]string, error) {
		t.Title = "new"
		t.Assignee = "u3"
		t.Description = "" // declared, unchanged: not reported
		return []string{"title", "assignee", "description"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Revision <= created.Revision || updated.Title != "new" || !updated.UpdatedAt.AsTime().After(created.UpdatedAt.AsTime().Add(-time.Nanosecond)) {
		t.Errorf("updated = %v", updated)
	}
	want := &pb.TaskUpdated{TaskId: "t1", Changes: &pb.Task{Title: "new", Assignee: "u3"}, UpdatedBy: "u9", ChangedFields: []string{"title", "assignee"}}
	for _, ch := range []<-chan *natstest.Received{project, u3} {
		ev := natstest.Next(t, ch, wait)
		if !proto.Equal(ev.GetTaskUpdated(), want) {
			t.Errorf("task_updated = %v\nwant %v", ev.GetTaskUpdated(), want)
		}
		if ev.Metadata["revision"] != strconv.FormatUint(updated.Revision, 10) {
			t.Errorf("revision metadata %q, want %d", ev.Metadata["revision"], updated.Revision)
		}
	}

	// Clearing a field: it is named, and absent from changes.
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, func(t *pb.Task) ([]string, error) {
		t.Assignee, t.Labels = "", nil
		return []string{"assignee", "labels"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ev := natstest.Next(t, project, wait)
	want = &pb.TaskUpdated{TaskId: "t1", Changes: &pb.Task{}, ChangedFields: []string{"assignee", "labels"}}
	if !proto.Equal(ev.GetTaskUpdated(), want) || ev.UserId != "" {
		t.Errorf("task_updated = %v, want %v from no user", ev, want)
	}
	natstest.Quiet(t, u3, 50*time.Millisecond)

	// A no-op writes and publishes nothing.
	before, _ := f.store.Get(ctx(t), "p1", "t1")
	same, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, func(t *pb.Task) ([]string, error) {
		t.Title = "new"
		return []string{"title"}, nil
	})
	if err != nil || same.Revision != before.Revision {
		t.Errorf("no-op update = %v, %v; want revision %d", same, err, before.Revision)
	}
	natstest.Quiet(t, project, 100*time.Millisecond)
}

func TestUpdateGuards(t *testing.T) {
	f := setup(t, taskstore.Options{})
	c, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{})
	if err != nil {
		t.Fatal(err)
	}
	set := func(title string) func(*pb.Task) ([]string, error) {
		return func(t *pb.Task) ([]string, error) { t.Title = title; return []string{"title"}, nil }
	}
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, set("b")); err != nil {
		t.Fatal(err)
	}
	_, err = f.store.Update(ctx(t), "p1", "t1", taskstore.Write{IfRevision: c.Revision}, set("c"))
	var ce *taskstore.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, taskstore.ErrConflict) || ce.Current <= c.Revision {
		t.Errorf("stale IfRevision: %v, want a ConflictError with the current revision", err)
	}
	if err := f.store.Delete(ctx(t), "p1", "t1", taskstore.Write{IfRevision: c.Revision}); !errors.Is(err, taskstore.ErrConflict) {
		t.Errorf("stale Delete: %v, want ErrConflict", err)
	}
	if _, err := f.store.Update(ctx(t), "p1", "nope", taskstore.Write{}, set("x")); !errors.Is(err, taskstore.ErrNotFound) {
		t.Errorf("update of a missing task: %v", err)
	}
	boom := errors.New("boom")
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, func(*pb.Task) ([]string, error) { return nil, boom }); err != boom {
		t.Errorf("fn error: %v, want it unchanged", err)
	}
	for name, fn := range map[string]func(*pb.Task) ([]string, error){
		"store-owned field": func(t *pb.Task) ([]string, error) { t.CreatedBy = "x"; return []string{"createdBy"}, nil },
		"undeclared field":  func(t *pb.Task) ([]string, error) { t.Title = "zz"; t.Description = "d"; return []string{"title"}, nil },
		"invalid result":    func(t *pb.Task) ([]string, error) { t.Title = ""; return []string{"title"}, nil },
	} {
		if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, fn); !errors.Is(err, taskstore.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestConcurrentUpdatesRetry(t *testing.T) {
	f := setup(t, taskstore.Options{MaxRetries: 100})
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	project := natstest.Events(t, f.nc, "live.project.p1")
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			label := fmt.Sprintf("l%d", i)
			_, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, func(t *pb.Task) ([]string, error) {
				t.Labels = append(t.Labels, label)
				return []string{"labels"}, nil
			})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := f.store.Get(ctx(t), "p1", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels) != n {
		t.Fatalf("labels = %v, want %d (no update lost)", got.Labels, n)
	}
	// Each event shows the labels after its own write: one more each time.
	for i := 1; i <= n; i++ {
		ev := natstest.Next(t, project, wait)
		if l := len(ev.GetTaskUpdated().GetChanges().GetLabels()); l != i {
			t.Errorf("event %d carries %d labels, want %d", i, l, i)
		}
	}
	natstest.Quiet(t, project, 100*time.Millisecond)
}

func TestDelete(t *testing.T) {
	f := setup(t, taskstore.Options{})
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	project := natstest.Events(t, f.nc, "live.project.p1")
	if err := f.store.Delete(ctx(t), "p1", "t1", taskstore.Write{Actor: "u1"}); err != nil {
		t.Fatal(err)
	}
	ev := natstest.Next(t, project, wait)
	if d := ev.GetTaskDeleted(); d.GetTaskId() != "t1" || d.GetDeletedBy() != "u1" {
		t.Errorf("event = %v, want task_deleted of t1 by u1", ev)
	}
	if _, err := f.store.Get(ctx(t), "p1", "t1"); !errors.Is(err, taskstore.ErrNotFound) {
		t.Errorf("Get after Delete: %v", err)
	}
	if err := f.store.Delete(ctx(t), "p1", "t1", taskstore.Write{}); !errors.Is(err, taskstore.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}
	kv, _ := f.js.KeyValue(ctx(t), taskstore.DefaultBucket)
	if _, err := kv.Get(ctx(t), "p1.t1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("key after Delete: %v, want it gone", err)
	}
	// The id is free again.
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "again"}, taskstore.Write{}); err != nil {
		t.Errorf("re-create: %v", err)
	}
}

// TestOutboxRepairsAFailedPublish: with the EVENTS stream gone, writes
// succeed and keep their events; once the stream is back, a sweep (two
// concurrent ones here) publishes each exactly once, in order, with the
// revisions of the writes that caused them.
func TestOutboxRepairsAFailedPublish(t *testing.T) {
	f := setup(t, taskstore.Options{PublishTimeout: time.Second})
	c, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t2", Title: "doomed"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	project := natstest.Events(t, f.nc, "live.project.p1")
	if err := f.js.DeleteStream(ctx(t), events.StreamName); err != nil {
		t.Fatal(err)
	}

	u1, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{IfRevision: c.Revision}, func(t *pb.Task) ([]string, error) {
		t.Title = "b"
		return []string{"title"}, nil
	})
	if err != nil {
		t.Fatalf("update with EVENTS missing: %v (the change must be stored)", err)
	}
	u2, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{IfRevision: u1.Revision}, func(t *pb.Task) ([]string, error) {
		t.Title = "c"
		return []string{"title"}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx(t), "p1", "t2", taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Get(ctx(t), "p1", "t2"); !errors.Is(err, taskstore.ErrNotFound) {
		t.Errorf("Get of a task being deleted: %v, want ErrNotFound", err)
	}
	page, err := f.store.List(ctx(t), "p1", taskstore.Query{})
	if err != nil || len(page.Tasks) != 1 || page.Tasks[0].Title != "c" {
		t.Errorf("List while pending = %v, %v; want only t1 titled c", page.Tasks, err)
	}
	if _, err := f.store.Sweep(ctx(t)); err == nil {
		t.Error("Sweep with EVENTS missing: nil, want an error")
	}
	natstest.Quiet(t, project, 50*time.Millisecond)

	if _, err := events.EnsureStreams(ctx(t), f.js, events.StreamConfig{MemoryStorage: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := f.store.Sweep(ctx(t)); err != nil {
				t.Errorf("Sweep: %v", err)
			}
		})
	}
	wg.Wait()
	var got []string
	for range 3 {
		ev := natstest.Next(t, project, wait)
		switch p := ev.Payload.(type) {
		case *pb.Event_TaskUpdated:
			got = append(got, p.TaskUpdated.TaskId+":"+p.TaskUpdated.Changes.Title+"@"+ev.Metadata["revision"])
		case *pb.Event_TaskDeleted:
			got = append(got, p.TaskDeleted.TaskId+":deleted")
		}
	}
	t1 := []string{fmt.Sprintf("t1:b@%d", u1.Revision), fmt.Sprintf("t1:c@%d", u2.Revision)}
	var ofT1 []string
	for _, g := range got {
		if g != "t2:deleted" {
			ofT1 = append(ofT1, g)
		}
	}
	if !slices.Equal(ofT1, t1) || !slices.Contains(got, "t2:deleted") {
		t.Errorf("events = %v, want %v in this order and t2:deleted", got, t1)
	}
	natstest.Quiet(t, project, 200*time.Millisecond)

	res, err := f.store.Sweep(ctx(t))
	if err != nil || res.Pending != 0 || res.Scanned != 1 {
		t.Errorf("Sweep after repair = %+v, %v; want one entry, nothing pending", res, err)
	}
	got2, _ := f.store.Get(ctx(t), "p1", "t1")
	if got2.Revision != u2.Revision {
		t.Errorf("revision after the outbox was cleared = %d, want %d (the ETag must stay valid)", got2.Revision, u2.Revision)
	}
	natstest.Quiet(t, project, 100*time.Millisecond)
}

// TestSweepLeavesFreshEntries: a sweep does not race the writer that is
// still publishing.
func TestSweepLeavesFreshEntries(t *testing.T) {
	f := setup(t, taskstore.Options{SweepMinAge: time.Hour, PublishTimeout: 500 * time.Millisecond})
	if err := f.js.DeleteStream(ctx(t), events.StreamName); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	res, err := f.store.Sweep(ctx(t))
	if err != nil || res.Scanned != 1 || res.Pending != 0 {
		t.Errorf("Sweep = %+v, %v; want the young entry left alone", res, err)
	}
}

func TestOutboxCarriesMessages(t *testing.T) {
	f := setup(t, taskstore.Options{})
	if _, err := f.js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("t.job")
	m.Data = []byte("hello")
	m.Header.Set(nats.MsgIdHdr, "x1")
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{Also: []*nats.Msg{m}}, func(t *pb.Task) ([]string, error) {
		t.Status = pb.TaskStatus_TASK_STATUS_QUEUED
		return []string{"status"}, nil
	}); err != nil {
		t.Fatal(err)
	}
	s, _ := f.js.Stream(ctx(t), "T")
	got, err := s.GetLastMsgForSubject(ctx(t), "t.job")
	if err != nil || string(got.Data) != "hello" || got.Header.Get(nats.MsgIdHdr) != "x1" {
		t.Errorf("message = %v, %v", got, err)
	}
	// A no-op update sends nothing.
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{Also: []*nats.Msg{m}}, func(*pb.Task) ([]string, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx(t))
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
	bad := nats.NewMsg("t.job")
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{Also: []*nats.Msg{bad}}, nil); !errors.Is(err, taskstore.ErrInvalid) {
		t.Errorf("message without Nats-Msg-Id: %v, want ErrInvalid", err)
	}
}

func TestBacklog(t *testing.T) {
	f := setup(t, taskstore.Options{MaxPending: 2, PublishTimeout: 300 * time.Millisecond})
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	if err := f.js.DeleteStream(ctx(t), events.StreamName); err != nil {
		t.Fatal(err)
	}
	title := func(s string) func(*pb.Task) ([]string, error) {
		return func(t *pb.Task) ([]string, error) { t.Title = s; return []string{"title"}, nil }
	}
	for _, s := range []string{"b", "c"} {
		if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, title(s)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Update(ctx(t), "p1", "t1", taskstore.Write{}, title("d")); !errors.Is(err, taskstore.ErrBacklog) {
		t.Errorf("third pending update: %v, want ErrBacklog", err)
	}
}

func TestList(t *testing.T) {
	f := setup(t, taskstore.Options{})
	for i := range 7 {
		task := &pb.Task{Id: fmt.Sprintf("t%d", i), Title: "x"}
		if i%2 == 0 {
			task.Assignee = "u1"
		}
		if i%3 == 0 {
			task.Status = pb.TaskStatus_TASK_STATUS_FAILED
		}
		if _, err := f.store.Create(ctx(t), "p1", task, taskstore.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.store.Create(ctx(t), "p2", &pb.Task{Id: "other", Title: "x"}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	ids := func(q taskstore.Query) []string {
		t.Helper()
		var out []string
		for {
			p, err := f.store.List(ctx(t), "p1", q)
			if err != nil {
				t.Fatalf("List(%+v): %v", q, err)
			}
			if len(p.Tasks) > max(q.Limit, 0) && q.Limit != 0 {
				t.Fatalf("page of %d, limit %d", len(p.Tasks), q.Limit)
			}
			for _, tk := range p.Tasks {
				if tk.Revision == 0 {
					t.Errorf("listed task %s without revision", tk.Id)
				}
				out = append(out, tk.Id)
			}
			if p.NextCursor == "" {
				return out
			}
			q.Cursor = p.NextCursor
		}
	}
	for _, tc := range []struct {
		q    taskstore.Query
		want []string
	}{
		{taskstore.Query{}, []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6"}},
		{taskstore.Query{Limit: 2}, []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6"}},
		{taskstore.Query{Limit: 7}, []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6"}},
		{taskstore.Query{Assignee: "u1", Limit: 1}, []string{"t0", "t2", "t4", "t6"}},
		{taskstore.Query{Status: pb.TaskStatus_TASK_STATUS_FAILED}, []string{"t0", "t3", "t6"}},
		{taskstore.Query{Status: pb.TaskStatus_TASK_STATUS_FAILED, Assignee: "u1"}, []string{"t0", "t6"}},
		{taskstore.Query{Assignee: "nobody"}, nil},
	} {
		if got := ids(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	for _, q := range []taskstore.Query{{Limit: 201}, {Limit: -1}, {Cursor: "nope"}, {Cursor: "Yzp4Lnk"}, {Assignee: "a b"}} {
		if _, err := f.store.List(ctx(t), "p1", q); !errors.Is(err, taskstore.ErrInvalid) && !errors.Is(err, taskstore.ErrBadCursor) {
			t.Errorf("List(%+v): %v, want an error", q, err)
		}
	}
	empty, err := f.store.List(ctx(t), "p3", taskstore.Query{})
	if err != nil || len(empty.Tasks) != 0 || empty.NextCursor != "" {
		t.Errorf("List of an empty project = %+v, %v", empty, err)
	}
}

func TestGetIsACopy(t *testing.T) {
	f := setup(t, taskstore.Options{})
	if _, err := f.store.Create(ctx(t), "p1", &pb.Task{Id: "t1", Title: "a", Labels: []string{"l"}}, taskstore.Write{}); err != nil {
		t.Fatal(err)
	}
	a, _ := f.store.Get(ctx(t), "p1", "t1")
	a.Labels[0] = "changed"
	b, _ := f.store.Get(ctx(t), "p1", "t1")
	if b.Labels[0] != "l" {
		t.Errorf("Get shares memory between calls")
	}
}
