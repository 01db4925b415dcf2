package admin

import (
	"context"
	"net/http"
)

// Error codes of an error response's "code".
const (
	CodeUnauthorized     = "unauthorized"       // 401: no, an invalid or a revoked token
	CodeForbidden        = "forbidden"          // 403: a valid token without the admin permission
	CodeBadRequest       = "bad_request"        // 400: a parameter or body the message names
	CodeNotFound         = "not_found"          // 404: no such session or endpoint
	CodeMethodNotAllowed = "method_not_allowed" // 405: the Allow header says which method
	CodeUnavailable      = "unavailable"        // 503: the node has not read the stored revocations yet; Retry-After
)

// Error is an error response: the HTTP status and the body's code and
// message. It implements error.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorBody struct {
	Error *Error `json:"error"`
}

func errUnauthorized(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: msg}
}

func errForbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: msg}
}

func errBadRequest(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
}

func errNotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

// adminKey is the context key of the authenticated admin's subject.
type adminKey struct{}

func withAdmin(ctx context.Context, subject string) context.Context {
	return context.WithValue(ctx, adminKey{}, subject)
}

// adminOf returns the subject of the admin who made the request.
func adminOf(ctx context.Context) string {
	s, _ := ctx.Value(adminKey{}).(string)
	return s
}
