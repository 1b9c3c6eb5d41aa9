package client

import (
	"context"
	"errors"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Retriable reports whether a request that failed with err may succeed if
// sent again, to the same broker or to one fresh metadata names: Kafka's
// retriable errors (a leader moved or is being elected, not enough
// replicas yet, a timeout), and a connection refused, lost or timed out (a
// broker died). The course's producer retries its batches on these, and
// its consumer its position lookups.
func Retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	var ne net.Error
	return errors.Is(err, ErrConnClosed) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
