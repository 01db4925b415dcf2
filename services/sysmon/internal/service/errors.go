package service

import "errors"

// Reasons Ready gives for not being ready.
var (
	errStarting     = errors.New("starting: no system_status published yet")
	errStopping     = errors.New("stopping")
	errDisconnected = errors.New("not connected to NATS")
)
