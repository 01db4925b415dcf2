package server

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// The edge serves its WebSocket at …/v1/ws and its browser client at
// …/v1/client.js, below the same prefix.
const (
	edgePath   = "/v1/ws"
	clientPath = "/v1/client.js"
)

// ClientURL checks edgeURL, the edge WebSocket URL the app connects to, and
// returns the URL of the edge's browser client (client.js): the same URL
// with /v1/ws replaced by /v1/client.js and ws→http, wss→https. edgeURL is
// an absolute ws:// or wss:// URL or a path starting with "/" (the
// dashboard's own origin, such as behind one ingress); its path ends in
// /v1/ws; it has no query, fragment or user info. A path gives a path.
func ClientURL(edgeURL string) (string, error) {
	e, err := parseEdgeURL(edgeURL)
	if err != nil {
		return "", err
	}
	return e.client, nil
}

// CleanAPIURL checks apiURL, the task API's base URL, and returns it without
// trailing slashes. apiURL is an absolute http:// or https:// URL or a path
// starting with "/" other than "/" itself; it has no query, fragment or user
// info.
func CleanAPIURL(apiURL string) (string, error) {
	a, err := parseAPIURL(apiURL)
	if err != nil {
		return "", err
	}
	return a.url, nil
}

// CheckLoginURL checks loginURL, where "log in again" sends a user in
// production: empty (none), an absolute http:// or https:// URL, or a path
// starting with "/". A query and a fragment are allowed.
func CheckLoginURL(loginURL string) error {
	if loginURL == "" {
		return nil
	}
	_, err := parseURL(loginURL, "http", "https", true)
	return err
}

// edgeURLs is a checked edge URL and what is derived from it. An origin is
// empty for a path: 'self' covers it.
type edgeURLs struct {
	url, origin          string
	client, clientOrigin string
}

func parseEdgeURL(raw string) (edgeURLs, error) {
	u, err := parseURL(raw, "ws", "wss", false)
	if err != nil {
		return edgeURLs{}, err
	}
	path := u.EscapedPath()
	if !strings.HasSuffix(path, edgePath) {
		return edgeURLs{}, fmt.Errorf("%q: %w", clip(raw), errEdgeURLSuffix)
	}
	clientRel := strings.TrimSuffix(path, edgePath) + clientPath
	if u.Scheme == "" {
		return edgeURLs{url: u.String(), client: clientRel}, nil
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	clientOrigin := scheme + "://" + u.Host
	return edgeURLs{
		url:          u.String(),
		origin:       u.Scheme + "://" + u.Host,
		client:       clientOrigin + clientRel,
		clientOrigin: clientOrigin,
	}, nil
}

// apiURLs is a checked task API URL; origin is empty for a path.
type apiURLs struct {
	url, origin string
}

func parseAPIURL(raw string) (apiURLs, error) {
	u, err := parseURL(raw, "http", "https", false)
	if err != nil {
		return apiURLs{}, err
	}
	clean := strings.TrimRight(u.String(), "/")
	if u.Scheme == "" {
		if clean == "" {
			return apiURLs{}, fmt.Errorf("%q: %w", clip(raw), errRootAPIPath)
		}
		return apiURLs{url: clean}, nil
	}
	return apiURLs{url: clean, origin: u.Scheme + "://" + u.Host}, nil
}

// parseURL checks raw: an absolute URL of scheme a or b with a plain host
// (a name or an IP address, an optional port) and no user info, or a path
// starting with "/". A query or fragment is refused unless query is set.
//
// The checks are stricter than url.Parse because the origins go into the
// Content-Security-Policy header and the URLs into the app: a host such as
// "a;b" would inject a directive, and "//host" or "/\host" is another
// origin to a browser although it looks like a path.
func parseURL(raw, a, b string, query bool) (*url.URL, error) {
	want := fmt.Sprintf("want a %s:// or %s:// URL or a path starting with /", a, b)
	if raw == "" {
		return nil, errEmptyURL
	}
	if strings.ContainsAny(raw, " \t\r\n\\") {
		return nil, fmt.Errorf("%q: spaces and backslashes are not allowed", clip(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q: not a URL; %s", clip(raw), want)
	}
	if !query && (u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#")) {
		return nil, fmt.Errorf("%q: a query or fragment is not allowed", clip(raw))
	}
	if u.Scheme == "" {
		if !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
			return nil, fmt.Errorf("%q: %s", clip(raw), want)
		}
		return u, nil
	}
	if (u.Scheme != a && u.Scheme != b) || u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%q: %s", clip(raw), want)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: user info is not allowed", clip(raw))
	}
	if err := checkHost(u); err != nil {
		return nil, fmt.Errorf("%q: %w", clip(raw), err)
	}
	return u, nil
}

// checkHost accepts a DNS name or an IP address (IPv6 in brackets) and an
// optional port 1-65535.
func checkHost(u *url.URL) error {
	host, port := u.Hostname(), u.Port()
	if strings.HasPrefix(u.Host, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("host %q is not an IPv6 address", host)
		}
	} else if !validHostname(host) {
		return fmt.Errorf("host %q: want a name of letters, digits, '.', '-' and '_', or an IP address", host)
	}
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("empty port")
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1-65535", port)
		}
	}
	return nil
}

func validHostname(h string) bool {
	if h == "" || h[0] == '.' || h[0] == '-' {
		return false
	}
	for _, c := range []byte(h) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// clip bounds a value echoed in an error message.
func clip(v string) string {
	if len(v) > 80 {
		return v[:80] + "…"
	}
	return v
}
