package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

func TestIfMatch(t *testing.T) {
	for v, want := range map[string]uint64{"": 0, "*": 0, `"42"`: 42, "42": 42} {
		r := httptest.NewRequest("PATCH", "/", nil)
		if v != "" {
			r.Header.Set("If-Match", v)
		}
		if got, err := ifMatch(r); err != nil || got != want {
			t.Errorf("If-Match %q = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{`W/"42"`, `"1", "2"`, `"x"`, `"0"`, `-1`} {
		r := httptest.NewRequest("PATCH", "/", nil)
		r.Header.Set("If-Match", v)
		if _, err := ifMatch(r); err == nil {
			t.Errorf("If-Match %q accepted", v)
		}
	}
}

// FuzzTaskPatch: the body parser never panics, refuses with a 400 that
// names a field or the body, and what it accepts holds only writable
// fields.
func FuzzTaskPatch(f *testing.F) {
	for _, s := range []string{`{"title":"x"}`, `{"labels":["a",null]}`, `{"status":"TASK_STATUS_TODO","assignee":null}`,
		`{"title":"x","title":"y"}`, `[]`, `{"a":{"b":[1,2]}}`, `{"progress":1}`, `{"project_id":"p"}`, `{"status":3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		task, names, err := taskPatch(body, patchFields)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Message == "" {
				t.Fatalf("error %v: want a 400 *Error", err)
			}
			return
		}
		for _, n := range names {
			if !hasField(patchFields, n) {
				t.Fatalf("accepted read-only field %s", n)
			}
		}
		if task.Id != "" || task.ProjectId != "" || task.Revision != 0 || task.Progress != 0 || task.CreatedBy != "" {
			t.Fatalf("accepted a read-only value: %v", task)
		}
		_ = pb.TaskStatus_name[int32(task.Status)]
	})
}
