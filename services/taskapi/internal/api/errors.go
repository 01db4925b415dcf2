package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// Error codes of the JSON error body.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Error is an API error: its status, and the body
// {"error":{"code","field","message"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

func badRequest(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: msg}
}

func conflict(msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: msg}
}

// errActive: the change needs the task not to be queued or running.
var errActive = conflict("the task is queued or running: cancel it first")

func writeError(w http.ResponseWriter, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error *Error `json:"error"`
	}{e})
}

// fail answers err: an *Error as it is, a store error by its kind, and
// anything else as 503 (NATS unreachable) or 500, logged with the request.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ae *Error
		fe *taskstore.FieldError
		ce *taskstore.ConflictError
	)
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = badRequest(fe.Field, fe.Message)
	case errors.Is(err, taskstore.ErrBadCursor):
		ae = badRequest("cursor", "not a cursor returned by this API")
	case errors.Is(err, taskstore.ErrInvalid):
		ae = badRequest("", err.Error())
	case errors.Is(err, taskstore.ErrNotFound):
		ae = &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such task"}
	case errors.As(err, &ce):
		w.Header().Set("ETag", etag(ce.Current))
		ae = conflict("If-Match: the task's revision is now " + strconv.FormatUint(ce.Current, 10))
	case errors.Is(err, taskstore.ErrConflict):
		ae = conflict("the task changed concurrently too often; retry")
	case errors.Is(err, taskstore.ErrExists):
		ae = &Error{Status: http.StatusConflict, Code: CodeConflict, Field: "id", Message: "a task with this id exists"}
	case errors.Is(err, taskstore.ErrBacklog):
		w.Header().Set("Retry-After", "5")
		ae = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "this task's events are not published yet; retry later"}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	case unavailable(err) || !a.nc.IsConnected():
		a.log.Warn().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("NATS unavailable")
		w.Header().Set("Retry-After", "2")
		ae = &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the task store is unavailable; retry later"}
	default:
		a.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("request failed")
		ae = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"}
	}
	writeError(w, ae)
}

func unavailable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}
