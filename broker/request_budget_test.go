package broker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two requests, each half read and each needing more than is left, must
// not wait for each other forever: one overdraws, and once it is handled
// the other goes on.
func TestRequestBudgetLetsOneRequestOverdraw(t *testing.T) {
	ctx := context.Background()
	q := newRequestBudget(128 << 10)
	var a, b requestClaim
	require.NoError(t, q.take(ctx, &a, 64<<10))
	require.NoError(t, q.take(ctx, &b, 64<<10))

	require.NoError(t, q.take(ctx, &a, 128<<10), "a, already being read, overdraws")
	assert.Equal(t, int64(256<<10), q.inUse())

	bGrew := make(chan error)
	go func() { bGrew <- q.take(ctx, &b, 128<<10) }()
	var c requestClaim
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, q.take(short, &c, 10), context.DeadlineExceeded, "a new request waits while the budget is overdrawn")

	q.release(&a) // a is handled
	require.NoError(t, <-bGrew, "b overdraws in turn")
	q.release(&b)
	assert.Zero(t, q.inUse())
	require.NoError(t, q.take(ctx, &c, 10), "and a new request finds room")
}

// A first part larger than the whole budget waits for all of it, rather
// than forever, and then overdraws.
func TestRequestBudgetTakesAllForAPartLargerThanIt(t *testing.T) {
	ctx := context.Background()
	q := newRequestBudget(1 << 10)
	var a, b requestClaim
	require.NoError(t, q.take(ctx, &a, 10))
	bTook := make(chan error)
	go func() { bTook <- q.take(ctx, &b, 64<<10) }()
	q.release(&a)
	require.NoError(t, <-bTook, "once the whole budget is free")
	assert.Equal(t, int64(64<<10), q.inUse())
	require.NoError(t, q.take(ctx, &b, 128<<10), "and it goes on overdrawing")
	q.release(&b)
	assert.Zero(t, q.inUse())
}

func TestNoRequestBudgetNeverWaits(t *testing.T) {
	q := newRequestBudget(-1) // queued.max.request.bytes=-1, Kafka's default
	var a requestClaim
	require.NoError(t, q.take(context.Background(), &a, 1<<30))
	q.release(&a)
}
