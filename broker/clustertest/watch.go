package clustertest

import (
	"context"
	"sync"
	"time"
)

// OfflineWatch samples a partition's leader, as the active controller's
// metadata has it, every 20 ms until stopped, and counts the samples with
// no leader: the measure of "never without a leader" that a controlled
// shutdown or a reassignment must meet.
type OfflineWatch struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	offline int
	samples int
}

// WatchOffline starts sampling topic's partition.
func (c *Cluster) WatchOffline(topic string, partition int32) *OfflineWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &OfflineWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if p, ok := c.Partition(0, topic, partition); ok {
				w.mu.Lock()
				w.samples++
				if p.Leader < 0 {
					w.offline++
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Stop stops sampling and returns how many samples had no leader, of how
// many.
func (w *OfflineWatch) Stop() (offline, samples int) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.offline, w.samples
}

// NotController returns a running broker that is not the active
// controller, once there is one: requests sent to it that only the
// controller answers must be forwarded (KIP-590).
func (c *Cluster) NotController() int32 {
	c.t.Helper()
	var found int32
	c.WaitFor(20*time.Second, "an active controller", func() bool {
		for _, id := range c.IDs() {
			if b := c.Broker(id); b != nil && b.ActiveController() > 0 && b.ActiveController() != id {
				found = id
				return true
			}
		}
		return false
	})
	return found
}
