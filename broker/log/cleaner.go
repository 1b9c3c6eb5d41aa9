package log

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Cleaner applies retention and compaction to a set of logs in the
// background, the work Kafka's log manager (every
// log.retention.check.interval.ms) and its log cleaner threads do.
type Cleaner struct {
	interval time.Duration

	mu   sync.Mutex
	logs map[*Log]struct{}

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewCleaner returns a cleaner that makes a pass every interval once started.
func NewCleaner(interval time.Duration) *Cleaner {
	return &Cleaner{interval: interval, logs: make(map[*Log]struct{})}
}

// Add puts a log in the cleaner's care.
func (c *Cleaner) Add(l *Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logs[l] = struct{}{}
}

// Remove takes a log out of the cleaner's care, before it is closed.
func (c *Cleaner) Remove(l *Log) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.logs, l)
}

// Start runs passes in a goroutine until Stop.
func (c *Cleaner) Start() {
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				if err := c.Pass(now); err != nil {
					slog.Warn("log cleaner pass failed", "err", err)
				}
			}
		}
	}()
}

// Stop ends the background passes and waits for the one under way. Later
// calls do nothing.
func (c *Cleaner) Stop() {
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
	})
}

// Pass applies retention, then compaction, to every log once, and expires
// idle producers (producer.id.expiration.ms).
func (c *Cleaner) Pass(now time.Time) error {
	c.mu.Lock()
	logs := make([]*Log, 0, len(c.logs))
	for l := range c.logs {
		logs = append(logs, l)
	}
	c.mu.Unlock()
	var errs error
	for _, l := range logs {
		if _, err := l.EnforceRetention(now); err != nil && !errors.Is(err, ErrClosed) {
			errs = errors.Join(errs, err)
		}
		if _, err := l.Compact(now); err != nil && !errors.Is(err, ErrClosed) {
			errs = errors.Join(errs, err)
		}
		if _, err := l.ExpireProducers(now); err != nil && !errors.Is(err, ErrClosed) {
			errs = errors.Join(errs, err)
		}
	}
	return errs
}
