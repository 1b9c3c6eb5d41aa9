// The tests of lesson 06, replication. Each starts a cluster of brokers in
// this process (package clustertest), writes to it with franz-go, and
// checks what the replicas hold.
package replication_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker/clustertest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func ptr(s string) *string { return &s }

// produce writes n records, "0" to "n-1", with the given acks.
func produce(t *testing.T, c *clustertest.Cluster, topic string, n int, acks kgo.Acks) {
	t.Helper()
	cl := c.Client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
	for i := range n {
		require.NoError(t, cl.ProduceSync(ctx(t), kgo.StringRecord(strconv.Itoa(i))).FirstErr())
	}
}

// TestFollowersCopyTheLeadersLog: records written to the leader reach both
// followers, at the same offsets.
func TestFollowersCopyTheLeadersLog(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 1, 3, nil, nil)
	produce(t, c, "orders", 50, kgo.LeaderAck())
	end := c.WaitConverged("orders", 0, 10*time.Second)
	require.Equal(t, int64(50), end)
}

// TestConsumersSeeOnlyWhatEveryInSyncReplicaHas: a follower cut off from
// the leader is still in the ISR for replica.lag.time.max.ms, and holds the
// high watermark back: a consumer does not see new records until the
// follower has them or has left the ISR.
func TestConsumersSeeOnlyWhatEveryInSyncReplicaHas(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(3 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	produce(t, c, "orders", 10, kgo.LeaderAck())
	c.WaitFor(10*time.Second, "the high watermark at 10", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return r.HighWatermark == 10
	})

	c.Isolate(3, 1) // follower 3 can no longer fetch from leader 1
	produce(t, c, "orders", 5, kgo.LeaderAck())
	r, _ := c.Broker(1).Replica("orders", 0)
	require.Equal(t, int64(15), r.LogEndOffset, "the leader has the records")
	require.Equal(t, int64(10), r.HighWatermark, "follower 3 is in the ISR and has not got them")

	c.WaitFor(15*time.Second, "follower 3 to leave the ISR and the high watermark to move", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		p, _ := c.Partition(0, "orders", 0) // as the controller decided it
		return r.HighWatermark == 15 && !p.InSync(3)
	})
	c.Heal()
	c.WaitFor(15*time.Second, "follower 3 to catch up and rejoin the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return p.InSync(3)
	})
	require.Equal(t, int64(15), c.WaitConverged("orders", 0, 10*time.Second))
}

// TestAcksAllNeedsMinInSyncReplicas: with min.insync.replicas=3, acks=all
// succeeds while all three replicas are in sync, and fails with
// NOT_ENOUGH_REPLICAS once one has fallen out; acks=1 still succeeds.
func TestAcksAllNeedsMinInSyncReplicas(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"min.insync.replicas": ptr("3")})
	produce(t, c, "orders", 5, kgo.AllISRAcks())

	c.Isolate(3, 1)
	c.WaitFor(15*time.Second, "follower 3 to leave the ISR, as the leader knows it", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return len(r.ISR) == 2
	})
	require.ErrorIs(t, c.ProduceTo(1, "orders", 0, -1, "x"), kerr.NotEnoughReplicas)
	require.NoError(t, c.ProduceTo(1, "orders", 0, 1, "y"), "acks=1 needs the leader only")
}

// TestARestartedFollowerCatchesUp: a follower that was down while records
// were written fetches them when it comes back, and rejoins the ISR.
func TestARestartedFollowerCatchesUp(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	produce(t, c, "orders", 20, kgo.AllISRAcks())
	c.Kill(3)
	produce(t, c, "orders", 20, kgo.AllISRAcks())
	c.Restart(3)
	c.WaitFor(15*time.Second, "broker 3 back in the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return p.InSync(3)
	})
	require.Equal(t, int64(40), c.WaitConverged("orders", 0, 10*time.Second))
}
