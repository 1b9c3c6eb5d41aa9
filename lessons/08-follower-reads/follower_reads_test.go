// The tests of lesson 08, reading from followers (KIP-392): a cluster in
// this process (package clustertest) whose brokers sit in racks, and whose
// leaders run the rack-aware replica selector.
package followerreads_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

const rackAware = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// racks starts brokers 1, 2, 3 in racks a, b, a. Brokers 1 and 2 run the
// rack-aware replica selector; broker 3 runs none, Kafka's default. Topic
// orders has one partition on replicas 1,2,3, led by 1; topic plain one
// on replicas 3,2,1, led by 3. Each has 20 records, and every replica
// knows high watermark 20.
func racks(t *testing.T, lag time.Duration) *clustertest.Cluster {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Racks: []string{"a", "b", "a"}, Configure: func(cfg *broker.Config) {
		if cfg.NodeID != 3 {
			cfg.ReplicaSelector = rackAware
		}
		cfg.ReplicaLagTimeMax = lag
	}})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.CreateTopic("plain", 0, 0, [][]int32{{3, 2, 1}}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, topic := range []string{"orders", "plain"} {
		cl := c.Client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
		for i := range 20 {
			require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(strconv.Itoa(i))).FirstErr())
		}
		c.WaitConverged(topic, 0, 10*time.Second)
		// A follower learns the high watermark in the answer to its next fetch.
		c.WaitFor(10*time.Second, "the followers to learn the high watermark", func() bool {
			for _, id := range c.IDs() {
				if r, _ := c.Broker(id).Replica(topic, 0); r.HighWatermark != 20 {
					return false
				}
			}
			return true
		})
	}
	return c
}

// fetch sends one consumer Fetch (v11+, which carries the rack) for
// topic-0 from offset 0 to broker id.
func fetch(t *testing.T, c *clustertest.Cluster, id int32, topic, rack string) kmsg.FetchResponseTopicPartition {
	t.Helper()
	cl := c.Client(kgo.SeedBrokers(c.Addr(id)))
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes, req.Rack = -1, 100, 1<<20, rack
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(t, cl, topic)
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// To broker id itself: once the client has metadata, a request sent
	// with RequestWith may go to any broker.
	raw, err := cl.Broker(int(id)).Request(ctx, req)
	require.NoError(t, err)
	return raw.(*kmsg.FetchResponse).Topics[0].Partitions[0]
}

// stays checks that the leader kept a consumer: no preferred read replica
// (-1, not 0, not the leader's own id), and the records themselves.
func stays(t *testing.T, sp kmsg.FetchResponseTopicPartition, why string) {
	t.Helper()
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.Equal(t, int32(-1), sp.PreferredReadReplica, why)
	require.NotEmpty(t, sp.RecordBatches, "a consumer the leader keeps gets its records")
}

// TestTheLeaderSendsAConsumerToItsRack: a consumer in rack b asking the
// leader (rack a) is told to read from broker 2, in rack b, and gets no
// records from the leader; a consumer in rack a stays with the leader,
// although broker 3 is in rack a too; a consumer in a rack where no
// replica is stays with the leader. Broker 2 serves the consumer in rack b
// up to its high watermark.
func TestTheLeaderSendsAConsumerToItsRack(t *testing.T) {
	c := racks(t, 30*time.Second)
	sp := fetch(t, c, 1, "orders", "b")
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.Equal(t, int32(2), sp.PreferredReadReplica, "broker 2 is the replica in rack b")
	require.Empty(t, sp.RecordBatches, "a redirected fetch carries no records")

	stays(t, fetch(t, c, 1, "orders", "a"), "the leader is in rack a itself: it keeps the consumer, though broker 3 is in rack a too")
	stays(t, fetch(t, c, 1, "orders", "z"), "no replica is in rack z: the leader keeps the consumer")

	// The follower in rack b serves the consumer, up to its high watermark.
	sp = fetch(t, c, 2, "orders", "b")
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.NotEmpty(t, sp.RecordBatches)
	require.Equal(t, int64(20), sp.HighWatermark)
}

// TestWithoutTheSelectorTheLeaderServesEveryone: broker 3 leads plain and
// runs no replica selector (replica.selector.class unset, Kafka's
// default): a consumer's client.rack changes nothing, even with a replica
// in its rack.
func TestWithoutTheSelectorTheLeaderServesEveryone(t *testing.T) {
	c := racks(t, 30*time.Second)
	stays(t, fetch(t, c, 3, "plain", "b"), "broker 3 runs no selector: it serves a consumer in rack b itself")
	// The same consumer asking broker 1, which runs the selector, about
	// orders is sent to broker 2.
	require.Equal(t, int32(2), fetch(t, c, 1, "orders", "b").PreferredReadReplica)
}

// TestAFollowerOutOfTheISRIsNotChosen: broker 2, alive but cut off from
// leader 1, leaves the ISR of orders; the leader stops sending consumers
// in rack b there, since broker 2 may lack records the consumer has
// already seen or is about to ask for. Once the network heals and broker 2
// is back in the ISR, the leader sends them there again.
func TestAFollowerOutOfTheISRIsNotChosen(t *testing.T) {
	c := racks(t, 2*time.Second)
	c.Isolate(2, 1)
	require.NoError(t, c.ProduceTo(1, "orders", 0, 1, "20"))
	c.WaitFor(15*time.Second, "broker 2 out of the ISR as leader 1 knows it, and alive as leader 1 sees it", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return !slices.Contains(r.ISR, 2) && !offline(t, c, 1, 2)
	})
	stays(t, fetch(t, c, 1, "orders", "b"), "broker 2 is alive but out of the ISR: the consumer stays with the leader")

	c.Heal()
	c.WaitFor(15*time.Second, "broker 2 back in the ISR", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return slices.Contains(r.ISR, 2)
	})
	require.Equal(t, int32(2), fetch(t, c, 1, "orders", "b").PreferredReadReplica)
}

// offline reports whether broker `asked` reports broker id offline (not
// alive in its gossip) in its Metadata answer for orders-0.
func offline(t *testing.T, c *clustertest.Cluster, asked, id int32) bool {
	t.Helper()
	cl := c.Client(kgo.SeedBrokers(c.Addr(asked)))
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("orders")
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
		return false
	}
	return slices.Contains(resp.Topics[0].Partitions[0].OfflineReplicas, id)
}

// TestADeadFollowerIsNotChosen: broker 3 dies, then broker 2. Broker 1 is
// left alone, without a majority, so no controller can take broker 2 out
// of the ISR: the ISR still lists it. (The other way round, the brokers
// still alive would take broker 2 out at once: its refused connections
// tell them within milliseconds.) Leader 1 knows broker 2 is dead, and
// must not send a consumer in rack b there.
func TestADeadFollowerIsNotChosen(t *testing.T) {
	c := racks(t, 30*time.Second)
	c.Kill(3)
	c.Kill(2)
	c.WaitFor(15*time.Second, "leader 1 to see broker 2 dead", func() bool {
		return offline(t, c, 1, 2)
	})
	r, _ := c.Broker(1).Replica("orders", 0)
	require.Contains(t, r.ISR, int32(2), "with no controller, broker 2 stays in the ISR")
	stays(t, fetch(t, c, 1, "orders", "b"), "broker 2 is dead, though in the ISR: the consumer stays with the leader")
}

// TestAConsumerWithClientRackReadsEverything: franz-go with client.rack
// (kgo.Rack) follows the leader's redirection and reads every record;
// when the replica in its rack dies, it is sent elsewhere and still reads.
func TestAConsumerWithClientRackReadsEverything(t *testing.T) {
	c := racks(t, 30*time.Second)
	sp := fetch(t, c, 1, "orders", "b")
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
	stays(t, fetch(t, c, 1, "orders", "b"), "no live in-sync replica in rack b: read from the leader")
	require.Equal(t, 20, read())
}

// topicID is a topic's id. A Fetch names its topics by id from v13
// (KIP-516), and franz-go sends the newest version the broker speaks.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, topics[topic].Err)
	return topics[topic].ID
}
