package controller_test

// Your four pieces inside a cluster of three or four real brokers in this
// process (package clustertest; each broker's log goes to the test's
// output), with an acks=all producer writing throughout. A stub panics as
// soon as the controller first calls it, which is when the test's topic
// is created: these tests fail at once on an unfinished piece.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker/clustertest"
)

// admin is an admin client that bootstraps from broker id alone, so that
// its requests that change metadata go to that broker, which forwards
// them to the active controller if it is not the controller (KIP-590).
func admin(t *testing.T, c *clustertest.Cluster, id int32) (*kadm.Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return kadm.NewClient(c.Client(kgo.SeedBrokers(c.Addr(id)))), ctx
}

// alter sends one AlterPartitionReassignments for orders-0: a target, or
// nil to cancel. It returns the partition's error, with the broker's
// message (your code's error text, for a refusal).
func alter(t *testing.T, adm *kadm.Client, ctx context.Context, target []int32) error {
	t.Helper()
	var req kadm.AlterPartitionAssignmentsReq
	if target == nil {
		req.CancelAssign("orders", 0)
	} else {
		req.Assign("orders", 0, target)
	}
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	require.NoError(t, err)
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			what := fmt.Sprint(target)
			if target == nil {
				what = "cancel"
			}
			t.Logf("AlterPartitionReassignments(%s): %v: %s", what, r.Err, r.ErrMessage)
		}
		return r.Err
	}
	t.Fatal("AlterPartitionReassignments: no answer for orders-0")
	return nil
}

// TestAControlledShutdownUnderLoadLosesNothing: broker 1 leads orders-0
// (replicas 1,2,3) while an acks=all producer writes to it, and is stopped
// cleanly. Before it stops serving, the controller must have moved the
// leadership to another in-sync replica and taken broker 1 out of the ISR
// (your Eligible makes it ineligible, the control loop moves its work,
// your ShutdownDone lets it go): so the partition never has no leader,
// no acknowledged record is lost, and the producer gets no error it does
// not retry. A crash would leave the partition leaderless until gossip
// declared broker 1 dead, and every acks=all write waiting.
func TestAControlledShutdownUnderLoadLosesNothing(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartLoad("orders", 0)
	load.WaitAcked(c, 200, 20*time.Second)
	watch := c.WatchOffline("orders", 0)

	c.Stop(1)
	for _, id := range []int32{2, 3} {
		p, ok := c.Partition(id, "orders", 0)
		require.True(t, ok)
		require.NotEqual(t, int32(1), p.Leader, "broker %d's metadata: broker 1 still led when it stopped", id)
		require.NotContains(t, p.ISR, int32(1), "broker %d's metadata: broker 1 was still in the ISR when it stopped; acks=all writes would have waited for it", id)
		require.Contains(t, p.ISR, p.Leader, "the new leader is in sync")
	}

	load.WaitAcked(c, 200, 20*time.Second)
	offline, samples := watch.Stop()
	load.Stop()
	rep := load.Check(c) // every acknowledged record is there
	require.Zero(t, rep.Failed, "a controlled shutdown gives producers only errors they retry")
	require.Zero(t, offline, "orders-0 had no leader in %d of %d samples", offline, samples)
}

// TestARestartedBrokerComesBackInSync: a rolling restart's step, once for
// each broker: stop it cleanly, start it again, wait until it is back in
// the ISR, go on to the next. Each restarted broker gossips a new
// incarnation, and the shutting-down mark of its previous life must not
// stick to it: once registered again it is eligible, rejoins the ISR, and
// leads again when its turn comes. An acks=all producer writes throughout
// and loses nothing.
func TestARestartedBrokerComesBackInSync(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 100, 20*time.Second)
	watch := c.WatchOffline("orders", 0)
	for _, id := range c.IDs() {
		c.Stop(id)
		load.WaitAcked(c, 20, 20*time.Second)
		c.Restart(id)
		c.WaitFullISR("orders", 0, 20*time.Second)
		t.Logf("broker %d restarted and back in sync; %d records acknowledged", id, load.Acked())
	}
	offline, samples := watch.Stop()
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed, "a rolling restart gives producers only errors they retry")
	require.Zero(t, offline, "orders-0 had no leader in %d of %d samples", offline, samples)
}

// TestAReassignmentOntoANewBrokerWaitsForItThenCompletes: orders-0 moves
// from 1,2,3 to 2,3,4 while broker 4 is down and a producer writes. The
// reassignment starts at once (replicas 2,3,4,1; broker 1 still leads and
// stays in sync: nothing is completed before broker 4 has the data), and
// waits. Broker 4 starts, catches up, joins the ISR; then the controller
// completes the move: replicas 2,3,4, leadership away from broker 1,
// which deletes its copy. Nothing acknowledged is lost. The request goes
// to a broker that is not the controller, which forwards it (KIP-590).
func TestAReassignmentOntoANewBrokerWaitsForItThenCompletes(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 4})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.Stop(4)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 100, 20*time.Second)

	adm, ctx := admin(t, c, c.NotController())
	require.NoError(t, alter(t, adm, ctx, []int32{2, 3, 4}))
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"orders": {0: {}}})
	require.NoError(t, err)
	got := listed["orders"][0]
	require.Equal(t, []int32{2, 3, 4, 1}, got.Replicas, "in progress: the target, then the leaving replica")
	require.Equal(t, []int32{4}, got.AddingReplicas)
	require.Equal(t, []int32{1}, got.RemovingReplicas)
	load.WaitAcked(c, 100, 20*time.Second)
	p, _ := c.Partition(0, "orders", 0)
	require.True(t, p.Reassigning(), "broker 4 is down: the reassignment cannot complete")
	require.Equal(t, int32(1), p.Leader, "the leaving broker 1 leads until the move completes")
	require.ElementsMatch(t, []int32{1, 2, 3}, p.ISR, "the leaving broker stays in sync until the move completes")

	c.Restart(4)
	c.WaitFor(20*time.Second, "the reassignment to complete on every broker", func() bool {
		for _, id := range []int32{2, 3, 4} {
			p, ok := c.Partition(id, "orders", 0)
			if !ok || !slices.Equal(p.Replicas, []int32{2, 3, 4}) || p.Reassigning() || len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
	p, _ = c.Partition(0, "orders", 0)
	require.Contains(t, []int32{2, 3, 4}, p.Leader, "the leadership left broker 1")
	c.WaitFor(10*time.Second, "broker 1 to delete its copy", func() bool {
		_, err := os.Stat(c.LogDir(1, "orders", 0))
		return errors.Is(err, os.ErrNotExist)
	})
	listed, err = adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"orders": {0: {}}})
	require.NoError(t, err)
	require.Empty(t, listed, "no reassignment is left in progress")

	load.WaitAcked(c, 100, 20*time.Second)
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed, "a reassignment gives producers only errors they retry")
	end := c.WaitConverged("orders", 0, 20*time.Second)
	r, ok := c.Broker(4).Replica("orders", 0)
	require.True(t, ok)
	require.Equal(t, end, r.LogEndOffset, "broker 4 has the whole partition")
}

// TestCancellingAStuckReassignmentGoesBack: a move of orders-0 from 1,2,3
// to 1,2,4 cannot complete while broker 4 is down. Cancelling it puts back
// 1,2,3 on every broker, with broker 3 still in sync and broker 1 still
// leading; the producer loses nothing. A second cancel has nothing to
// cancel: NO_REASSIGNMENT_IN_PROGRESS.
func TestCancellingAStuckReassignmentGoesBack(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 4})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.Stop(4)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 100, 20*time.Second)

	adm, ctx := admin(t, c, c.NotController())
	require.NoError(t, alter(t, adm, ctx, []int32{1, 2, 4}))
	c.WaitFor(10*time.Second, "the reassignment to start", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return slices.Equal(p.Replicas, []int32{1, 2, 4, 3})
	})
	require.NoError(t, alter(t, adm, ctx, nil))
	c.WaitFor(10*time.Second, "the cancel to reach every live broker", func() bool {
		for _, id := range []int32{1, 2, 3} {
			p, ok := c.Partition(id, "orders", 0)
			if !ok || !slices.Equal(p.Replicas, []int32{1, 2, 3}) || p.Reassigning() {
				return false
			}
		}
		return true
	})
	p, _ := c.Partition(0, "orders", 0)
	require.Equal(t, int32(1), p.Leader, "broker 1 led throughout")
	require.ElementsMatch(t, []int32{1, 2, 3}, p.ISR, "broker 3 never left the ISR")
	require.ErrorIs(t, alter(t, adm, ctx, nil), kerr.NoReassignmentInProgress, "nothing left to cancel")

	load.WaitAcked(c, 100, 20*time.Second)
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed)
}
