package jobrun

import "errors"

// ErrTimeout is the cause of a run stopped by MaxRunTime.
var ErrTimeout = errors.New("run time limit exceeded")
