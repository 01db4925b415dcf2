package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
)

// Server is the dashboard's public HTTP handler. Every field is set by New
// and only read afterwards, so a Server is safe for concurrent use.
type Server struct {
	opts Options
	log  zerolog.Logger
	m    *metrics

	index  *asset            // served at /
	login  *asset            // served at /login in development mode; nil otherwise
	assets map[string]*asset // every other file, by URL path
	config []byte            // /config.json
	users  []byte            // /dev/users
	csp    string            // Content-Security-Policy of the HTML pages
}

// New checks opts, reads the app's files and computes every answer that
// does not depend on the request.
func New(opts Options) (*Server, error) {
	opts = opts.WithDefaults()
	edge, err := parseEdgeURL(opts.EdgeURL)
	if err != nil {
		return nil, fmt.Errorf("edge URL: %w", err)
	}
	api, err := parseAPIURL(opts.APIURL)
	if err != nil {
		return nil, fmt.Errorf("API URL: %w", err)
	}
	if err := CheckLoginURL(opts.LoginURL); err != nil {
		return nil, fmt.Errorf("login URL: %w", err)
	}
	switch {
	case opts.Dev && len(opts.DevSecret) < MinDevSecretLen:
		return nil, errDevSecret
	case !opts.Dev && len(opts.DevSecret) > 0:
		return nil, errSecretNotDev
	case opts.DevTokenTTL < MinDevTokenTTL || opts.DevTokenTTL > MaxDevTokenTTL:
		return nil, errDevTokenTTL
	}
	// The secret is the caller's slice: keep a copy nobody else can change.
	opts.DevSecret = bytes.Clone(opts.DevSecret)
	assets, err := loadAssets(opts.Files)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:   opts,
		log:    opts.Logger,
		m:      m,
		assets: assets,
		csp:    contentSecurityPolicy(edge.origin, api.origin, edge.clientOrigin),
		config: configDoc{
			EdgeURL:   edge.url,
			ClientURL: edge.client,
			APIURL:    api.url,
			Dev:       opts.Dev,
			LoginURL:  opts.LoginURL,
			Version:   opts.Version,
		}.encode(),
	}
	// Each page has one URL: / and /login, never /index.html or
	// /login.html (in production /login.html would otherwise show the
	// development login page).
	if s.index = assets["/index.html"]; s.index == nil {
		return nil, errNoIndex
	}
	delete(assets, "/index.html")
	login := assets["/login.html"]
	delete(assets, "/login.html")
	if opts.Dev {
		if s.login = login; s.login == nil {
			return nil, errNoLogin
		}
		users, _ := json.Marshal(devUsers) // strings only: always encodes
		s.users = append(users, '\n')
		for _, u := range devUsers {
			m.devTokens.WithLabelValues(u.ID) // every user's series from the start, at 0
		}
	}
	return s, nil
}

// ServeHTTP routes a request (see the package documentation). Paths are
// matched exactly: there are no redirects, directory listings or cleaned
// paths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w.Header())
	cw := &countingWriter{ResponseWriter: w}
	route := s.route(cw, r)
	s.m.requests.WithLabelValues(route, cw.status()).Inc()
}

// route answers r and returns its route label.
func (s *Server) route(w http.ResponseWriter, r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/":
		if allowRead(w, r, false) {
			s.serveAsset(w, r, s.index)
		}
		return routeIndex
	case (p == "/login" || strings.HasPrefix(p, "/dev/")) && s.opts.Dev && !loopbackHost(r.Host):
		// The development login mints tokens for anyone who asks: only a
		// browser on this machine may, and a page of another site that
		// rebinds its DNS name to 127.0.0.1 still sends its own Host.
		writeJSONError(w, http.StatusForbidden, fmt.Sprintf("the development login answers only on localhost, 127.0.0.1 or [::1], not on %q", clip(r.Host)))
		return routeDevRefused
	case p == "/login" && s.opts.Dev:
		if allowRead(w, r, false) {
			s.serveAsset(w, r, s.login)
		}
		return routeLogin
	case p == "/config.json":
		if allowRead(w, r, true) {
			s.serveConfig(w, r)
		}
		return routeConfig
	case p == "/dev/users" && s.opts.Dev:
		if allowRead(w, r, true) {
			s.serveDevUsers(w, r)
		}
		return routeDevUsers
	case p == "/dev/token" && s.opts.Dev:
		s.serveDevToken(w, r)
		return routeDevToken
	}
	if a := s.assets[p]; a != nil {
		if allowRead(w, r, false) {
			s.serveAsset(w, r, a)
		}
		return routeAsset
	}
	writeTextError(w, http.StatusNotFound)
	return routeNotFound
}

// loopbackHost reports whether host (a Host header: name or address, with
// an optional port) names this machine's loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// allowRead answers 405 unless r is a GET or a HEAD, with a JSON body for
// the JSON endpoints and a text one for the pages and files.
func allowRead(w http.ResponseWriter, r *http.Request, jsonBody bool) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	if jsonBody {
		writeJSONError(w, http.StatusMethodNotAllowed, "method "+clip(r.Method)+" not allowed; use GET")
	} else {
		writeTextError(w, http.StatusMethodNotAllowed)
	}
	return false
}
