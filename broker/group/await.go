package group

import "context"

// Await returns the answer Join or Sync sends on answer, or ctx's error if
// ctx ends first (the client went away, the broker is stopping). A
// JoinGroup handler waits here, possibly for a whole rebalance timeout;
// giving up leaves the answer unread in its buffered channel, where it
// blocks nobody.
func Await[T any](ctx context.Context, answer <-chan T) (T, error) {
	select {
	case v := <-answer:
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
