package host

import "errors"

// ErrFormat is wrapped by every parse error: the file does not look like the
// kernel's.
var ErrFormat = errors.New("unexpected /proc format")
