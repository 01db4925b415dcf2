package jobrun

import pb "github.com/eventedge/eventedge/proto/gen/eventedgev1"

// Sink receives a run's progress and log lines. Implementations must be
// safe for concurrent use: an exec run reports stdout and stderr from two
// goroutines.
type Sink interface {
	// Progress reports p (0..1) in stage, with an optional message.
	Progress(p float64, stage, message string)
	// Log reports one line (without its newline) of stream.
	Log(stream pb.LogStream, line string)
}
