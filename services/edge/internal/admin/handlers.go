package admin

import (
	"net/http"

	"github.com/eventedge/eventedge/services/edge/internal/session"
)

// listConnections serves GET /v1/admin/connections.
func (h *Handler) listConnections(w http.ResponseWriter, r *http.Request) {
	p, perr := parseListParams(r.URL.Query())
	if perr != nil {
		writeError(w, perr)
		return
	}
	// Filter on what is cheap to read (the user, room membership), count
	// every match, and take full snapshots of the page only.
	var page []*session.Session
	out := ConnectionList{Connections: []Connection{}}
	for _, s := range h.opts.Sessions.List() {
		if p.user != "" && s.User() != p.user {
			continue
		}
		if p.room != "" && !s.Subscribed(p.room) {
			continue
		}
		out.Total++
		if s.ID() > p.cursor && len(page) <= p.limit {
			page = append(page, s) // one more than the limit: is there a next page?
		}
	}
	if len(page) > p.limit {
		page = page[:p.limit]
		out.Next = page[len(page)-1].ID()
	}
	for _, s := range page {
		out.Connections = append(out.Connections, connectionOf(s.Snapshot()))
	}
	writeJSON(w, http.StatusOK, out)
}

// listRooms serves GET /v1/admin/rooms.
func (h *Handler) listRooms(w http.ResponseWriter, r *http.Request) {
	name, perr := parseRoomsParams(r.URL.Query())
	if perr != nil {
		writeError(w, perr)
		return
	}
	out := RoomList{Rooms: []Room{}}
	for _, rs := range h.opts.Rooms.RoomSnapshots(name) {
		out.Rooms = append(out.Rooms, roomOf(rs))
	}
	out.Total = len(out.Rooms)
	writeJSON(w, http.StatusOK, out)
}

// closeConnection serves POST /v1/admin/connections/{session}/close. It
// answers 202 once the session is told to close; the session ends shortly
// after (close handshake included).
func (h *Handler) closeConnection(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	if !validID(id) {
		writeError(w, errBadRequest("session "+quote(id)+": not a session id"))
		return
	}
	req, perr := parseCloseRequest(r.Body)
	if perr != nil {
		writeError(w, perr)
		return
	}
	s := h.opts.Sessions.Find(id)
	if s == nil {
		writeError(w, errNotFound("no session "+quote(id)+" on this node (closed already, or on another node)"))
		return
	}
	already := s.IsClosing()
	s.Close(req.closeReason())
	h.opts.Log.Info().Str("admin", adminOf(r.Context())).Str("session", id).Str("user", s.User()).
		Int("code", req.Code).Str("reason", req.Reason).Bool("already_closing", already).Msg("connection closed by admin")
	writeJSON(w, http.StatusAccepted, CloseResult{Session: id, Code: req.Code, Reason: req.Reason, AlreadyClosing: already})
}

// drain serves POST /v1/admin/drain: 202, and the node drains as on
// SIGTERM. Asking again answers 202 as well (alreadyRequested).
func (h *Handler) drain(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, errBadRequest("drain takes no parameters"))
		return
	}
	by := adminOf(r.Context())
	first := h.opts.Drain(by)
	h.opts.Log.Info().Str("admin", by).Bool("first", first).Msg("drain requested through the admin API")
	writeJSON(w, http.StatusAccepted, DrainResult{Draining: true, AlreadyRequested: !first})
}

func quote(s string) string { return `"` + clip(s) + `"` }
