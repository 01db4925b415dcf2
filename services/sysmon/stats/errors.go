package stats

import (
	"errors"
	"fmt"
)

// Reason says why a stats message was refused. It is the reason label of
// sysmon's sysmon_stats_invalid_total metric.
type Reason string

// The reasons a message is refused.
const (
	ReasonTooLarge Reason = "too_large" // over MaxMessageBytes
	ReasonJSON     Reason = "json"      // not a JSON object of the right shape
	ReasonName     Reason = "name"      // node or worker name missing or malformed
	ReasonNegative Reason = "negative"  // a negative or non-finite number
	ReasonTime     Reason = "time"      // at missing or out of range
)

// InvalidError is the error of a refused message. Parse and Validate return
// only this type.
type InvalidError struct {
	Reason Reason
	// Field is the JSON name of the offending field, empty when the message
	// as a whole is wrong.
	Field  string
	Detail string
}

func (e *InvalidError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("invalid stats: %s", e.Detail)
	}
	return fmt.Sprintf("invalid stats: %s: %s", e.Field, e.Detail)
}

// ReasonOf returns the Reason of an *InvalidError in err's chain, or "" when
// there is none.
func ReasonOf(err error) Reason {
	var ie *InvalidError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return ""
}

func invalid(r Reason, field, format string, args ...any) error {
	return &InvalidError{Reason: r, Field: field, Detail: fmt.Sprintf(format, args...)}
}
