package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/eventedge/eventedge/proto/revoke"
	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// removeMember revokes a user's access to a project's room. Membership
// itself lives in the tokens' projects claim, so the issuer must stop
// listing the project in the user's new tokens; this tells every edge node
// to cut the live feed now. It answers 204 once the REVOCATIONS stream has
// stored the revocation, so edge nodes started or reconnected later apply
// it too; without the stream's ack, whatever the error, 503 with
// Retry-After.
func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	project, _, idErr := pathIDs(r)
	if a.authorize(w, r, "", auth.PermAdmin) == nil {
		return
	}
	if idErr != nil {
		a.fail(w, r, idErr)
		return
	}
	user := r.PathValue("userId")
	if !taskstore.ValidID(user) {
		a.fail(w, r, badRequest("userId", "want 1-64 characters of A-Z a-z 0-9 _ -"))
		return
	}
	m := revoke.Message{UserID: user, Rooms: []string{room.Project(project).String()}}
	if _, err := revoke.Publish(r.Context(), a.js, m); err != nil {
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			return // the client went away
		}
		// Whatever the cause (NATS away, no stream, the stream refusing
		// it), the revocation is not stored: the caller must retry.
		a.log.Warn().Err(err).Str("user", user).Str("project", project).Msg("revocation not stored")
		w.Header().Set("Retry-After", "2")
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the revocation was not stored (NATS or the REVOCATIONS stream is unavailable); retry later"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
