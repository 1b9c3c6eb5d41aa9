// The tests of lesson 07, the controller. Placement (Assign) and the
// election rule (Decide) are tested as functions, case by case; then on a
// cluster of brokers in this process (package clustertest), whose brokers
// are killed and restarted, as the active controller runs them.
package controller_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/metadata"
)

func ptr(s string) *string { return &s }

// alive is the set of live brokers, as Decide's alive function.
func alive(ids ...int32) func(int32) bool {
	return func(id int32) bool { return slices.Contains(ids, id) }
}

// decide runs Decide on a copy of p and checks that Decide left p's ISR
// as it was: the image is shared by every reader, and never changed.
func decide(t *testing.T, p metadata.Partition, live func(int32) bool, unclean bool) (int32, []int32, error) {
	t.Helper()
	isr := slices.Clone(p.ISR)
	leader, newISR, err := controller.Decide(p, live, unclean)
	require.Equal(t, isr, p.ISR, "Decide changed the image's ISR in place: filter a copy")
	return leader, newISR, err
}

// TestDecideKeepsALiveLeader: a live leader keeps its partition, even
// when it is not the preferred (first) replica; dead followers leave the
// ISR; and with nothing to change, Decide returns the partition as it is.
func TestDecideKeepsALiveLeader(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}
	leader, isr, err := decide(t, p, alive(1, 2, 3), false)
	require.NoError(t, err)
	require.Equal(t, int32(1), leader, "nothing happened: the leader stays")
	require.Equal(t, []int32{1, 2, 3}, isr, "nothing happened: the ISR stays")

	leader, isr, err = decide(t, p, alive(1, 2), false)
	require.NoError(t, err)
	require.Equal(t, int32(1), leader, "a follower died: the leader stays")
	require.Equal(t, []int32{1, 2}, isr, "the dead follower 3 leaves the ISR, so acks=all stops waiting for it")

	p = metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{1, 2, 3}}
	leader, isr, err = decide(t, p, alive(1, 2, 3), false)
	require.NoError(t, err)
	require.Equal(t, int32(2), leader, "broker 2 leads and is alive: the preferred leader 1 gets it back only by a preferred election, never by Decide")
	require.Equal(t, []int32{1, 2, 3}, isr)

	leader, isr, err = decide(t, p, alive(2, 3), true)
	require.NoError(t, err)
	require.Equal(t, int32(2), leader, "unclean election changes nothing while the leader lives")
	require.Equal(t, []int32{2, 3}, isr)

	p = metadata.Partition{Replicas: []int32{1, 0}, Leader: 0, ISR: []int32{0, 1}}
	leader, _, err = decide(t, p, alive(0, 1), false)
	require.NoError(t, err)
	require.Equal(t, int32(0), leader, "0 is a broker id like any other (Kafka's node ids often start at 0); only -1 means no leader")
}

// TestDecideElectsTheFirstLiveInSyncReplicaInReplicaOrder: when the leader
// dies, the new one is the first replica, in the replica list's order
// (not the ISR's, not by broker id), that is alive and in sync.
func TestDecideElectsTheFirstLiveInSyncReplicaInReplicaOrder(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 3, 2}, Leader: 1, ISR: []int32{1, 2, 3}}
	leader, isr, err := decide(t, p, alive(2, 3), false)
	require.NoError(t, err)
	require.Equal(t, int32(3), leader, "replicas 1,3,2: after 1 comes 3, whatever the ISR's order or the ids")
	require.Equal(t, []int32{2, 3}, isr)

	p = metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 3}}
	leader, isr, err = decide(t, p, alive(2, 3), false)
	require.NoError(t, err)
	require.Equal(t, int32(3), leader, "2 is alive but out of sync: it may lack acknowledged records, so 3 leads")
	require.Equal(t, []int32{3}, isr)

	leader, _, err = decide(t, p, alive(2, 3), true)
	require.NoError(t, err)
	require.Equal(t, int32(3), leader, "with unclean election allowed, an in-sync replica still comes first")

	p = metadata.Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{2}}
	leader, isr, err = decide(t, p, alive(1, 2), false)
	require.NoError(t, err)
	require.Equal(t, int32(2), leader, "an offline partition gets a leader as soon as an in-sync replica is alive")
	require.Equal(t, []int32{2}, isr)
}

// TestDecideLeavesAPartitionOfflineWithoutALiveInSyncReplica: no live ISR
// member and unclean election off: leader -1, LEADER_NOT_AVAILABLE, and the
// ISR keeps its last members, the only replicas known to hold every
// committed record.
func TestDecideLeavesAPartitionOfflineWithoutALiveInSyncReplica(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1}}
	leader, isr, err := decide(t, p, alive(2), false)
	require.ErrorIs(t, err, kerr.LeaderNotAvailable, "an offline partition is LEADER_NOT_AVAILABLE")
	require.Equal(t, int32(-1), leader, "2 is alive but was not in sync: no leader")
	require.Equal(t, []int32{1}, isr, "the last in-sync replica stays in the ISR: the partition waits for it")

	p = metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{1, 2}}
	leader, isr, err = decide(t, p, alive(3), false)
	require.ErrorIs(t, err, kerr.LeaderNotAvailable)
	require.Equal(t, int32(-1), leader)
	require.Equal(t, []int32{1, 2}, isr, "the whole ISR died at once: it stays as it was")

	p = metadata.Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{1}}
	leader, isr, err = decide(t, p, alive(2), false)
	require.ErrorIs(t, err, kerr.LeaderNotAvailable, "still offline")
	require.Equal(t, int32(-1), leader)
	require.Equal(t, []int32{1}, isr)
}

// TestDecideUncleanElectionTakesTheFirstLiveReplica: with
// unclean.leader.election.enable, a partition with no live in-sync replica
// is led by the first live replica in replica order, which is then the
// whole ISR.
func TestDecideUncleanElectionTakesTheFirstLiveReplica(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 3, 2}, Leader: 1, ISR: []int32{1}}
	leader, isr, err := decide(t, p, alive(2, 3), true)
	require.NoError(t, err)
	require.Equal(t, int32(3), leader, "replicas 1,3,2, 1 dead: 3 is the first live replica")
	require.Equal(t, []int32{3}, isr, "the unclean leader is the whole ISR: the others' records no longer count")

	p = metadata.Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{1}}
	leader, isr, err = decide(t, p, alive(2), true)
	require.NoError(t, err)
	require.Equal(t, int32(2), leader, "an offline partition gets its unclean leader too")
	require.Equal(t, []int32{2}, isr)

	leader, _, err = decide(t, p, alive(), true)
	require.ErrorIs(t, err, kerr.LeaderNotAvailable, "no replica alive at all: offline, even unclean")
	require.Equal(t, int32(-1), leader)

	p = metadata.Partition{Replicas: []int32{1, 0, 2}, Leader: 1, ISR: []int32{0, 1, 2}}
	leader, isr, err = decide(t, p, alive(0, 2), true)
	require.NoError(t, err)
	require.Equal(t, int32(0), leader, "broker 0 is in sync: a clean election, unclean allowed or not")
	require.Equal(t, []int32{0, 2}, isr, "a clean election keeps the in-sync followers")
}

// brokers builds brokers from id, rack pairs, in a shuffled order: Assign
// must not depend on the order it is given them in.
func brokers(racks map[int32]string) []metadata.Broker {
	var bs []metadata.Broker
	for id, rack := range racks {
		bs = append(bs, metadata.Broker{ID: id, Rack: rack})
	}
	rand.Shuffle(len(bs), func(i, j int) { bs[i], bs[j] = bs[j], bs[i] })
	return bs
}

// TestAssignFollowsTheRackAlternatingRing: racks a = {1, 2}, b = {3, 4},
// c = {5, 6} make the ring 1 3 5 2 4 6. Partition p starts at the ring's
// (start+p)th broker and its followers are the next brokers round the
// ring, whatever order the brokers are given in.
func TestAssignFollowsTheRackAlternatingRing(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}
	for range 5 {
		got, err := controller.Assign(brokers(racks), 6, 3, 0)
		require.NoError(t, err)
		require.Equal(t, [][]int32{{1, 3, 5}, {3, 5, 2}, {5, 2, 4}, {2, 4, 6}, {4, 6, 1}, {6, 1, 3}}, got)
	}
	got, err := controller.Assign(brokers(racks), 2, 2, 4)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{4, 6}, {6, 1}}, got, "start 4: partition 0 begins at the ring's fifth broker")
	got, err = controller.Assign(brokers(racks), 1, 1, 13)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{3}}, got, "start wraps round the ring: 13 mod 6 = 1")
}

// TestAssignWithoutRacksUsesConsecutiveBrokers: without racks the ring is
// the brokers by id, and replicas are consecutive brokers.
func TestAssignWithoutRacksUsesConsecutiveBrokers(t *testing.T) {
	racks := map[int32]string{1: "", 2: "", 3: "", 4: ""}
	got, err := controller.Assign(brokers(racks), 5, 3, 1)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{2, 3, 4}, {3, 4, 1}, {4, 1, 2}, {1, 2, 3}, {2, 3, 4}}, got)
	got, err = controller.Assign(brokers(racks), 1, 4, 0)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{1, 2, 3, 4}}, got, "as many replicas as brokers: every broker once")
}

// TestAssignWithFewerRacksThanReplicas: two racks, replication factor 3.
// Each partition uses both racks first, then fills up with brokers it
// does not have yet: never one broker twice.
func TestAssignWithFewerRacksThanReplicas(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b"}
	got, err := controller.Assign(brokers(racks), 4, 3, 0)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{1, 3, 2}, {3, 2, 4}, {2, 4, 1}, {4, 1, 3}}, got, "ring 1 3 2 4: a new rack first, then anyone not taken")
	for p, replicas := range got {
		require.Len(t, racksOf(replicas, racks), 2, "partition %d: both racks", p)
	}
}

// TestAssignWithUnevenRacks: racks a = {1, 2, 3}, b = {4}, c = {5} make
// the ring 1 4 5 2 3, where neighbours can share a rack: the walk must
// skip brokers of a rack the partition already uses while another rack is
// unused. Every partition then has a replica on b's and on c's only
// broker: a small rack carries a copy of everything.
func TestAssignWithUnevenRacks(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "a", 3: "a", 4: "b", 5: "c"}
	got, err := controller.Assign(brokers(racks), 5, 3, 0)
	require.NoError(t, err)
	require.Equal(t, [][]int32{{1, 4, 5}, {4, 5, 2}, {5, 2, 4}, {2, 4, 5}, {3, 4, 5}}, got, "a new rack first, even further round the ring")
	for p, replicas := range got {
		require.Len(t, racksOf(replicas, racks), 3, "partition %d: three racks", p)
	}
}

func racksOf(ids []int32, racks map[int32]string) map[string]bool {
	set := map[string]bool{}
	for _, id := range ids {
		set[racks[id]] = true
	}
	return set
}

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
	load := map[int32]int{}
	for _, replicas := range got {
		for _, id := range replicas {
			load[id]++
		}
	}
	for id := int32(1); id <= 6; id++ {
		require.Equal(t, 6, load[id], "broker %d holds %d of the 36 replicas; each should hold 6", id, load[id])
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
		rt.Topic, rt.TopicID = "orders", topicID(t, cl, "orders")
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.PartitionMaxBytes = 0, epoch, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		raw, err := cl.Broker(int(leader)).Request(ctx, req) // the leader itself, not any broker
		require.NoError(t, err)
		return kerr.ErrorForCode(raw.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode)
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
