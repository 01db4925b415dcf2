package probe

import "errors"

// errNotVarz: the monitoring URL answered, but not with /varz.
var errNotVarz = errors.New("not a NATS /varz answer (no version)")
