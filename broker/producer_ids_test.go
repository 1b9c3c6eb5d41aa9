package broker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	kclient "klab.dev/klab/broker/client" // the course's own client; client is broker_test.go's kgo helper
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/controller"
)

// initProducerID sends one InitProducerId at the given version and returns
// the producer id and epoch, or the error the broker answered.
func initProducerID(ctx context.Context, conn *kclient.Conn, version int16, req *kmsg.InitProducerIDRequest) (int64, int16, error) {
	raw, err := conn.RequestAt(ctx, req, version)
	if err != nil {
		return 0, 0, err
	}
	resp := raw.(*kmsg.InitProducerIDResponse)
	return resp.ProducerID, resp.ProducerEpoch, kerr.ErrorForCode(resp.ErrorCode)
}

// producerIDs asks the broker at addr for n producer ids, one request at a
// time, as n idempotent producers starting would, and returns them in the
// order they came. A retriable error (no block of ids yet, the controller
// being elected) is retried, as clients do, until ctx ends.
func producerIDs(ctx context.Context, addr string, n int) ([]int64, error) {
	conn, err := kclient.Dial(ctx, addr, "producer-ids-test")
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ids := make([]int64, 0, n)
	for len(ids) < n {
		id, epoch, err := initProducerID(ctx, conn, 4, kmsg.NewPtrInitProducerIDRequest())
		var ke *kerr.Error
		switch {
		case errors.As(err, &ke) && ke.Retriable && ctx.Err() == nil:
			time.Sleep(20 * time.Millisecond) // the client's retry backoff
			continue
		case err != nil:
			return ids, fmt.Errorf("%s, after %d ids: %w", addr, len(ids), err)
		case epoch != 0:
			return ids, fmt.Errorf("%s: producer id %d came with epoch %d, not 0", addr, id, epoch)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// fromBrokers asks each broker for n producer ids, all brokers at once, and
// returns each broker's ids.
func fromBrokers(t *testing.T, c *clustertest.Cluster, brokers []int32, n int) map[int32][]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	out := map[int32][]int64{}
	var errs []error
	var wg sync.WaitGroup
	for _, id := range brokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, err := producerIDs(ctx, c.Addr(id), n)
			mu.Lock()
			defer mu.Unlock()
			out[id] = ids
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	return out
}

// checkUnique fails the test if two producers got the same id, or if two
// brokers handed out ids from the same block: blocks are
// controller.ProducerIDBlockSize ids from 0, so an id's block is
// id / ProducerIDBlockSize. It returns the brokers each block went to.
func checkUnique(t *testing.T, rounds ...map[int32][]int64) map[int64]int32 {
	t.Helper()
	seen := map[int64]int32{}
	owner := map[int64]int32{}
	for _, round := range rounds {
		for broker, ids := range round {
			for _, id := range ids {
				if other, dup := seen[id]; dup {
					t.Fatalf("producer id %d handed out twice, by brokers %d and %d", id, other, broker)
				}
				seen[id] = broker
				block := id / controller.ProducerIDBlockSize
				if other, ok := owner[block]; ok && other != broker {
					t.Fatalf("block %d (ids %d to %d) handed out by brokers %d and %d", block, block*controller.ProducerIDBlockSize, (block+1)*controller.ProducerIDBlockSize-1, other, broker)
				}
				owner[block] = broker
			}
		}
	}
	return owner
}

// TestInitProducerIDVersions: every version from 0 to 5 gets a new
// producer id and epoch 0, even when it names the producer id and epoch
// the producer had (v3+): without a transactional id, Kafka gives a new
// producer id. A transactional id is refused until lesson 16.
func TestInitProducerIDVersions(t *testing.T) {
	b := start(t, t.TempDir())
	ctx := ctxT(t)
	conn, err := kclient.Dial(ctx, b.Addr(), "producer-ids-test")
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, int16(5), conn.Version(int16(kmsg.InitProducerID)), "ApiVersions lists InitProducerId up to v5")

	seen := map[int64]bool{}
	for version := int16(0); version <= 5; version++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.ProducerID, req.ProducerEpoch = 7, 3 // the id and epoch a v3+ producer had; ignored without a transactional id
		id, epoch, err := initProducerID(ctx, conn, version, req)
		require.NoError(t, err, "v%d", version)
		assert.GreaterOrEqual(t, id, int64(0), "v%d", version)
		assert.False(t, seen[id], "v%d: producer id %d handed out before", version, id)
		assert.Zero(t, epoch, "v%d: a new producer id starts at epoch 0", version)
		seen[id] = true

		txn := kmsg.NewPtrInitProducerIDRequest()
		txn.TransactionalID = kmsg.StringPtr("orders-tx")
		id, epoch, err = initProducerID(ctx, conn, version, txn)
		assert.ErrorIs(t, err, kerr.TransactionalIDAuthorizationFailed, "v%d: transactions arrive in lesson 16", version)
		assert.Equal(t, [2]int64{-1, -1}, [2]int64{id, int64(epoch)}, "v%d: no producer id, no epoch", version)

		txn.TransactionalID = kmsg.StringPtr("")
		_, _, err = initProducerID(ctx, conn, version, txn)
		assert.ErrorIs(t, err, kerr.InvalidRequest, "v%d: an empty transactional id is neither idempotent nor transactional", version)
	}
}

// TestProducerIDsAreUniqueAcrossBrokers: a one-broker cluster and a
// three-broker one hand out 2,500 producer ids from each broker, so that
// each broker goes through three blocks of 1,000; no id is handed out
// twice, no block by two brokers, and the metadata log knows every block.
func TestProducerIDsAreUniqueAcrossBrokers(t *testing.T) {
	for _, brokers := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d brokers", brokers), func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Brokers: brokers})
			round := fromBrokers(t, c, c.IDs(), 2500)
			owner := checkUnique(t, round)
			assert.GreaterOrEqual(t, len(owner), 3*brokers, "each broker went through at least three blocks")
			var last int64
			for _, ids := range round {
				last = max(last, ids[len(ids)-1])
			}
			for _, id := range c.IDs() {
				assert.Greater(t, c.Broker(id).Metadata().NextProducerID, last, "broker %d's image has every block allocated", id)
			}
		})
	}
}

// TestProducerIDsSurviveControllerFailover: the active controller, which
// allocated every block so far and handed out ids itself, is killed; the
// survivors go on handing out ids, from the blocks they hold and then from
// blocks the new controller allocates. No id is handed out twice, and the
// new controller's blocks start after every block the old one allocated:
// it knows them from the metadata log, which it applied before allocating.
func TestProducerIDsSurviveControllerFailover(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	before := fromBrokers(t, c, c.IDs(), 1500)

	old := c.Broker(1).ActiveController()
	require.Positive(t, old)
	oldBroker := c.Broker(old)
	c.Kill(old)
	// The old controller applied every block it gave: it answered only
	// once the block was in its image. Blocks it committed but never
	// applied were given to nobody.
	oldNext := oldBroker.Metadata().NextProducerID
	var survivors []int32
	for _, id := range c.IDs() {
		if id != old {
			survivors = append(survivors, id)
		}
	}

	after := fromBrokers(t, c, survivors, 2500)
	owner := checkUnique(t, before, after)
	newBlocks := int64(0)
	for block := range owner {
		if block*controller.ProducerIDBlockSize >= oldNext {
			newBlocks++
		}
	}
	assert.GreaterOrEqual(t, newBlocks, int64(len(survivors)), "each survivor needed a block from the new controller")
	for _, id := range survivors {
		b := c.Broker(id)
		assert.NotEqual(t, old, b.ActiveController(), "broker %d knows the new controller", id)
		assert.GreaterOrEqual(t, b.Metadata().NextProducerID, oldNext+newBlocks*controller.ProducerIDBlockSize,
			"broker %d: the new controller's blocks come after the old controller's", id)
		ids := append(before[id], after[id]...)
		for i := 1; i < len(ids); i++ {
			require.Greater(t, ids[i], ids[i-1], "broker %d hands out ids upwards, block after block", id)
		}
	}
}

// TestKgoProducesIdempotently: franz-go's producer is idempotent by
// default (franz-go 1.22 sends InitProducerId v5); its records arrive, once
// each.
func TestKgoProducesIdempotently(t *testing.T) {
	b := start(t, t.TempDir())
	ctx := ctxT(t)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctx, 2, 1, nil, "idempotent")
	require.NoError(t, err)

	p := client(t, b, kgo.DefaultProduceTopic("idempotent"))
	const n = 200
	for i := range n {
		p.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	require.NoError(t, p.Flush(ctx))

	cons := client(t, b, kgo.ConsumeTopics("idempotent"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	for total := 0; total < n; {
		fs := cons.PollFetches(ctx)
		require.NoError(t, fs.Err0(), "after %d records", total)
		fs.EachRecord(func(r *kgo.Record) {
			assert.GreaterOrEqual(t, r.ProducerID, int64(0), "record %s was written with its producer's id", r.Value)
			seen[string(r.Value)]++
			total++
		})
	}
	assert.Len(t, seen, n)
	for v, times := range seen {
		assert.Equal(t, 1, times, "record %s", v)
	}
}
