package worker

import "errors"

// Causes of a stopped job.
var (
	errCancelled  = errors.New("cancelled")
	errTaskGone   = errors.New("the task was deleted")
	errSuperseded = errors.New("the task was run again")
	errShutdown   = errors.New("the worker is stopping")
)

// Guards of the status transitions.
var (
	errStale     = errors.New("the task runs another execution")
	errSucceeded = errors.New("the execution already succeeded")
	errFinished  = errors.New("the execution already finished")
)
