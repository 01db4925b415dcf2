package service

import (
	"time"

	"github.com/eventedge/eventedge/services/dashboard/internal/server"
)

// Options configures a Service. The zero value of each field selects its
// default.
type Options struct {
	// Addr is the public listener (the app, /config.json, the development
	// login). Default ":8082".
	Addr string
	// AdminAddr is the admin listener (/metrics, /healthz, /readyz).
	// Default ":9094".
	AdminAddr string
	// ShutdownTimeout bounds Shutdown's wait for requests in flight on the
	// public listener; what is still open then is closed. Default 10s.
	ShutdownTimeout time.Duration
	// Server configures the public handler. Its Logger and Registerer are
	// set by the service (its logger and its registry).
	Server server.Options
}

// Defaults of Options.
const (
	DefaultAddr            = ":8082"
	DefaultAdminAddr       = ":9094"
	DefaultShutdownTimeout = 10 * time.Second
)

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	return o
}
