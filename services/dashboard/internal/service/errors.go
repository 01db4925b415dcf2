package service

import "errors"

// Errors of Start, and the reasons Ready gives for not being ready.
var (
	errStarted  = errors.New("already started")
	errShutDown = errors.New("already shut down")
	errStarting = errors.New("starting")
	errStopping = errors.New("shutting down")
)
