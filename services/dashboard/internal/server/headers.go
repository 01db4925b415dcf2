package server

import (
	"net/http"
	"slices"
	"strings"
)

// setCommonHeaders sets the headers every answer carries: no MIME sniffing
// (a file is what its Content-Type says) and no Referer, so the address of
// a dashboard page never leaks to the edge, the task API or a linked site.
func setCommonHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// contentSecurityPolicy is the policy of every HTML page: scripts from the
// dashboard and the edge's client.js only, connections to the dashboard,
// the edge, the task API and client.js's origin, no inline script or style,
// no plugins, no <base>, forms to the dashboard only. An empty origin (a
// URL given as a path) is the dashboard's own, which 'self' covers; an
// origin is listed once.
func contentSecurityPolicy(edgeOrigin, apiOrigin, clientOrigin string) string {
	sources := func(origins ...string) string {
		list := []string{"'self'"}
		for _, o := range origins {
			if o != "" && !slices.Contains(list, o) {
				list = append(list, o)
			}
		}
		return strings.Join(list, " ")
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src " + sources(clientOrigin),
		"connect-src " + sources(edgeOrigin, apiOrigin, clientOrigin),
		"img-src 'self' data:",
		"style-src 'self'",
		"base-uri 'none'",
		"form-action 'self'",
		"object-src 'none'",
	}, "; ")
}
