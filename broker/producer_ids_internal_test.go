package broker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// fakeController allocates blocks of 100 producer ids, one after the
// other, and counts the requests.
type fakeController struct {
	requests atomic.Int32
	next     atomic.Int64
}

func (f *fakeController) allocate(context.Context) (metadata.ProducerIDBlock, error) {
	f.requests.Add(1)
	first := f.next.Add(100) - 100
	return metadata.ProducerIDBlock{Broker: 1, First: first, Size: 100}, nil
}

// newTestProducerIDs returns an allocator on allocate, stopped with the test.
func newTestProducerIDs(t *testing.T, allocate func(context.Context) (metadata.ProducerIDBlock, error)) *producerIDs {
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	t.Cleanup(func() { cancel(); bg.Wait() })
	return newProducerIDs(ctx, &bg, slog.New(slog.DiscardHandler), allocate)
}

func generateN(t *testing.T, p *producerIDs, n int) []int64 {
	t.Helper()
	var ids []int64
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		id, err := p.generate(ctx)
		cancel()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// TestProducerIDsPrefetchTheNextBlock: the 91st id of a block of 100 sets
// off the request for the next block, so that the 101st is there already.
func TestProducerIDsPrefetchTheNextBlock(t *testing.T) {
	var ctrl fakeController
	p := newTestProducerIDs(t, ctrl.allocate)

	ids := generateN(t, p, 90)
	assert.Equal(t, int64(0), ids[0])
	assert.Equal(t, int64(89), ids[89])
	assert.Equal(t, int32(1), ctrl.requests.Load(), "the first 90% of a block asks for nothing more")

	generateN(t, p, 1) // id 90
	deadline := time.Now().Add(5 * time.Second)
	for ctrl.requests.Load() < 2 {
		require.True(t, time.Now().Before(deadline), "no request for the next block after 90%")
		time.Sleep(time.Millisecond) // polling interval
	}
	ids = generateN(t, p, 100) // 91..99, then 100..190 from the block fetched ahead
	assert.Equal(t, int64(99), ids[8])
	assert.Equal(t, int64(100), ids[9], "the next block follows")
	assert.Equal(t, int64(190), ids[99])
}

// TestProducerIDsWithoutAController: while no block comes, a producer hears
// COORDINATOR_LOAD_IN_PROGRESS, which it retries, when its wait is over
// (the controller does not answer) or at once (the controller said no).
func TestProducerIDsWithoutAController(t *testing.T) {
	hang := newTestProducerIDs(t, func(ctx context.Context) (metadata.ProducerIDBlock, error) {
		<-ctx.Done()
		return metadata.ProducerIDBlock{}, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := hang.generate(ctx)
	assert.ErrorIs(t, err, kerr.CoordinatorLoadInProgress)
	assert.ErrorContains(t, err, "the controller has not answered yet")

	refused := newTestProducerIDs(t, func(context.Context) (metadata.ProducerIDBlock, error) {
		return metadata.ProducerIDBlock{}, kerr.NotController
	})
	_, err = refused.generate(context.Background())
	assert.ErrorIs(t, err, kerr.CoordinatorLoadInProgress)
	assert.ErrorContains(t, err, "NOT_CONTROLLER")
}

// TestProducerIDsRefuseABlockBelowTheirs: a block that does not come after
// the current one may hold ids handed out already; it is not used.
func TestProducerIDsRefuseABlockBelowTheirs(t *testing.T) {
	var calls atomic.Int32
	p := newTestProducerIDs(t, func(context.Context) (metadata.ProducerIDBlock, error) {
		if calls.Add(1) == 1 {
			return metadata.ProducerIDBlock{Broker: 1, First: 1000, Size: 10}, nil
		}
		return metadata.ProducerIDBlock{Broker: 1, First: 1005, Size: 10}, nil // overlaps 1000..1009
	})
	ids := generateN(t, p, 10)
	assert.Equal(t, int64(1009), ids[9])
	_, err := p.generate(context.Background())
	require.ErrorIs(t, err, kerr.CoordinatorLoadInProgress)
	assert.ErrorContains(t, err, "not after the current block")
	assert.NoError(t, checkBlock(metadata.ProducerIDBlock{}, metadata.ProducerIDBlock{First: 0, Size: 10}), "any block comes after none")
}
