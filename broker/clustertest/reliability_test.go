package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/clustertest"
)

// The reliability tests: each breaks the cluster in one of the ways
// KIP-101, KIP-279 and KIP-320 were written for, under load, and checks
// that every acknowledged write is read back, once, at its offset.

func ptr(s string) *string { return &s }

// minISR2 is a topic with min.insync.replicas=2, the usual production setting.
var minISR2 = map[string]*string{"min.insync.replicas": ptr("2")}

// isolateFollowers starts a five-broker cluster with a partition on
// brokers 1, 2 and 3, led by 1, under load; then cuts 2 and 3 off from
// everyone and waits until the leader knows its ISR is itself alone. The
// controller, on the majority side with 1, 4 and 5, took them out.
func isolateFollowers(t *testing.T) (*clustertest.Cluster, *clustertest.Load) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 5})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	load.WaitAcked(c, 200, 20*time.Second)
	c.Isolate(2)
	c.Isolate(3)
	c.WaitFor(20*time.Second, "the ISR to shrink to the leader", func() bool {
		r, _ := c.Broker(1).Replica("events", 0) // as the leader itself knows it
		return r.Leader && len(r.ISR) == 1
	})
	return c, load
}

// TestIsolatedFollowersThenHeal (a): a five-broker cluster, a partition on
// brokers 1, 2 and 3 led by 1. Brokers 2 and 3 are cut off from everyone:
// the controller, on the majority side with 1, takes them out of the ISR,
// and acks=all writes fail with NOT_ENOUGH_REPLICAS instead of being
// accepted by one copy. After healing they catch up, rejoin the ISR, and
// writes go on; nothing acknowledged is lost.
func TestIsolatedFollowersThenHeal(t *testing.T) {
	c, load := isolateFollowers(t)
	err := c.ProduceTo(1, "events", 0, -1, "raw")
	require.ErrorIs(t, err, kerr.NotEnoughReplicas, "one in-sync replica is under min.insync.replicas=2")

	c.Heal()
	c.WaitFor(30*time.Second, "the followers to rejoin the ISR", func() bool {
		p, _ := c.Partition(0, "events", 0)
		return len(p.ISR) == 3
	})
	load.WaitAcked(c, 200, 30*time.Second)
	load.Stop()
	load.Check(c)
	c.WaitConverged("events", 0, 20*time.Second)
}

// TestLoneLeaderDies (b): as in (a), the ISR shrinks to the leader; then
// the leader dies. The followers are alive but were not in sync, and
// unclean.leader.election.enable is false: the partition goes offline
// rather than lose acknowledged writes. When the old leader comes back, it
// leads again and nothing is lost.
func TestLoneLeaderDies(t *testing.T) {
	c, load := isolateFollowers(t)
	c.Kill(1)
	c.Heal()
	c.WaitFor(20*time.Second, "the partition to go offline", func() bool {
		p, _ := c.Partition(0, "events", 0)
		return p.Leader == -1
	})
	// Followers 2 and 3 are back and alive, but the partition stays offline:
	// electing one of them would lose what only broker 1 has.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		// Between two controllers (the followers back may start an
		// election) there is no active one to ask: no answer, not a leader.
		if p, found := c.Partition(0, "events", 0); found {
			require.Equal(t, int32(-1), p.Leader, "an out-of-sync replica was elected")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Restart(1)
	require.Equal(t, int32(1), c.WaitLeader("events", 0, 20*time.Second, nil))
	load.Stop()
	load.Check(c)
	c.WaitConverged("events", 0, 30*time.Second)
}

// TestFollowerRestartThenLeaderDies (c), KIP-101's scenario A: a follower
// restarts and, before it has fetched again, the leader dies. Kafka before
// KIP-101 truncated a restarted follower to its high watermark, which lags
// the leader's, and so lost acknowledged records when that follower then
// became leader. Here a follower never truncates to its high watermark.
func TestFollowerRestartThenLeaderDies(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	load.WaitAcked(c, 300, 20*time.Second)
	c.WaitFullISR("events", 0, 30*time.Second)
	c.Kill(2)
	c.Restart(2)
	c.Kill(1)
	leader := c.WaitLeader("events", 0, 20*time.Second, func(id int32) bool { return id != 1 })
	t.Logf("new leader %d", leader)
	load.WaitAcked(c, 200, 30*time.Second)
	c.Restart(1)
	load.WaitAcked(c, 100, 30*time.Second)
	load.Stop()
	load.Check(c)
	c.WaitConverged("events", 0, 30*time.Second)
}

// TestTwoCrashesOneLosesItsTail (d), KIP-101's scenario B: the leader and
// a follower crash at once, and the follower also loses the unflushed end
// of its log. The third replica leads and takes new writes at offsets the
// old leader may also have written, with other records. When both come
// back, each truncates where its log diverges from the new leader's (by
// leader epoch, KIP-279) and catches up: every replica ends with the same
// record at every offset.
func TestTwoCrashesOneLosesItsTail(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 5})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	load.WaitAcked(c, 300, 20*time.Second)
	// Broker 3 must be in sync when the others crash: it is the replica
	// with every acknowledged record.
	c.WaitFullISR("events", 0, 30*time.Second)
	c.Kill(1)
	c.Kill(2)
	c.LoseTail(2, "events", 0, 700)
	require.Equal(t, int32(3), c.WaitLeader("events", 0, 20*time.Second, nil))
	c.WaitFor(20*time.Second, "broker 3 to take writes alone", func() bool {
		p, _ := c.Partition(0, "events", 0)
		return len(p.ISR) == 1
	})
	c.Restart(2)
	c.Restart(1)
	c.WaitFor(30*time.Second, "both to rejoin the ISR", func() bool {
		p, _ := c.Partition(0, "events", 0)
		return len(p.ISR) == 3
	})
	load.WaitAcked(c, 200, 30*time.Second)
	load.Stop()
	load.Check(c)
	c.WaitConverged("events", 0, 30*time.Second)
}

// TestLeadershipMovesBackAndForth (e): leadership moves from broker 1 to
// another and back, five times, under load: the leader is killed, then
// restarted, and once it is in sync again the preferred-leader election
// (ElectLeaders, as kafka-leader-election runs it) gives it back. Every
// replica ends with the same log, and every acknowledged record is in it.
func TestLeadershipMovesBackAndForth(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	adm := kadm.NewClient(c.Client())
	for round := range 5 {
		load.WaitAcked(c, 100, 30*time.Second)
		// The leader is broker 1, unless failure detection, slow under
		// load, took it for dead meanwhile and moved the partition.
		leader := c.WaitFullISR("events", 0, 30*time.Second)
		c.Kill(leader)
		other := c.WaitLeader("events", 0, 20*time.Second, func(id int32) bool { return id != leader })
		load.WaitAcked(c, 100, 30*time.Second)
		c.Restart(leader)
		c.WaitFor(30*time.Second, fmt.Sprintf("broker %d back in the ISR", leader), func() bool {
			p, _ := c.Partition(0, "events", 0)
			return p.InSync(leader)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"events": {0: {}}})
		cancel()
		require.NoError(t, err)
		require.Contains(t, res["events"], int32(0), "the answer to ElectLeaders has no result for events-0")
		if err := res["events"][0].Err; !(errors.Is(err, kerr.ElectionNotNeeded) && other == 1) {
			require.NoError(t, err, "electing broker 1: %s", res["events"][0].ErrMessage)
		}
		c.WaitLeader("events", 0, 20*time.Second, func(id int32) bool { return id == 1 })
		t.Logf("round %d: %d -> %d -> 1", round+1, leader, other)
	}
	load.WaitAcked(c, 100, 30*time.Second)
	load.Stop()
	rep := load.Check(c)
	end := c.WaitConverged("events", 0, 30*time.Second)
	require.Equal(t, int64(rep.Read), end, "the log end offset is the number of records, on every replica")
	require.Equal(t, int64(rep.Acked+rep.Duplicates), end, "the log holds the acknowledged records and the retried duplicates, nothing else")
}

// TestPausedLeaderIsFenced (f): the leader freezes (a long GC pause, a
// stopped VM). The others declare it dead and elect a new leader in a new
// epoch. When the old leader thaws it still believes it leads, but it can
// no longer complete an acks=all write: the followers fetch from the new
// leader, and the controller refuses its ISR changes, made in an old
// epoch. Once it reads the metadata log it follows, and cuts the records
// it took alone.
func TestPausedLeaderIsFenced(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	load.WaitAcked(c, 200, 20*time.Second)
	// The leader is broker 1, unless failure detection, slow under load,
	// took it for dead meanwhile and moved the partition.
	first := c.WaitFullISR("events", 0, 30*time.Second)
	old, _ := c.Partition(0, "events", 0)
	c.Pause(first)
	leader := c.WaitLeader("events", 0, 20*time.Second, func(id int32) bool { return id != first })
	// The producer first waits out its request to the frozen leader.
	load.WaitAcked(c, 200, 60*time.Second)
	c.Resume(first)
	// Straight after the thaw, before the old leader has caught up: a
	// write to it is not acknowledged.
	err := c.ProduceTo(first, "events", 0, -1, "raw")
	require.Error(t, err, "the deposed leader acknowledged an acks=all write")
	t.Logf("write to the thawed old leader: %v", err)
	c.WaitFor(20*time.Second, "the old leader to follow the new leader", func() bool {
		r, ok := c.Broker(first).Replica("events", 0)
		return ok && !r.Leader && r.LeaderEpoch > old.LeaderEpoch
	})
	require.True(t, errors.Is(c.ProduceTo(first, "events", 0, -1, "raw"), kerr.NotLeaderForPartition))
	load.WaitAcked(c, 100, 30*time.Second)
	load.Stop()
	rep := load.Check(c)
	c.WaitConverged("events", 0, 30*time.Second)
	for _, r := range c.ReadAll("events", 0) {
		require.NotEqual(t, "raw", string(r.Value), "a write to the deposed leader survived at offset %d", r.Offset)
	}
	t.Logf("leader %d -> %d; %s", old.Leader, leader, rep)
}

// TestALeaderBackTooSoonIsNotTrusted: the leader's machine loses power
// (its unflushed tail with it) and is back before failure detection has
// noticed. Its log is now shorter than its followers', which hold
// acknowledged records it lost. It must not lead, in its old epoch, a
// partition its followers would then truncate to its log: the controller
// treats a broker that comes back as new (it was not there for what
// happened meanwhile) and moves its partitions to an in-sync replica, as
// KRaft does with a broker that registers again.
func TestALeaderBackTooSoonIsNotTrusted(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, minISR2)
	load := c.StartLoad("events", 0)
	load.WaitAcked(c, 300, 20*time.Second)
	leader := c.WaitFullISR("events", 0, 30*time.Second) // broker 1, unless a slow failure detection moved it
	c.Kill(leader)
	c.LoseTail(leader, "events", 0, 4096)
	c.Restart(leader)
	load.WaitAcked(c, 200, 30*time.Second)
	load.Stop()
	load.Check(c)
	c.WaitConverged("events", 0, 30*time.Second)
}
