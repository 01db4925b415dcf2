package server

import (
	"io/fs"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/eventedge/eventedge/services/dashboard/web"
)

// Options configures a Server. The zero value of each field selects its
// default; New checks the URLs and the development settings.
type Options struct {
	// EdgeURL is the edge WebSocket URL the app connects to: an absolute
	// ws:// or wss:// URL or a path starting with "/" (the dashboard's own
	// origin), ending in /v1/ws. The app imports client.js from the same
	// place (see ClientURL). Default DefaultEdgeURL.
	EdgeURL string
	// APIURL is the task API's base URL: an absolute http:// or https://
	// URL or a path starting with "/"; trailing slashes are removed.
	// Default DefaultAPIURL.
	APIURL string
	// Dev enables development mode: the login page (/login) and the
	// development login API (/dev/users, /dev/token), with which anyone who
	// reaches the dashboard can mint a token for any demo user. Default
	// false: both answer 404.
	Dev bool
	// DevSecret is the HS256 secret of the development tokens: required
	// with Dev, at least MinDevSecretLen bytes, and refused without Dev.
	// The edge and the task API must verify tokens with the same secret.
	DevSecret []byte
	// DevTokenTTL is the lifetime of a development token, between
	// MinDevTokenTTL and MaxDevTokenTTL. Default DefaultDevTokenTTL.
	DevTokenTTL time.Duration
	// LoginURL is where "log in again" sends a user in production: an
	// absolute http(s) URL or a path. Default empty: the app asks the user
	// to reopen the dashboard from their application.
	LoginURL string
	// Version is reported in /config.json. Default DefaultVersion.
	Version string
	// Files are the app's files, index.html at the root. Default
	// web.Files(), the embedded app.
	Files fs.FS
	// Logger receives a line per development token minted (never the
	// token). Default: the zero Logger, which discards.
	Logger zerolog.Logger
	// Registerer receives the request and token counters. Default nil: they
	// are counted but not registered.
	Registerer prometheus.Registerer
	// Now is the clock of the development tokens. Default time.Now.
	Now func() time.Time
}

// Defaults and limits of Options.
const (
	DefaultEdgeURL     = "ws://localhost:8080/v1/ws"
	DefaultAPIURL      = "http://localhost:8081"
	DefaultDevTokenTTL = time.Hour
	DefaultVersion     = "dev"

	MinDevSecretLen = 32
	MinDevTokenTTL  = time.Minute
	MaxDevTokenTTL  = 24 * time.Hour
)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.EdgeURL == "" {
		o.EdgeURL = DefaultEdgeURL
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if o.DevTokenTTL == 0 {
		o.DevTokenTTL = DefaultDevTokenTTL
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Files == nil {
		o.Files = web.Files()
	}
	return o
}
