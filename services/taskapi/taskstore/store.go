package taskstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventedge/eventedge/proto/events"
	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
	"github.com/eventedge/eventedge/proto/room"
)

// Store is the task store. It is safe for concurrent use and starts no
// goroutines.
type Store struct {
	// static after Open
	js   jetstream.JetStream
	kv   jetstream.KeyValue
	opts Options
	m    *metrics
}

// Open binds the bucket, creating it (file storage, history 1) when it does
// not exist; every service using the store may call it at start.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, opts.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		storage := jetstream.FileStorage
		if opts.MemoryStorage {
			storage = jetstream.MemoryStorage
		}
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      opts.Bucket,
			Description: "eventedge tasks and their unpublished events",
			History:     1,
			Storage:     storage,
			Replicas:    opts.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // created concurrently
			kv, err = js.KeyValue(ctx, opts.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", opts.Bucket, err)
	}
	return &Store{js: js, kv: kv, opts: opts, m: newMetrics(opts.Registerer)}, nil
}

// Bucket returns the name of the bucket.
func (s *Store) Bucket() string { return s.opts.Bucket }

// Check reports whether the bucket exists and answers: the readiness check.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.js.KeyValue(ctx, s.opts.Bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", s.opts.Bucket, err)
	}
	return nil
}

// Key returns the bucket key of a task.
func Key(project, id string) string { return project + "." + id }

func checkIDs(project, id string) error {
	if !ValidID(project) {
		return fieldErr("projectId", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if !ValidID(id) {
		return fieldErr("id", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	return nil
}

// load reads an entry; ErrNotFound when the key is absent. A deleted entry
// is returned (with rec.Deleted) for the outbox to finish.
func (s *Store) load(ctx context.Context, key string) (*entry, error) {
	kve, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return decodeEntry(key, kve.Revision(), kve.Value())
}

// Get returns the task with its Revision set. It fails with ErrNotFound for
// a task that does not exist or is being deleted.
func (s *Store) Get(ctx context.Context, project, id string) (*pb.Task, error) {
	if err := checkIDs(project, id); err != nil {
		return nil, err
	}
	e, err := s.load(ctx, Key(project, id))
	if err != nil {
		return nil, err
	}
	if e.rec.Deleted {
		return nil, ErrNotFound
	}
	return e.task, nil
}

// Create stores t as a new task of project and publishes task_created to
// project:<project> (and to user:<assignee> when assigned). The store sets
// projectId, createdAt, updatedAt and createdBy (w.Actor), and the id when
// t has none (a new ULID); the status defaults to TASK_STATUS_TODO. t is
// not modified. It fails with ErrExists when the id is taken, and with a
// *FieldError when a field is invalid. w.IfRevision is ignored.
func (s *Store) Create(ctx context.Context, project string, t *pb.Task, w Write) (*pb.Task, error) {
	t = proto.Clone(t).(*pb.Task)
	if t.Id == "" {
		t.Id = events.NewID()
	}
	if err := checkIDs(project, t.Id); err != nil {
		return nil, err
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	if t.ProjectId != "" && t.ProjectId != project {
		return nil, fieldErr("projectId", "does not match the project of the request")
	}
	now := timestamppb.New(s.opts.Now())
	t.ProjectId, t.CreatedAt, t.UpdatedAt, t.CreatedBy, t.Revision = project, now, now, w.Actor, 0
	if t.Status == pb.TaskStatus_TASK_STATUS_UNSPECIFIED {
		t.Status = pb.TaskStatus_TASK_STATUS_TODO
	}
	if err := Validate(t); err != nil {
		return nil, err
	}
	at := s.opts.Now()
	evs := []*pb.Event{events.TaskCreated(room.Project(project), w.Actor, proto.Clone(t).(*pb.Task))}
	if t.Assignee != "" {
		evs = append(evs, events.TaskCreated(room.User(t.Assignee), w.Actor, proto.Clone(t).(*pb.Task)))
	}
	rec := record{}
	var err error
	if rec.Task, err = taskJSON(t); err != nil {
		return nil, err
	}
	if rec.Pending, err = s.items(nil, evs, w.Also, at); err != nil {
		return nil, err
	}
	value, err := encodeRecord(&rec)
	if err != nil {
		return nil, err
	}
	key := Key(project, t.Id)
	rev, err := s.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	t.Revision = rev
	s.flushAfterWrite(ctx, &entry{key: key, kvRev: rev, rec: rec, task: t})
	return t, nil
}

// Update changes a task through fn and publishes task_updated with the
// changed fields (also to user:<assignee> when the assignee changes to a
// user).
//
// fn receives a copy of the current task (Revision set), changes it and
// returns the lowerCamelCase names of the fields it changed (among
// Mutable). Only those that really differ are written and reported: when
// none does, or fn returns no names, nothing is written and the current
// task is returned. An error from fn aborts the update and is returned as
// it is. fn may run more than once (after a concurrent write it runs again
// on the new task), so it must decide from its argument alone.
//
// Update fails with ErrNotFound, a *ConflictError when w.IfRevision is set
// and differs, ErrConflict when MaxRetries compare-and-set attempts lose,
// ErrBacklog, or a *FieldError when the result is invalid.
func (s *Store) Update(ctx context.Context, project, id string, w Write, fn func(t *pb.Task) (changed []string, err error)) (*pb.Task, error) {
	if err := checkIDs(project, id); err != nil {
		return nil, err
	}
	if err := w.validate(); err != nil {
		return nil, err
	}
	key := Key(project, id)
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		if attempt > 0 {
			s.m.casRetries.Inc()
		}
		e, err := s.load(ctx, key)
		if err != nil {
			return nil, err
		}
		if e.rec.Deleted {
			return nil, ErrNotFound
		}
		if w.IfRevision != 0 && e.contentRev() != w.IfRevision {
			return nil, &ConflictError{Current: e.contentRev()}
		}
		t := proto.Clone(e.task).(*pb.Task)
		declared, err := fn(t)
		if err != nil {
			return nil, err
		}
		if len(declared) == 0 {
			return e.task, nil
		}
		changed, err := diff(e.task, t, declared)
		if err != nil {
			return nil, err
		}
		if len(changed) == 0 {
			return e.task, nil
		}
		if err := Validate(t); err != nil {
			return nil, err
		}
		t.UpdatedAt = timestamppb.New(s.opts.Now())
		changes := only(t, changed)
		evs := []*pb.Event{events.TaskUpdated(room.Project(project), w.Actor, id, changes, changed...)}
		if slices.Contains(changed, "assignee") && t.Assignee != "" {
			evs = append(evs, events.TaskUpdated(room.User(t.Assignee), w.Actor, id, proto.Clone(changes).(*pb.Task), changed...))
		}
		rec := record{}
		if rec.Task, err = taskJSON(t); err != nil {
			return nil, err
		}
		if rec.Pending, err = s.items(e, evs, w.Also, s.opts.Now()); err != nil {
			return nil, err
		}
		rev, err := s.write(ctx, key, &rec, e.kvRev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, err
		}
		t.Revision = rev
		s.flushAfterWrite(ctx, &entry{key: key, kvRev: rev, rec: rec, task: t})
		return t, nil
	}
	return nil, fmt.Errorf("update %s: %w after %d attempts", key, ErrConflict, s.opts.MaxRetries)
}

// Delete marks the task deleted together with its task_deleted event, and
// removes its key once the event is published. It fails with ErrNotFound,
// a *ConflictError when w.IfRevision is set and differs, ErrConflict or
// ErrBacklog.
func (s *Store) Delete(ctx context.Context, project, id string, w Write) error {
	if err := checkIDs(project, id); err != nil {
		return err
	}
	if err := w.validate(); err != nil {
		return err
	}
	key := Key(project, id)
	for attempt := 0; attempt < s.opts.MaxRetries; attempt++ {
		if attempt > 0 {
			s.m.casRetries.Inc()
		}
		e, err := s.load(ctx, key)
		if err != nil {
			return err
		}
		if e.rec.Deleted {
			return ErrNotFound
		}
		if w.IfRevision != 0 && e.contentRev() != w.IfRevision {
			return &ConflictError{Current: e.contentRev()}
		}
		rec := record{Task: e.rec.Task, Deleted: true}
		ev := events.TaskDeleted(room.Project(project), w.Actor, id)
		if rec.Pending, err = s.items(e, []*pb.Event{ev}, w.Also, s.opts.Now()); err != nil {
			return err
		}
		rev, err := s.write(ctx, key, &rec, e.kvRev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return err
		}
		s.flushAfterWrite(ctx, &entry{key: key, kvRev: rev, rec: rec, task: e.task})
		return nil
	}
	return fmt.Errorf("delete %s: %w after %d attempts", key, ErrConflict, s.opts.MaxRetries)
}

// items returns the pending list of a content write: what prev (nil for a
// new task) still holds, stamped, then evs and also.
func (s *Store) items(prev *entry, evs []*pb.Event, also []*nats.Msg, at time.Time) ([]pendingItem, error) {
	var out []pendingItem
	if prev != nil {
		out = carry(prev)
	}
	for _, ev := range evs {
		if s.opts.Source != "" {
			if ev.Metadata == nil {
				ev.Metadata = map[string]string{}
			}
			ev.Metadata[MetaSource] = s.opts.Source
		}
		it, err := eventItem(ev, at)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	for _, m := range also {
		out = append(out, msgItem(m, at))
	}
	if len(out) > s.opts.MaxPending {
		return nil, fmt.Errorf("%w: %d unpublished, at most %d", ErrBacklog, len(out), s.opts.MaxPending)
	}
	return out, nil
}

// write stores rec at key if the entry is still at revision prev.
func (s *Store) write(ctx context.Context, key string, rec *record, prev uint64) (uint64, error) {
	value, err := encodeRecord(rec)
	if err != nil {
		return 0, err
	}
	rev, err := s.kv.Update(ctx, key, value, prev)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return 0, err
		}
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return rev, nil
}
