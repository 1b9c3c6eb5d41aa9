// The tests of lesson 08, reading from followers (KIP-392): a three-rack
// cluster in this process (package clustertest) whose brokers use the
// rack-aware replica selector.
package followerreads_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// racks starts brokers 1, 2, 3 in racks a, b, c with the rack-aware
// replica selector, and a topic whose only partition they all hold, led by 1,
// with 20 records in it.
func racks(t *testing.T) *clustertest.Cluster {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Racks: []string{"a", "b", "c"}, Configure: func(cfg *broker.Config) {
		cfg.ReplicaSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
	}})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	cl := c.Client(kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 20 {
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(strconv.Itoa(i))).FirstErr())
	}
	c.WaitConverged("orders", 0, 10*time.Second)
	// A follower learns the high watermark in the answer to its next fetch.
	c.WaitFor(10*time.Second, "the followers to learn the high watermark", func() bool {
		for _, id := range c.IDs() {
			if r, _ := c.Broker(id).Replica("orders", 0); r.HighWatermark != 20 {
				return false
			}
		}
		return true
	})
	return c
}

// fetch sends one consumer Fetch (v11+, which carries the rack) for
// orders-0 from offset 0 to broker id.
func fetch(t *testing.T, c *clustertest.Cluster, id int32, rack string) kmsg.FetchResponseTopicPartition {
	t.Helper()
	cl := c.Client(kgo.SeedBrokers(c.Addr(id)))
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.Rack = -1, 100, 1<<20, rack
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	return resp.Topics[0].Partitions[0]
}

// TestTheLeaderSendsAConsumerToItsRack: a consumer in rack c asking the
// leader (rack a) is told to read from broker 3, in rack c, and gets no
// records from the leader; a consumer in rack a stays with the leader.
func TestTheLeaderSendsAConsumerToItsRack(t *testing.T) {
	c := racks(t)
	sp := fetch(t, c, 1, "c")
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.Equal(t, int32(3), sp.PreferredReadReplica, "broker 3 is the replica in rack c")
	require.Empty(t, sp.RecordBatches, "a redirected fetch carries no records")

	sp = fetch(t, c, 1, "a")
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.Equal(t, int32(-1), sp.PreferredReadReplica, "the leader is in rack a itself")
	require.NotEmpty(t, sp.RecordBatches)

	// The follower in rack c serves the consumer, up to its high watermark.
	sp = fetch(t, c, 3, "c")
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.NotEmpty(t, sp.RecordBatches)
	require.Equal(t, int64(20), sp.HighWatermark)
}

// TestAConsumerWithClientRackReadsEverything: franz-go with client.rack
// (kgo.Rack) follows the leader's redirection and reads every record;
// when the replica in its rack dies, it is sent elsewhere and still reads.
func TestAConsumerWithClientRackReadsEverything(t *testing.T) {
	c := racks(t)
	sp := fetch(t, c, 1, "b")
	require.Equal(t, int32(2), sp.PreferredReadReplica, "broker 2 is the replica in rack b")

	read := func() int {
		cl := c.Client(kgo.Rack("b"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		n := 0
		for n < 20 && ctx.Err() == nil {
			n += cl.PollFetches(ctx).NumRecords()
		}
		return n
	}
	require.Equal(t, 20, read())

	c.Kill(2)
	c.WaitFor(10*time.Second, "broker 2 out of the ISR", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return !slices.Contains(r.ISR, 2)
	})
	sp = fetch(t, c, 1, "b")
	require.Equal(t, int32(-1), sp.PreferredReadReplica, "no live in-sync replica in rack b: read from the leader")
	require.Equal(t, 20, read())
}
