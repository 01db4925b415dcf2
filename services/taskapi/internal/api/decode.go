package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"
)

// readBody reads a request body of at most the configured size. A missing
// or empty body is returned as nil. The Content-Type must be JSON when
// there is a body.
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes", a.maxBody)}
	case err != nil:
		return nil, badRequest("", "reading the body: "+err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
	}
	return body, nil
}

// member is one "key": value of a JSON object.
type member struct {
	key string
	raw json.RawMessage
}

// members splits a JSON object into its members, in order, refusing
// anything else (an array, trailing data, a repeated key).
func members(body []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, badRequest("", "the body must be a JSON object")
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, badRequest("", "invalid JSON: "+err.Error())
		}
		key := tok.(string) // inside an object, tokens here are keys
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, badRequest(key, "invalid JSON: "+err.Error())
		}
		if seen[key] {
			return nil, badRequest(key, "repeated")
		}
		seen[key] = true
		out = append(out, member{key, raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, badRequest("", "invalid JSON: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("", "data after the JSON object")
	}
	return out, nil
}

var taskFields = (&pb.Task{}).ProtoReflect().Descriptor().Fields()

// taskPatch decodes a Task body field by field, so that each error names
// its field, and returns the task and the lowerCamelCase names present.
// Fields not in writable are refused: unknown ones as unknown, the others
// as read-only.
func taskPatch(body []byte, writable []string) (*pb.Task, []string, error) {
	ms, err := members(body)
	if err != nil {
		return nil, nil, err
	}
	t := &pb.Task{}
	var names []string
	for _, m := range ms {
		fd := taskFields.ByJSONName(m.key)
		if fd == nil {
			fd = taskFields.ByName(protoreflect.Name(m.key))
		}
		if fd == nil {
			return nil, nil, badRequest(m.key, "unknown field")
		}
		name := fd.JSONName()
		if slices.Contains(names, name) {
			return nil, nil, badRequest(name, "repeated")
		}
		if !slices.Contains(writable, name) {
			return nil, nil, badRequest(name, "read-only")
		}
		one := &pb.Task{}
		if err := protojson.Unmarshal([]byte(`{"`+name+`":`+string(m.raw)+`}`), one); err != nil {
			return nil, nil, badRequest(name, invalidValue(fd))
		}
		proto.Merge(t, one)
		names = append(names, name)
	}
	return t, names, nil
}

func invalidValue(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		vals := fd.Enum().Values()
		names := make([]string, 0, vals.Len())
		for i := 0; i < vals.Len(); i++ {
			names = append(names, string(vals.Get(i).Name()))
		}
		return "invalid value: want one of " + strings.Join(names[1:], ", ")
	case fd.IsList():
		return "invalid value: want an array of strings"
	}
	return "invalid value: want a " + fd.Kind().String()
}

// etag is the ETag of a revision.
func etag(rev uint64) string { return `"` + strconv.FormatUint(rev, 10) + `"` }

// ifMatch parses If-Match: the revision it names, 0 when absent or "*".
// Weak tags never match (RFC 9110 uses the strong comparison), so one is
// refused rather than silently ignored.
func ifMatch(r *http.Request) (uint64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	if strings.Contains(v, ",") {
		return 0, badRequest("If-Match", "give one ETag")
	}
	if strings.HasPrefix(v, "W/") {
		return 0, badRequest("If-Match", "weak ETags cannot match")
	}
	rev, err := strconv.ParseUint(strings.Trim(v, `"`), 10, 64)
	if err != nil || rev == 0 {
		return 0, badRequest("If-Match", `want an ETag returned by this API, e.g. "42"`)
	}
	return rev, nil
}

// writeTask answers a task (protojson) with its ETag.
func writeTask(w http.ResponseWriter, status int, t *pb.Task) {
	b, err := protojson.Marshal(t)
	if err != nil { // cannot happen for a valid task
		writeError(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "encoding the task"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", etag(t.Revision))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
