package clustertest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/log"
)

// The reliability tests of lesson 09: the bugs other Kafka implementations
// shipped in their idempotent producer path, reproduced against klab.

// producerID is a producer id no InitProducerId hands out in these tests
// (blocks start at 0): the raw batches below need no session.
const producerID = 1 << 40

// idempotentBatch is batch number i (from 0) of an idempotent producer
// that sends n records a batch: sequences i*n to i*n+n-1, values
// "b<i>-<record>".
func idempotentBatch(epoch int16, i, n int) []byte {
	now := time.Now()
	records := make([]log.Record, n)
	for r := range records {
		records[r] = log.Record{Timestamp: now, Value: []byte("b" + strconv.Itoa(i) + "-" + strconv.Itoa(r))}
	}
	return log.EncodeIdempotentBatch(producerID, epoch, int32(i*n), records...)
}

// Redpanda #3039: five batches in flight, all written and replicated, and
// the leader dies before the producer reads a single answer. The producer
// retries all five to the new leader, which built the same producer state
// from what it replicated: each retry is answered with its first offset,
// and every record is in the log once.
func TestRetriesOfFiveBatchesInFlightLandOnceOnTheNewLeader(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	c.WaitFullISR("events", 0, 30*time.Second)
	var offsets []int64
	for i := range 5 {
		offset, err := c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, i, 3))
		require.NoError(t, err)
		offsets = append(offsets, offset)
	}
	c.WaitFullISR("events", 0, 30*time.Second)
	c.Kill(1) // the answers above are the ones the producer never read
	leader := c.WaitLeader("events", 0, 30*time.Second, func(id int32) bool { return id != 1 })

	for _, i := range []int{0, 1, 2, 3, 4} {
		offset, err := c.ProduceBatch(leader, "events", 0, -1, idempotentBatch(0, i, 3))
		require.NoError(t, err, "batch %d, retried to broker %d", i, leader)
		assert.Equal(t, offsets[i], offset, "batch %d, retried to broker %d, is answered with its first offset", i, leader)
	}
	next, err := c.ProduceBatch(leader, "events", 0, -1, idempotentBatch(0, 5, 3))
	require.NoError(t, err, "the batch after the five continues the sequence")
	assert.Equal(t, int64(15), next)

	records := c.ReadAll("events", 0)
	require.Len(t, records, 18, "15 records retried once each, and 3 new: every record once")
	for i, r := range records {
		assert.Equal(t, "b"+strconv.Itoa(i/3)+"-"+strconv.Itoa(i%3), string(r.Value), "offset %d", r.Offset)
	}
}

// A broker that crashes and restarts rebuilds its producer state from the
// last snapshot and the batches after it: retries sent to it after the
// restart are still recognised.
func TestRestartedBrokerStillRecognisesRetries(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 1})
	c.CreateTopic("events", 0, 0, [][]int32{{1}}, map[string]*string{"segment.bytes": ptr("1024")})
	var offsets []int64
	for i := range 30 {
		offset, err := c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, i, 2))
		require.NoError(t, err)
		offsets = append(offsets, offset)
	}
	c.Kill(1)
	c.Restart(1)
	c.WaitLeader("events", 0, 30*time.Second, nil)
	for i := 25; i < 30; i++ {
		offset, err := c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, i, 2))
		require.NoError(t, err, "batch %d, retried after the restart", i)
		assert.Equal(t, offsets[i], offset, "batch %d, retried after the restart", i)
	}
	_, err := c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, 31, 2))
	require.ErrorIs(t, err, kerr.OutOfOrderSequenceNumber, "batch 31 without batch 30")
	assert.Len(t, c.ReadAll("events", 0), 60)
}

// A zombie: the producer's earlier session, still sending after a newer
// one (a higher epoch) has written, is fenced with INVALID_PRODUCER_EPOCH,
// on the leader and on the leader after it.
func TestZombieProducerIsFenced(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	c.WaitFullISR("events", 0, 30*time.Second)
	_, err := c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, 0, 1))
	require.NoError(t, err)
	_, err = c.ProduceBatch(1, "events", 0, -1, idempotentBatch(1, 0, 1))
	require.NoError(t, err)
	_, err = c.ProduceBatch(1, "events", 0, -1, idempotentBatch(0, 1, 1))
	require.ErrorIs(t, err, kerr.InvalidProducerEpoch)

	c.WaitFullISR("events", 0, 30*time.Second)
	c.Kill(1)
	leader := c.WaitLeader("events", 0, 30*time.Second, func(id int32) bool { return id != 1 })
	_, err = c.ProduceBatch(leader, "events", 0, -1, idempotentBatch(0, 1, 1))
	require.ErrorIs(t, err, kerr.InvalidProducerEpoch, "the new leader fences the zombie too")
	// An acks=all write moves the new leader's high watermark past all
	// three records, so that a consumer sees them.
	_, err = c.ProduceBatch(leader, "events", 0, -1, idempotentBatch(1, 1, 1))
	require.NoError(t, err)
	assert.Len(t, c.ReadAll("events", 0), 3, "two records of the new session, one of the first, none of the zombie")
}

// Redpanda #5355: leadership moves back and forth under an idempotent
// producer's load (franz-go, its defaults: five requests in flight). The
// producer sees only errors it retries, and the partition holds every
// acknowledged record once, with no gap. (Redpanda's broker answered
// UNKNOWN_SERVER_ERROR while a partition moved, and the Java client of the
// day, KAFKA-14034, then wrote duplicates: a broker must answer a move
// with NOT_LEADER_OR_FOLLOWER, which clients retry safely.)
func TestLeadershipMovesUnderIdempotentLoad(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartIdempotentLoad("events", 0)
	load.WaitAcked(c, 300, 20*time.Second)
	adm := kadm.NewClient(c.Client())
	for round := range 3 {
		c.WaitFullISR("events", 0, 30*time.Second)
		c.Kill(1)
		c.WaitLeader("events", 0, 30*time.Second, func(id int32) bool { return id != 1 })
		load.WaitAcked(c, 200, 30*time.Second)
		c.Restart(1)
		c.WaitFullISR("events", 0, 30*time.Second)
		// Back to the preferred leader, while the producer writes.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"events": {0: {}}})
		cancel()
		require.NoError(t, err, "round %d", round)
		c.WaitLeader("events", 0, 30*time.Second, func(id int32) bool { return id == 1 })
		load.WaitAcked(c, 200, 30*time.Second)
	}
	load.Stop()
	rep := load.Check(c)
	assert.Zero(t, rep.Failed, "an idempotent producer only sees errors it retries")
	assert.Zero(t, rep.Duplicates, "an idempotent producer's retries land once")
	assert.Equal(t, rep.Acked, rep.Read, "every record read was acknowledged, none twice, no gap")
	c.WaitConverged("events", 0, 30*time.Second)
}
