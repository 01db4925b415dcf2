package taskstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// recordVersion is the format of the entries this package writes.
const recordVersion = 1

// record is one bucket entry: a task and its outbox. JSON, so that
// `nats kv get TASKS p1.t1` is readable.
type record struct {
	V int `json:"v"`
	// Task is the protojson form of the task, without its revision.
	Task json.RawMessage `json:"task"`
	// Rev is the revision of the write that last changed the task, when it
	// is not this entry's own revision (the entry was since rewritten only
	// to clear its outbox). 0: the entry's revision.
	Rev uint64 `json:"rev,omitempty"`
	// Deleted marks a task being deleted: its task_deleted event is in
	// Pending, and the key goes once it is published.
	Deleted bool          `json:"deleted,omitempty"`
	Pending []pendingItem `json:"pending,omitempty"`
}

// pendingItem is one unpublished message: an event or a raw JetStream
// message.
type pendingItem struct {
	// ID is the event id or the message's Nats-Msg-Id.
	ID string `json:"id"`
	// Rev is the task revision of the write that added the item; 0: the
	// entry's content revision (the item was added by the write that
	// produced it). A later content write stamps it before carrying it on.
	Rev uint64 `json:"rev,omitempty"`
	// At is when the item was written.
	At time.Time `json:"at"`
	// Event is the protojson form of an event, without its revision.
	Event json.RawMessage `json:"event,omitempty"`
	// Msg is a raw message (Write.Also).
	Msg *outMsg `json:"msg,omitempty"`
}

type outMsg struct {
	Subject string              `json:"subject"`
	Header  map[string][]string `json:"header,omitempty"`
	Data    []byte              `json:"data"`
}

// entry is a decoded bucket entry.
type entry struct {
	key   string
	kvRev uint64
	rec   record
	task  *pb.Task // decoded rec.Task, Revision set to contentRev
}

// contentRev is the task's revision: that of the write that last changed
// it.
func (e *entry) contentRev() uint64 {
	if e.rec.Rev != 0 {
		return e.rec.Rev
	}
	return e.kvRev
}

// itemRev is the task revision an item's event reports.
func (e *entry) itemRev(it *pendingItem) uint64 {
	if it.Rev != 0 {
		return it.Rev
	}
	return e.contentRev()
}

var (
	storeJSON = protojson.MarshalOptions{}
	readJSON  = protojson.UnmarshalOptions{DiscardUnknown: true}
)

func decodeEntry(key string, rev uint64, value []byte) (*entry, error) {
	e := &entry{key: key, kvRev: rev}
	if err := json.Unmarshal(value, &e.rec); err != nil {
		return nil, fmt.Errorf("decode entry %s@%d: %w", key, rev, err)
	}
	if e.rec.V != recordVersion {
		return nil, fmt.Errorf("decode entry %s@%d: format version %d, want %d", key, rev, e.rec.V, recordVersion)
	}
	t := &pb.Task{}
	if err := readJSON.Unmarshal(e.rec.Task, t); err != nil {
		return nil, fmt.Errorf("decode task of entry %s@%d: %w", key, rev, err)
	}
	t.Revision = e.contentRev()
	e.task = t
	return e, nil
}

func encodeRecord(r *record) ([]byte, error) {
	r.V = recordVersion
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode entry: %w", err)
	}
	return b, nil
}

// taskJSON encodes t without its revision (which is the entry's).
func taskJSON(t *pb.Task) (json.RawMessage, error) {
	rev := t.Revision
	t.Revision = 0
	b, err := storeJSON.Marshal(t)
	t.Revision = rev
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", t.GetId(), err)
	}
	return b, nil
}

func eventItem(ev *pb.Event, at time.Time) (pendingItem, error) {
	b, err := storeJSON.Marshal(ev)
	if err != nil {
		return pendingItem{}, fmt.Errorf("encode event %s: %w", ev.GetId(), err)
	}
	return pendingItem{ID: ev.Id, At: at, Event: b}, nil
}

func msgItem(m *nats.Msg, at time.Time) pendingItem {
	return pendingItem{
		ID:  m.Header.Get(nats.MsgIdHdr),
		At:  at,
		Msg: &outMsg{Subject: m.Subject, Header: m.Header, Data: m.Data},
	}
}

// carry returns the pending items of e for a new content write: items
// added by the write that produced e get that write's revision, since the
// new write changes what "the entry's revision" means.
func carry(e *entry) []pendingItem {
	out := make([]pendingItem, len(e.rec.Pending), len(e.rec.Pending)+2)
	for i, it := range e.rec.Pending {
		if it.Rev == 0 {
			it.Rev = e.contentRev()
		}
		out[i] = it
	}
	return out
}

// event decodes an item's event and stamps the revision it reports.
func (e *entry) event(it *pendingItem) (*pb.Event, error) {
	ev := &pb.Event{}
	if err := readJSON.Unmarshal(it.Event, ev); err != nil {
		return nil, fmt.Errorf("decode pending event %s of %s: %w", it.ID, e.key, err)
	}
	rev := e.itemRev(it)
	if ev.Metadata == nil {
		ev.Metadata = map[string]string{}
	}
	ev.Metadata[MetaRevision] = strconv.FormatUint(rev, 10)
	if tc := ev.GetTaskCreated(); tc != nil && tc.Task != nil {
		tc.Task.Revision = rev
	}
	return ev, nil
}

// Event metadata keys set by the store.
const (
	// MetaSource names the service that made the change (Options.Source).
	MetaSource = "source"
	// MetaRevision is the task revision the change produced: the ETag a
	// client holding the event may send as If-Match.
	MetaRevision = "revision"
)
