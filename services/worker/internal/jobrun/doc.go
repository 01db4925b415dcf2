// Package jobrun executes the two job types and reports what happens to a
// Sink: progress (0..1 and a stage) and log lines.
//
//   - demo: a deterministic simulated pipeline (checkout, build, test,
//     deploy) with realistic log lines and timing (Demo.Duration, 6.5 s by
//     default), so a new user sees progress move.
//   - exec: a command from the worker's allow-list (ParseAllowList), named
//     by the job — never a path or command line from the request. Its
//     stdout and stderr lines become log entries; a stdout line
//     "PROGRESS <0..1> <stage>" sets the progress instead. The process runs
//     in its own process group, in a fresh temporary directory, with a
//     minimal environment, and the whole group is killed when the context
//     ends (cancellation, shutdown, or the run time limit).
//
// Runs start no goroutine that outlives them.
package jobrun
