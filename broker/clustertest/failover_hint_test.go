package clustertest_test

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/log"
)

// TestARefusedProduceNamesTheLeader: a Produce (v10+) sent to a broker
// that does not lead the partition is refused with
// NOT_LEADER_OR_FOLLOWER, and the answer says who leads, in which epoch,
// and where it listens (KIP-951), so the client need not ask Metadata.
func TestARefusedProduceNamesTheLeader(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 1, 3, nil, nil)
	leader := c.WaitFullISR("orders", 0, 20*time.Second)
	other := otherThan(c, leader)
	p, _ := c.Partition(leader, "orders", 0)
	c.WaitFor(10*time.Second, "the other broker to know the partition", func() bool {
		op, ok := c.Partition(other, "orders", 0)
		return ok && op.LeaderEpoch == p.LeaderEpoch
	})

	cl := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recordBatch(t)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	raw, err := cl.Broker(int(other)).Request(ctx, req)
	require.NoError(t, err)
	resp := raw.(*kmsg.ProduceResponse)
	require.GreaterOrEqual(t, resp.Version, int16(10), "franz-go speaks Produce v10+ to klab")
	sp := resp.Topics[0].Partitions[0]
	require.Equal(t, kerr.NotLeaderForPartition.Code, sp.ErrorCode)
	assert.Equal(t, leader, sp.CurrentLeader.LeaderID)
	assert.Equal(t, p.LeaderEpoch, sp.CurrentLeader.LeaderEpoch)
	require.Len(t, resp.Brokers, 1, "the leader's address travels with the hint")
	assert.Equal(t, leader, resp.Brokers[0].NodeID)
	assert.Equal(t, c.Addr(leader), net.JoinHostPort(resp.Brokers[0].Host, strconv.Itoa(int(resp.Brokers[0].Port))))
}

// TestAFencedFetchNamesTheLeader: a Fetch (v16) with a leader epoch older
// than the partition's is FENCED_LEADER_EPOCH, with the current leader
// and its address (KIP-951); topics are named by id (v13+), and an id no
// topic has is UNKNOWN_TOPIC_ID.
func TestAFencedFetchNamesTheLeader(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 1, 3, nil, nil)
	first := c.WaitFullISR("orders", 0, 20*time.Second)
	c.Stop(first) // a controlled shutdown: the leadership moves, the epoch grows
	leader := c.WaitLeader("orders", 0, 20*time.Second, func(id int32) bool { return id != first })
	p, _ := c.Partition(leader, "orders", 0)
	var other int32
	for _, id := range c.IDs() {
		if id != first && id != leader {
			other = id
		}
	}
	c.WaitFor(10*time.Second, "the follower to know the new epoch", func() bool {
		fp, ok := c.Partition(other, "orders", 0)
		return ok && fp.LeaderEpoch == p.LeaderEpoch
	})

	cl := c.Client(kgo.SeedBrokers(c.Addr(other)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := cl.Request(ctx, kmsg.NewPtrMetadataRequest())
	require.NoError(t, err)
	var id [16]byte
	for _, mt := range md.(*kmsg.MetadataResponse).Topics {
		if mt.Topic != nil && *mt.Topic == "orders" {
			id = mt.TopicID
		}
	}
	require.NotZero(t, id)

	fetch := func(topicID [16]byte, epoch int32) *kmsg.FetchResponse {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 10, 1<<20
		req.ReplicaState.ID = -1
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.PartitionMaxBytes, rp.LogStartOffset = epoch, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		raw, err := cl.Broker(int(other)).Request(ctx, req)
		require.NoError(t, err)
		resp := raw.(*kmsg.FetchResponse)
		require.Equal(t, int16(16), resp.Version, "franz-go speaks Fetch v16 to klab")
		require.Len(t, resp.Topics, 1)
		require.Len(t, resp.Topics[0].Partitions, 1)
		return resp
	}

	resp := fetch(id, p.LeaderEpoch-1)
	assert.Equal(t, id, resp.Topics[0].TopicID)
	sp := resp.Topics[0].Partitions[0]
	require.Equal(t, kerr.FencedLeaderEpoch.Code, sp.ErrorCode)
	assert.Equal(t, leader, sp.CurrentLeader.LeaderID)
	assert.Equal(t, p.LeaderEpoch, sp.CurrentLeader.LeaderEpoch)
	require.Len(t, resp.Brokers, 1)
	assert.Equal(t, c.Addr(leader), net.JoinHostPort(resp.Brokers[0].Host, strconv.Itoa(int(resp.Brokers[0].Port))))

	resp = fetch(id, p.LeaderEpoch)
	assert.Equal(t, int16(0), resp.Topics[0].Partitions[0].ErrorCode, "the current epoch reads (from a follower, KIP-392)")
	assert.Empty(t, resp.Brokers, "no hint without a refusal")

	resp = fetch([16]byte{1, 2, 3}, -1)
	assert.Equal(t, kerr.UnknownTopicID.Code, resp.Topics[0].Partitions[0].ErrorCode)
}

// TestMetadataAfterACrashNamesTheNewLeader: when a partition's leader
// crashes, its listener closes; the other brokers notice at once (their
// connections to it are refused), and a client that asks for metadata the
// moment its connection broke is told the new leader, not the dead one
// nor "no leader": franz-go would otherwise wait metadata.min.age (5 s)
// before asking again.
func TestMetadataAfterACrashNamesTheNewLeader(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	victim := c.NotController() // the controller's own death costs a raft election first
	var others []int32
	for _, id := range c.IDs() {
		if id != victim {
			others = append(others, id)
		}
	}
	c.CreateTopic("orders", 0, 0, [][]int32{{victim, others[0], others[1]}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	require.Equal(t, victim, c.WaitLeader("orders", 0, 10*time.Second, nil))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, c.Addr(others[0]), "failover-test")
	require.NoError(t, err)
	defer conn.Close()
	// The client's own connection to the leader, which the crash breaks.
	toVictim, err := net.Dial("tcp", c.Addr(victim))
	require.NoError(t, err)
	defer toVictim.Close()
	c.Kill(victim)
	start := time.Now()
	// As a client does: its connection breaks, a new one is refused, and
	// it asks another broker for metadata.
	_, err = toVictim.Read(make([]byte, 1))
	require.Error(t, err)
	_, err = net.Dial("tcp", c.Addr(victim))
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	req := kmsg.NewPtrMetadataRequest()
	topic := "orders"
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	raw, err := conn.Request(ctx, req)
	require.NoError(t, err)
	mp := raw.(*kmsg.MetadataResponse).Topics[0].Partitions[0]
	t.Logf("the first Metadata after the crash answered in %v: leader %d", time.Since(start), mp.Leader)
	assert.Contains(t, others, mp.Leader, "the first answer names a live leader")
	assert.Equal(t, int16(0), mp.ErrorCode)
}

// otherThan is a broker of the cluster that is not id.
func otherThan(c *clustertest.Cluster, id int32) int32 {
	for _, o := range c.IDs() {
		if o != id {
			return o
		}
	}
	return -1
}

// recordBatch is one record, as a v2 batch.
func recordBatch(t *testing.T) []byte {
	t.Helper()
	return log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte("v")})
}

// TestANewTopicIsKnownAtOnceEverywhere: right after CreateTopics answers,
// another broker may not have applied the new topic yet; asked for it
// then, it looks again for a moment instead of answering
// UNKNOWN_TOPIC_OR_PARTITION, after which franz-go would wait 250 ms to
// ask again. And a Produce straight to the new partition's leader is
// taken.
func TestANewTopicIsKnownAtOnceEverywhere(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conns := map[int32]*client.Conn{}
	for _, id := range c.IDs() {
		conn, err := client.Dial(ctx, c.Addr(id), "new-topic-test")
		require.NoError(t, err)
		defer conn.Close()
		conns[id] = conn
	}
	for i := range 5 {
		topic := "fresh-" + strconv.Itoa(i)
		creator := c.IDs()[i%3]
		asked := c.IDs()[(i+1)%3]
		create := kmsg.NewPtrCreateTopicsRequest()
		create.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 3
		create.Topics = append(create.Topics, rt)
		raw, err := conns[creator].Request(ctx, create)
		require.NoError(t, err)
		require.Equal(t, int16(0), raw.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)

		md := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = &topic
		md.Topics = append(md.Topics, mt)
		raw, err = conns[asked].Request(ctx, md)
		require.NoError(t, err)
		got := raw.(*kmsg.MetadataResponse).Topics[0]
		require.Equal(t, int16(0), got.ErrorCode, "broker %d, asked right after broker %d created %s", asked, creator, topic)
		require.Len(t, got.Partitions, 1)
		leader := got.Partitions[0].Leader

		produce := kmsg.NewPtrProduceRequest()
		produce.Acks, produce.TimeoutMillis = -1, 10000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = topic
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = recordBatch(t)
		pt.Partitions = append(pt.Partitions, pp)
		produce.Topics = append(produce.Topics, pt)
		raw, err = conns[leader].Request(ctx, produce)
		require.NoError(t, err)
		assert.Equal(t, int16(0), raw.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode, "the leader %d takes the first write of %s", leader, topic)
	}
}
