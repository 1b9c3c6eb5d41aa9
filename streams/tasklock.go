package streams

import (
	"context"
	"path/filepath"
	"sync"
	"time"
)

// taskLockWait bounds how long a thread waits for another thread of the
// process to close a task it was given: long enough for a rebalance's
// stragglers, short enough to be an error rather than a hang.
const taskLockWait = 30 * time.Second

// taskLocks are the task directories in use in this process, each with a
// channel closed when it is released, as Kafka's StateDirectory locks a
// task's directory: a task that moves between two threads of one process
// in a rebalance must be closed by one (its stores closed, its checkpoint
// written) before the other opens it. Pebble's own lock would only make
// the second open fail.
var taskLocks = struct {
	sync.Mutex
	held map[string]chan struct{}
}{held: map[string]chan struct{}{}}

// lockTaskDir waits until no other task of this process uses dir, up to
// taskLockWait or until ctx ends, and takes it. release gives it back.
func lockTaskDir(ctx context.Context, dir string) (release func(), err error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	ctx, cancel := context.WithTimeout(ctx, taskLockWait)
	defer cancel()
	for {
		taskLocks.Lock()
		busy, held := taskLocks.held[dir]
		if !held {
			mine := make(chan struct{})
			taskLocks.held[dir] = mine
			taskLocks.Unlock()
			return func() {
				taskLocks.Lock()
				delete(taskLocks.held, dir)
				taskLocks.Unlock()
				close(mine)
			}, nil
		}
		taskLocks.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, errorf("state directory %s is still in use by another task: %w", dir, ctx.Err())
		}
	}
}
