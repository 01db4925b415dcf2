package taskstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Page sizes of List.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// Query selects the tasks List returns.
type Query struct {
	// Status, when set, keeps the tasks with this status. Default: any.
	Status pb.TaskStatus
	// Assignee, when set, keeps the tasks assigned to this user. Default:
	// any.
	Assignee string
	// Limit is the page size, 1 to MaxLimit. Default (0) DefaultLimit.
	Limit int
	// Cursor continues a listing: Page.NextCursor of the previous page.
	// Default: the first page.
	Cursor string
}

// Page is one page of tasks, ordered by id (ULID ids sort by creation).
type Page struct {
	Tasks []*pb.Task
	// NextCursor is the Query.Cursor of the next page; empty on the last.
	NextCursor string
}

const cursorPrefix = "c1:"

func encodeCursor(lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + lastID))
}

func decodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", ErrBadCursor
	}
	id, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok || !ValidID(id) {
		return "", ErrBadCursor
	}
	return id, nil
}

// List returns a page of the tasks of project that match q. It reads every
// task of the project (one ordered consumer over "<project>.*"), which is
// fine for boards of thousands of tasks; a store for much larger projects
// would keep secondary indexes.
func (s *Store) List(ctx context.Context, project string, q Query) (Page, error) {
	if !ValidID(project) {
		return Page{}, fieldErr("projectId", "want 1-64 characters of A-Z a-z 0-9 _ -")
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return Page{}, fieldErr("limit", "want 1-%d", MaxLimit)
	}
	if q.Assignee != "" && !ValidID(q.Assignee) {
		return Page{}, fieldErr("assignee", "want a user id: 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if _, ok := pb.TaskStatus_name[int32(q.Status)]; !ok {
		return Page{}, fieldErr("status", "unknown status %d", q.Status)
	}
	after := ""
	if q.Cursor != "" {
		var err error
		if after, err = decodeCursor(q.Cursor); err != nil {
			return Page{}, err
		}
	}
	var tasks []*pb.Task
	err := s.each(ctx, project+".*", func(e *entry) {
		t := e.task
		switch {
		case e.rec.Deleted, t.Id <= after:
		case q.Status != pb.TaskStatus_TASK_STATUS_UNSPECIFIED && t.Status != q.Status:
		case q.Assignee != "" && t.Assignee != q.Assignee:
		default:
			tasks = append(tasks, t)
		}
	})
	if err != nil {
		return Page{}, err
	}
	slices.SortFunc(tasks, func(a, b *pb.Task) int { return strings.Compare(a.Id, b.Id) })
	var p Page
	if len(tasks) > q.Limit {
		tasks = tasks[:q.Limit]
		p.NextCursor = encodeCursor(tasks[len(tasks)-1].Id)
	}
	p.Tasks = tasks
	return p, nil
}

// each calls fn with every current entry whose key matches filter, in no
// particular order. Entries that cannot be decoded are logged and skipped.
func (s *Store) each(ctx context.Context, filter string, fn func(*entry)) error {
	w, err := s.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s: %w", filter, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("read %s: %w", filter, ctx.Err())
		case kve, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("read %s: watcher stopped", filter)
			}
			if kve == nil { // every current value was delivered
				return nil
			}
			e, err := decodeEntry(kve.Key(), kve.Revision(), kve.Value())
			if err != nil {
				s.opts.Log.Error().Err(err).Str("key", kve.Key()).Msg("skipping undecodable task entry")
				continue
			}
			fn(e)
		}
	}
}
