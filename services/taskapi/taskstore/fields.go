package taskstore

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// Mutable lists, in schema order, the lowerCamelCase names of the Task
// fields an Update may change. The others (id, projectId, createdAt,
// updatedAt, createdBy, revision) belong to the store.
var Mutable = []string{"title", "description", "status", "assignee", "labels", "progress", "executionId"}

var taskFields = (&pb.Task{}).ProtoReflect().Descriptor().Fields()

// diff returns, in schema order, the fields whose value differs between
// before and after. It fails when a field the store owns was changed, or a
// mutable one that fn did not declare.
func diff(before, after *pb.Task, declared []string) ([]string, error) {
	b, a := before.ProtoReflect(), after.ProtoReflect()
	var changed []string
	for i := 0; i < taskFields.Len(); i++ {
		fd := taskFields.Get(i)
		if b.Get(fd).Equal(a.Get(fd)) {
			continue
		}
		name := fd.JSONName()
		if !slices.Contains(Mutable, name) {
			return nil, fmt.Errorf("%w: update changed %s, which the store owns", ErrInvalid, name)
		}
		if !slices.Contains(declared, name) {
			return nil, fmt.Errorf("%w: update changed %s without declaring it", ErrInvalid, name)
		}
		changed = append(changed, name)
	}
	return changed, nil
}

// only returns a copy of t with only the named fields set: the "changes" of
// a task_updated event.
func only(t *pb.Task, names []string) *pb.Task {
	c := proto.Clone(t).(*pb.Task)
	m := c.ProtoReflect()
	for i := 0; i < taskFields.Len(); i++ {
		if fd := taskFields.Get(i); !slices.Contains(names, fd.JSONName()) {
			m.Clear(fd)
		}
	}
	return c
}
