package api

import (
	"encoding/json"
	"net/http"

	"github.com/eventedge/eventedge/proto/room"

	"github.com/eventedge/eventedge/services/taskapi/internal/auth"
	"github.com/eventedge/eventedge/services/taskapi/taskstore"
)

// RevokeSubject is the core NATS subject edge nodes read revocations from.
const RevokeSubject = "ctl.revoke"

// Revocation is the ctl.revoke message: the edge closes the user's
// subscriptions to rooms and refuses them to the user's older tokens.
type Revocation struct {
	UserID string   `json:"userId"`
	Rooms  []string `json:"rooms,omitempty"`
}

// removeMember revokes a user's access to a project's room. Membership
// itself lives in the tokens' projects claim, so the issuer must stop
// listing the project in the user's new tokens; this tells every edge node
// to cut the live feed now.
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
	b, _ := json.Marshal(Revocation{UserID: user, Rooms: []string{room.Project(project).String()}})
	if err := a.nc.Publish(RevokeSubject, b); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.nc.FlushWithContext(r.Context()); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
