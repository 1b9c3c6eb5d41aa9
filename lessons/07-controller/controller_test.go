// The tests of lesson 07, the controller. Placement is tested as a
// function; elections on a cluster of brokers in this process (package
// clustertest), whose brokers are killed and restarted.
package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/metadata"
)

func ptr(s string) *string { return &s }

// TestAssignPutsReplicasOnDistinctRacks: six brokers in three racks,
// replication factor 3: every partition has one replica in each rack, and
// leadership (the first replica) is spread evenly over the brokers.
func TestAssignPutsReplicasOnDistinctRacks(t *testing.T) {
	var brokers []metadata.Broker
	for id, rack := range map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"} {
		brokers = append(brokers, metadata.Broker{ID: id, Rack: rack})
	}
	rackOf := map[int32]string{}
	for _, b := range brokers {
		rackOf[b.ID] = b.Rack
	}
	got, err := controller.Assign(brokers, 12, 3, 0)
	require.NoError(t, err)
	require.Len(t, got, 12)
	leaders := map[int32]int{}
	for p, replicas := range got {
		require.Len(t, replicas, 3, "partition %d", p)
		racks := map[string]bool{}
		for _, id := range replicas {
			racks[rackOf[id]] = true
		}
		require.Len(t, racks, 3, "partition %d has replicas %v: two in one rack", p, replicas)
		leaders[replicas[0]]++
	}
	for id := int32(1); id <= 6; id++ {
		require.Equal(t, 2, leaders[id], "broker %d leads %d of 12 partitions; each should lead 2", id, leaders[id])
	}

	_, err = controller.Assign(brokers, 1, 7, 0)
	require.ErrorIs(t, err, kerr.InvalidReplicationFactor, "more replicas than brokers")
}

// TestANewLeaderComesFromTheISR: when the leader dies, the controller
// chooses another in-sync replica, in a new leader epoch, and takes the
// dead broker out of the ISR.
func TestANewLeaderComesFromTheISR(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	before, _ := c.Partition(0, "orders", 0)
	require.Equal(t, int32(1), before.Leader, "the first replica leads a new partition")
	c.Kill(1)
	leader := c.WaitLeader("orders", 0, 10*time.Second, func(id int32) bool { return id != 1 })
	after, _ := c.Partition(0, "orders", 0)
	require.Equal(t, int32(2), leader, "the next in-sync replica, in replica order")
	require.Greater(t, after.LeaderEpoch, before.LeaderEpoch)
	require.Equal(t, []int32{2, 3}, after.ISR)
}

// TestNoInSyncReplicaMeansOffline: with unclean.leader.election.enable
// false (the default), a partition whose only in-sync replica is dead has
// no leader, though another replica is alive; with it true, that replica
// leads, and whatever it lacked is lost.
func TestNoInSyncReplicaMeansOffline(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 5})
	c.CreateTopic("clean", 0, 0, [][]int32{{1, 2}}, nil)
	c.CreateTopic("unclean", 0, 0, [][]int32{{1, 2}}, map[string]*string{"unclean.leader.election.enable": ptr("true")})
	c.Kill(2)
	c.WaitFor(10*time.Second, "broker 2 to leave both ISRs", func() bool {
		a, _ := c.Partition(0, "clean", 0)
		b, _ := c.Partition(0, "unclean", 0)
		return len(a.ISR) == 1 && len(b.ISR) == 1
	})
	c.Kill(1)
	c.Restart(2) // alive again, but it was not in sync when 1 died
	require.Equal(t, int32(2), c.WaitLeader("unclean", 0, 10*time.Second, nil), "unclean election picks the live replica")
	p, _ := c.Partition(0, "clean", 0)
	require.Equal(t, int32(-1), p.Leader, "no in-sync replica is alive: no leader")
	require.Equal(t, []int32{1}, p.ISR, "the last in-sync replica stays in the ISR: the partition waits for it")
}

// TestThePreferredLeaderTakesItsPartitionBack: with
// auto.leader.rebalance.enable, once the first replica is back and in sync
// the controller gives it the leadership again.
func TestThePreferredLeaderTakesItsPartitionBack(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.ReplicaLagTimeMax = 2 * time.Second
		cfg.LeaderImbalanceCheckInterval = 500 * time.Millisecond
	}})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.Kill(1)
	c.WaitLeader("orders", 0, 10*time.Second, func(id int32) bool { return id != 1 })
	c.Restart(1)
	c.WaitLeader("orders", 0, 20*time.Second, func(id int32) bool { return id == 1 })
}

// TestAStaleLeaderEpochIsFenced: after a leader change, a fetch that
// carries the old leader epoch is refused with FENCED_LEADER_EPOCH (the
// client must refresh its metadata) and one from the future with
// UNKNOWN_LEADER_EPOCH (KIP-320).
func TestAStaleLeaderEpochIsFenced(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	old, _ := c.Partition(0, "orders", 0)
	c.Kill(1)
	leader := c.WaitLeader("orders", 0, 10*time.Second, func(id int32) bool { return id != 1 })
	now, _ := c.Partition(leader, "orders", 0)

	cl := c.Client(kgo.SeedBrokers(c.Addr(leader)))
	fetch := func(epoch int32) error {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 100, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = 0, epoch, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
	}
	require.ErrorIs(t, fetch(old.LeaderEpoch), kerr.FencedLeaderEpoch)
	require.ErrorIs(t, fetch(now.LeaderEpoch+1), kerr.UnknownLeaderEpoch)
	require.NoError(t, fetch(now.LeaderEpoch))
}

// TestTheMetadataOutlivesTheController: the active controller dies. The
// others elect a new one from the metadata quorum; it knows every topic
// the old one created (they are records in the replicated metadata log,
// not in the dead broker's memory), and it places new topics.
func TestTheMetadataOutlivesTheController(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("before", 3, 3, nil, nil)
	var old int32
	c.WaitFor(10*time.Second, "an active controller", func() bool {
		old = c.Broker(1).ActiveController()
		return old > 0
	})
	c.Kill(old)
	c.WaitFor(15*time.Second, "a new active controller", func() bool {
		for _, id := range c.IDs() {
			if b := c.Broker(id); b != nil && b.ActiveController() > 0 && b.ActiveController() != old {
				return true
			}
		}
		return false
	})
	p, ok := c.Partition(0, "before", 2)
	require.True(t, ok, "the new controller knows the topic created before")
	require.Len(t, p.Replicas, 3)
	c.WaitFor(10*time.Second, "the dead controller to leave the ISRs", func() bool {
		p, _ := c.Partition(0, "before", 0)
		return !p.InSync(old)
	})
	c.CreateTopic("after", 2, 2, nil, nil)
	after, _ := c.Partition(0, "after", 0)
	require.NotContains(t, after.Replicas, old, "a dead broker gets no new replicas")
}
