package broker

import (
	"context"
	"sync"
)

// requestBudget is queued.max.request.bytes: the bytes of requests the
// broker holds, read or being read but not yet handled, across all
// connections (Kafka's MemoryPool). A connection takes the bytes of its
// request's buffer from the budget before it reads into that buffer, and
// gives them back once the request is handled. A connection that finds no
// room waits, and reads nothing meanwhile: its client's bytes wait in the
// socket and, once that is full, in the client (backpressure), instead of
// in the broker's memory. A nil *requestBudget is no budget at all
// (Kafka's -1): nothing waits.
//
// Bytes are taken as the buffer grows (readFrame), not for the size a
// request declares: a client that declares 100 MiB and sends nothing holds
// 64 KiB of the budget, so declarations alone cannot starve other clients.
// Kafka takes the declared size at once, and so does not face what taking
// as the bytes arrive brings: two requests each half read, each waiting
// for the other's bytes to fit the rest, would wait forever. So one
// request at a time may overdraw the budget: a request already being read
// that needs more, when none other overdraws, takes it even if the budget
// is short, and keeps that right until it is handled. It never waits on
// the budget again, finishes, and gives everything back. The broker holds
// at most the budget plus one request (socket.request.max.bytes).
//
// A request does not queue behind another: the first to fit goes first,
// so a small request is not stuck behind a large one that does not fit.
type requestBudget struct {
	size int64 // the whole budget

	mu   sync.Mutex
	free int64 // below zero while a request overdraws
	// overdrawer is the request that may overdraw, nil if none.
	overdrawer *requestClaim
	// freed is closed and replaced each time bytes are given back or the
	// overdraft is free again: a connection waiting for room waits on it,
	// then looks again.
	freed chan struct{}
}

// requestClaim is what one request has taken from the budget.
type requestClaim struct {
	bytes int64
}

// newRequestBudget returns a budget of size bytes, or nil (no budget) for
// a size of zero or less.
func newRequestBudget(size int64) *requestBudget {
	if size <= 0 {
		return nil
	}
	return &requestBudget{size: size, free: size, freed: make(chan struct{})}
}

// take waits until n bytes are free and takes them for the request c, or
// returns ctx's error. The first bytes of a request wait for room; later
// ones overdraw the budget if it is short and no other request overdraws
// it. A first part larger than the whole budget (a budget smaller than
// firstChunk) waits for all of it to be free, then overdraws.
func (q *requestBudget) take(ctx context.Context, c *requestClaim, n int64) error {
	if q == nil {
		return nil
	}
	for {
		q.mu.Lock()
		first := c.bytes == 0
		ok := false
		switch {
		case q.free >= n:
			ok = true
		case q.overdrawer == c:
			ok = true // it overdraws already, and goes on to the end
		case q.overdrawer == nil && (!first || q.free == q.size):
			q.overdrawer, ok = c, true
		}
		if ok {
			q.free -= n
			c.bytes += n
			q.mu.Unlock()
			return nil
		}
		freed := q.freed
		q.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns n of the bytes the request c took: the buffer it has
// outgrown.
func (q *requestBudget) give(c *requestClaim, n int64) {
	if q == nil || n == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	c.bytes -= n
	q.free += n
	q.wake()
}

// release returns all the request c took, once it is handled (or its
// connection closed), and with it the right to overdraw if c had it.
func (q *requestBudget) release(c *requestClaim) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.free += c.bytes
	c.bytes = 0
	if q.overdrawer == c {
		q.overdrawer = nil
	}
	q.wake()
}

// wake tells the waiting connections to look again; q.mu is held.
func (q *requestBudget) wake() {
	close(q.freed)
	q.freed = make(chan struct{})
}

// inUse is how many bytes are taken, overdraft included.
func (q *requestBudget) inUse() int64 {
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.size - q.free
}
