package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The development login: in development mode the login page lists the demo
// users (/dev/users) and mints a token for the one picked (/dev/token),
// signed with the development secret the edge and the task API verify.
// Anyone who reaches the dashboard can do so, which is why it exists only
// with --dev.

// MaxTokenRequestBytes bounds the body of POST /dev/token.
const MaxTokenRequestBytes = 4 << 10

// devUser is a demo user, as /dev/users lists it.
type devUser struct {
	ID          string   `json:"id"`
	Sub         string   `json:"sub"`
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Description string   `json:"description"`
	// allProjects: the token's projects claim is ["*"] rather than the
	// project asked for.
	allProjects bool
}

// devUsers are the demo users of the contract, in the order the login page
// shows them.
var devUsers = []devUser{
	{
		ID: "viewer", Sub: "u2", Name: "Vic Viewer",
		Permissions: []string{"tasks:read", "system:read"},
		Description: "Sees the board and the system status of one project; cannot change tasks or read logs.",
	},
	{
		ID: "member", Sub: "u1", Name: "Mia Member",
		Permissions: []string{"tasks:read", "tasks:write", "logs:read", "system:read"},
		Description: "Creates, edits, runs, cancels and deletes the tasks of one project and reads their logs.",
	},
	{
		ID: "admin", Sub: "admin", Name: "Ada Admin",
		Permissions: []string{"admin"},
		Description: "May do everything in every project.",
		allProjects: true,
	},
}

func findDevUser(id string) (devUser, bool) {
	for _, u := range devUsers {
		if u.ID == id {
			return u, true
		}
	}
	return devUser{}, false
}

// projectID is a project id, as the edge's rooms accept it.
var projectID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// tokenRequest is the body of POST /dev/token.
type tokenRequest struct {
	User    string `json:"user"`
	Project string `json:"project"`
}

// tokenResponse is the answer of POST /dev/token.
type tokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"` // RFC 3339, UTC
	User      string `json:"user"`
	Sub       string `json:"sub"`
	Project   string `json:"project"`
}

// devClaims are the claims of a development token: what the edge and the
// task API read (sub, exp, permissions, projects) plus iat and a display
// name for the app.
type devClaims struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
	Projects    []string `json:"projects"`
	jwt.RegisteredClaims
}

// serveDevUsers answers GET /dev/users.
func (s *Server) serveDevUsers(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(s.users)
}

// serveDevToken answers POST /dev/token. The body must be JSON (a
// Content-Type other than application/json is 415): besides being clear,
// that makes a cross-site request need a CORS preflight, which is never
// granted, so another site cannot make a visitor's browser mint tokens.
func (s *Server) serveDevToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "method "+clip(r.Method)+" not allowed; use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return
	}
	req, status, err := decodeTokenRequest(w, r)
	if err != nil {
		writeJSONError(w, status, err.Error())
		return
	}
	user, ok := findDevUser(req.User)
	if !ok {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("unknown user %q; want viewer, member or admin", clip(req.User)))
		return
	}
	if !projectID.MatchString(req.Project) {
		writeJSONError(w, http.StatusBadRequest, fmt.Sprintf("project %q: want 1-64 characters of A-Z a-z 0-9 _ -", clip(req.Project)))
		return
	}
	token, exp, err := s.mint(user, req.Project)
	if err != nil {
		s.log.Error().Err(err).Str("user", user.ID).Msg("signing a development token failed")
		writeJSONError(w, http.StatusInternalServerError, "signing the token failed")
		return
	}
	s.m.devTokens.WithLabelValues(user.ID).Inc()
	s.log.Info().Str("user", user.ID).Str("sub", user.Sub).Str("project", req.Project).
		Time("expires", exp).Msg("development token minted")
	body, _ := json.Marshal(tokenResponse{
		Token:     token,
		ExpiresAt: exp.UTC().Format(time.RFC3339),
		User:      user.ID,
		Sub:       user.Sub,
		Project:   req.Project,
	})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(append(body, '\n'))
}

// decodeTokenRequest reads one JSON object of at most
// MaxTokenRequestBytes. On error it returns the status to answer with and
// a message for the client.
func decodeTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, int, error) {
	var req tokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxTokenRequestBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		// Exactly one value: anything after it is a client bug.
		if err = dec.Decode(&struct{}{}); err == io.EOF {
			return req, 0, nil
		} else if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return req, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", MaxTokenRequestBytes)
	case errors.Is(err, io.EOF):
		return req, http.StatusBadRequest, errors.New(`empty body; want {"user":"…","project":"…"}`)
	default:
		return req, http.StatusBadRequest, fmt.Errorf(`bad JSON: %s; want {"user":"…","project":"…"}`, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// mint signs a development token for user in project, valid from now for
// DevTokenTTL. JWT times are whole seconds, so expiresAt is too.
func (s *Server) mint(user devUser, project string) (string, time.Time, error) {
	now := s.opts.Now().Truncate(time.Second)
	exp := now.Add(s.opts.DevTokenTTL)
	projects := []string{project}
	if user.allProjects {
		projects = []string{"*"}
	}
	claims := devClaims{
		Name:        user.Name,
		Permissions: user.Permissions,
		Projects:    projects,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user.Sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.opts.DevSecret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign: %w", err)
	}
	return token, exp, nil
}
