package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/clustertest"
)

// TestControlledShutdownMovesLeadershipFirst: a broker stopped cleanly
// hands the leadership of its partitions to another in-sync replica and
// leaves their ISRs before it stops serving, so the partition is never
// without a leader and an acks=all producer loses nothing and sees no
// error it does not retry.
func TestControlledShutdownMovesLeadershipFirst(t *testing.T) {
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
		require.NotEqual(t, int32(1), p.Leader, "broker %d: broker 1 still leads after its controlled shutdown", id)
		require.NotContains(t, p.ISR, int32(1), "broker %d: broker 1 is still in the ISR after its controlled shutdown", id)
	}
	load.WaitAcked(c, 200, 20*time.Second)
	offline, samples := watch.Stop()
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed, "a controlled shutdown gives producers only errors they retry")
	require.Zero(t, offline, "the partition had no leader in %d of %d samples", offline, samples)
}

// TestRollingRestartUnderLoad restarts every broker in turn, five times
// over, as an operator upgrading a cluster does: stop one (a controlled
// shutdown), start it again, wait until every partition is fully in sync,
// go on to the next. An acks=all producer runs throughout: nothing it was
// told is written may be lost, it gets no error it does not retry, and the
// partition always has a leader.
func TestRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fifteen broker restarts")
	}
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartIdempotentLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 100, 20*time.Second)
	watch := c.WatchOffline("orders", 0)
	for round := range 5 {
		for _, id := range c.IDs() {
			c.Stop(id)
			load.WaitAcked(c, 20, 20*time.Second)
			c.Restart(id)
			c.WaitFullISR("orders", 0, 30*time.Second)
			t.Logf("round %d: broker %d restarted and back in sync; %d records acknowledged", round+1, id, load.Acked())
		}
	}
	offline, samples := watch.Stop()
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed, "a rolling restart gives producers only errors they retry")
	require.Zero(t, rep.Duplicates, "an idempotent producer's retries land once")
	require.Zero(t, offline, "the partition had no leader in %d of %d samples", offline, samples)
}

// TestReassignOntoANewBroker adds a fourth broker to a running cluster
// and moves a partition from brokers 1, 2, 3 to 2, 3, 4 while a producer
// writes to it: broker 4 catches up and joins the ISR, leadership leaves
// broker 1, broker 1 deletes its copy, and nothing acknowledged is lost.
// It is asked through a broker that is not the controller, with kadm, as
// an operator's tool would.
func TestReassignOntoANewBroker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 300, 20*time.Second)
	require.Equal(t, int32(4), c.AddBroker())
	load.WaitAcked(c, 100, 20*time.Second)

	adm := kadm.NewClient(c.Client(kgo.SeedBrokers(c.Addr(c.NotController()))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{2, 3, 4})
	require.NoError(t, alterAssignments(t, adm, req))

	c.WaitFor(30*time.Second, "the reassignment to complete", func() bool {
		for _, id := range []int32{2, 3, 4} {
			p, ok := c.Partition(id, "orders", 0)
			if !ok || !slices.Equal(p.Replicas, []int32{2, 3, 4}) || p.Reassigning() || len(p.ISR) != 3 {
				return false
			}
		}
		return true
	})
	p, _ := c.Partition(2, "orders", 0)
	require.NotEqual(t, int32(1), p.Leader)
	c.WaitFor(10*time.Second, "broker 1 to delete its copy", func() bool {
		_, err := os.Stat(c.LogDir(1, "orders", 0))
		return errors.Is(err, os.ErrNotExist)
	})
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"orders": {0: {}}})
	require.NoError(t, err)
	require.Empty(t, listed, "no reassignment is left in progress")

	load.WaitAcked(c, 100, 20*time.Second)
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed)
	end := c.WaitConverged("orders", 0, 20*time.Second)
	r, ok := c.Broker(4).Replica("orders", 0)
	require.True(t, ok)
	require.Equal(t, end, r.LogEndOffset, "broker 4 has the whole partition")
}

// TestReassignCancel: cancelling a reassignment whose new replica cannot
// catch up (its broker is down) goes back to the original replicas.
func TestReassignCancel(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 4})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	c.Stop(4)
	adm := kadm.NewClient(c.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{1, 2, 4})
	require.NoError(t, alterAssignments(t, adm, req))
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"orders": {0: {}}})
	require.NoError(t, err)
	got := listed["orders"][0]
	require.Equal(t, []int32{1, 2, 4, 3}, got.Replicas, "target first, then the leaving replicas")
	require.Equal(t, []int32{4}, got.AddingReplicas)
	require.Equal(t, []int32{3}, got.RemovingReplicas)

	var undo kadm.AlterPartitionAssignmentsReq
	undo.CancelAssign("orders", 0)
	require.NoError(t, alterAssignments(t, adm, undo))
	c.WaitFor(10*time.Second, "the cancel to reach every broker", func() bool {
		for _, id := range []int32{1, 2, 3} {
			p, ok := c.Partition(id, "orders", 0)
			if !ok || !slices.Equal(p.Replicas, []int32{1, 2, 3}) || p.Reassigning() {
				return false
			}
		}
		return true
	})
	require.ErrorIs(t, alterAssignments(t, adm, undo), kerr.NoReassignmentInProgress)
}

// TestAdminRequestsFromAnyBroker: requests that change metadata, sent to a
// broker that is not the active controller, are forwarded to it (KIP-590)
// and answered once the change has reached the broker asked.
func TestAdminRequestsFromAnyBroker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	id := c.NotController()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, c.Addr(id), "test")
	require.NoError(t, err)
	defer conn.Close()

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "forwarded", 2, 3
	create.Topics = append(create.Topics, ct)
	raw, err := conn.Request(ctx, create)
	require.NoError(t, err)
	require.Zero(t, raw.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
	_, ok := c.Partition(id, "forwarded", 1)
	require.True(t, ok, "the broker asked has the topic when it answers")

	grow := kmsg.NewPtrCreatePartitionsRequest()
	gt := kmsg.NewCreatePartitionsRequestTopic()
	gt.Topic, gt.Count = "forwarded", 3
	grow.Topics = append(grow.Topics, gt)
	raw, err = conn.Request(ctx, grow)
	require.NoError(t, err)
	require.Zero(t, raw.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode)
	_, ok = c.Partition(id, "forwarded", 2)
	require.True(t, ok, "the broker asked has the new partition when it answers")

	elect := kmsg.NewPtrElectLeadersRequest()
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "forwarded", []int32{0}
	elect.Topics = append(elect.Topics, et)
	raw, err = conn.Request(ctx, elect)
	require.NoError(t, err)
	er := raw.(*kmsg.ElectLeadersResponse)
	require.Zero(t, er.ErrorCode)
	require.Equal(t, kerr.ElectionNotNeeded.Code, er.Topics[0].Partitions[0].ErrorCode, "the controller answered: the preferred leader leads")

	del := kmsg.NewPtrDeleteTopicsRequest()
	dt := kmsg.NewDeleteTopicsRequestTopic()
	dt.Topic = kmsg.StringPtr("forwarded")
	del.Topics = append(del.Topics, dt)
	raw, err = conn.Request(ctx, del)
	require.NoError(t, err)
	require.Zero(t, raw.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode)
	_, ok = c.Partition(id, "forwarded", 0)
	require.False(t, ok, "the broker asked has lost the topic when it answers")
}

// TestForwardedRequestIsNotForwardedAgain: a request one broker forwarded
// reaches another that is not the controller either (the controller
// changed on the way): it answers NOT_CONTROLLER, for each partition as
// well as at the top, instead of passing the request on again, so that two
// brokers that each take the other for the controller cannot bounce it.
func TestForwardedRequestIsNotForwardedAgain(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, nil)
	id := c.NotController()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, c.Addr(id), "klab-forwarded")
	require.NoError(t, err)
	defer conn.Close()
	req := kmsg.NewPtrElectLeadersRequest()
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "events", []int32{0}
	req.Topics = append(req.Topics, rt)
	raw, err := conn.Request(ctx, req)
	require.NoError(t, err)
	resp := raw.(*kmsg.ElectLeadersResponse)
	require.Equal(t, kerr.NotController.Code, resp.ErrorCode)
	require.Equal(t, kerr.NotController.Code, resp.Topics[0].Partitions[0].ErrorCode)
}

// alterAssignments sends a reassignment with kadm until it is answered
// with no retriable error, as an operator's tool would: the controller may
// move while brokers restart (NOT_CONTROLLER), and kadm returns that to
// its caller.
func alterAssignments(t *testing.T, adm *kadm.Client, req kadm.AlterPartitionAssignmentsReq) error {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := adm.AlterPartitionAssignments(ctx, req)
		cancel()
		if err == nil {
			err = resp.Error()
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			return err
		}
		t.Logf("reassignment: %v; asking again", err)
		time.Sleep(100 * time.Millisecond) // a retry's backoff
	}
}

// TestAddedBrokerIsAnObserverAndTakesPartitions: a broker added to a
// running cluster joins the metadata quorum as an observer (it is not in
// controller.quorum.voters), is registered, and can be given partitions
// — here by a reassignment, as an operator moves load onto new hardware.
// Killing it leaves the quorum with its three voters.
func TestAddedBrokerIsAnObserverAndTakesPartitions(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	leader := c.WaitFullISR("orders", 0, 20*time.Second)
	for i := range 50 {
		require.NoError(t, c.ProduceTo(leader, "orders", 0, -1, fmt.Sprintf("r%d", i)))
	}
	id := c.AddBroker()
	require.Equal(t, int32(4), id)

	adm := kadm.NewClient(c.Client())
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{4, 2, 3})
	require.NoError(t, alterAssignments(t, adm, req))
	c.WaitFor(30*time.Second, "broker 4 to hold the partition, in sync", func() bool {
		p, ok := c.Partition(0, "orders", 0)
		return ok && slices.Equal(p.Replicas, []int32{4, 2, 3}) && !p.Reassigning() && p.InSync(4)
	})
	r, ok := c.Broker(4).Replica("orders", 0)
	require.True(t, ok)
	require.Equal(t, int64(50), r.LogEndOffset, "broker 4 copied the partition")

	c.Kill(4)
	c.WaitFor(20*time.Second, "a controller among the voters after the observer died", func() bool {
		p, ok := c.Partition(0, "orders", 0)
		return ok && !p.InSync(4)
	})
}

// TestBrokerRestartedOnAnotherAddressRejoins: a broker that comes back on
// new addresses (another port, another machine) with its data is found
// there: it registers its new address, its peers fetch from and send raft
// traffic to it there, and it gets back in sync.
func TestBrokerRestartedOnAnotherAddressRejoins(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	c.Stop(2)
	leader := c.WaitLeader("orders", 0, 10*time.Second, func(l int32) bool { return l > 0 && l != 2 })
	for i := range 20 {
		require.NoError(t, c.ProduceTo(leader, "orders", 0, -1, fmt.Sprintf("r%d", i)))
	}
	c.MoveBroker(2)
	c.WaitFor(20*time.Second, "broker 2 registered at its new address", func() bool {
		b, ok := c.Broker(1).Metadata().Brokers[2]
		return ok && b.Addr == c.Addr(2)
	})
	c.WaitFullISR("orders", 0, 30*time.Second)
	r, ok := c.Broker(2).Replica("orders", 0)
	require.True(t, ok)
	require.Equal(t, int64(20), r.LogEndOffset)
	// Raft reaches it at its new address too: stop the other two in turn
	// and the quorum needs it.
	c.Stop(1)
	c.WaitFor(20*time.Second, "a controller elected with broker 2's vote", func() bool {
		b := c.Broker(2)
		return b != nil && b.ActiveController() > 1
	})
}

// TestFixedQuorumSurvivesAMinorityOfVoters: with controller.quorum.voters
// naming brokers 1, 2 and 3 of five, the observers 4 and 5 and any one
// voter may die and the cluster still has an active controller, which
// still moves leadership; a majority of voters gone leaves none.
func TestFixedQuorumSurvivesAMinorityOfVoters(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 5, Voters: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{4, 5, 2}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	c.Kill(4)
	c.Kill(5)
	c.Kill(1)
	c.WaitFor(20*time.Second, "a controller among voters 2 and 3 to make broker 2 the leader", func() bool {
		p, ok := c.Partition(2, "orders", 0)
		return ok && p.Leader == 2
	})
	c.Kill(3)
	c.WaitFor(10*time.Second, "no active controller without a majority of voters", func() bool {
		return c.Broker(2).ActiveController() < 0
	})
}

// TestReassignmentThrottle: a reassignment's catch-up traffic is held to
// follower.replication.throttled.rate for the replicas
// follower.replication.throttled.replicas names (KIP-73), and completes
// once the throttle is lifted, as kafka-reassign-partitions --verify does.
func TestReassignmentThrottle(t *testing.T) {
	testThrottle(t, "follower")
}

// TestReassignmentLeaderThrottle: leader.replication.throttled.rate holds
// what the leader sends to a replica catching up, for the replicas its
// topic's leader.replication.throttled.replicas names.
func TestReassignmentLeaderThrottle(t *testing.T) {
	testThrottle(t, "leader")
}

// testThrottle moves a megabyte onto a new broker with side's (leader or
// follower) replication throttle at 20 kB/s, checks the copy goes no
// faster, then lifts the throttle and waits for the move to complete.
func testThrottle(t *testing.T, side string) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	leader := c.WaitFullISR("orders", 0, 20*time.Second)
	value := strings.Repeat("x", 10_000)
	for range 100 { // a megabyte to copy
		require.NoError(t, c.ProduceTo(leader, "orders", 0, -1, value))
	}
	id := c.AddBroker()
	cl := c.Client()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The new broker is registered; the client addresses it by id once
	// the metadata it gets lists it. A Metadata request of its own, not
	// kadm's BrokerMetadata: that one answers from the client's cache,
	// which may hold a list from before the broker joined.
	c.WaitFor(20*time.Second, fmt.Sprintf("broker %d in the client's metadata", id), func() bool {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		md, err := req.RequestWith(ctx, cl)
		return err == nil && slices.ContainsFunc(md.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == id })
	})
	alter := func(err error) { t.Helper(); require.NoError(t, err) }
	// As kafka-reassign-partitions --throttle does: the rate on every
	// broker, the current replicas as leader-throttled, the new one as
	// follower-throttled.
	brokerResp, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: side + ".replication.throttled.rate", Value: kadm.StringPtr("20000")}}, 1, 2, 3, id)
	alter(err)
	for _, r := range brokerResp {
		alter(r.Err)
	}
	replicas := fmt.Sprintf("0:%d", id)
	if side == "leader" {
		replicas = "0:1,0:2,0:3"
	}
	topicResp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: side + ".replication.throttled.replicas", Value: kadm.StringPtr(replicas)}}, "orders")
	alter(err)
	alter(topicResp[0].Err)

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{id, 2, 3})
	alter(alterAssignments(t, adm, req))
	c.WaitFor(10*time.Second, "broker 4 to start copying", func() bool {
		r, ok := c.Broker(id).Replica("orders", 0)
		return ok && r.LogEndOffset > 0
	})
	// At 20 kB/s a megabyte takes fifty seconds: three seconds in, at most
	// a quarter of it is here (a full bucket, then the rate).
	time.Sleep(3 * time.Second) // a rate is measured over time; nothing to wait for
	r, _ := c.Broker(id).Replica("orders", 0)
	require.Less(t, r.LogEndOffset, int64(25), side+" throttle at 20 kB/s: broker 4 copied %d records of 10 kB in 3 s", r.LogEndOffset)

	brokerResp, err = adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: side + ".replication.throttled.rate"}}, 1, 2, 3, id)
	alter(err)
	for _, r := range brokerResp {
		alter(r.Err)
	}
	c.WaitFor(30*time.Second, "the reassignment to complete once the throttle is lifted", func() bool {
		p, ok := c.Partition(0, "orders", 0)
		return ok && !p.Reassigning() && p.InSync(id)
	})
}

// TestReassignWhileBrokersBounce: a partition moves from brokers 1, 2, 3
// to 2, 3, 4 while a producer writes with acks=all and brokers restart
// under it — the new replica, a replica that stays, and the leaving one:
// the move still completes, nothing acknowledged is lost, and the
// producer sees only errors it retries.
func TestReassignWhileBrokersBounce(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 4})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	load := c.StartIdempotentLoad("orders", 0).Limit(2000)
	load.WaitAcked(c, 200, 20*time.Second)

	adm := kadm.NewClient(c.Client())
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{2, 3, 4})
	require.NoError(t, alterAssignments(t, adm, req))

	c.Kill(4) // the new replica crashes while it copies
	load.WaitAcked(c, 100, 20*time.Second)
	c.Restart(4)
	c.Stop(2) // a staying replica restarts cleanly
	load.WaitAcked(c, 100, 20*time.Second)
	c.Restart(2)
	c.Stop(1) // and so does the leaving one
	load.WaitAcked(c, 100, 20*time.Second)
	c.Restart(1)

	c.WaitFor(40*time.Second, "the reassignment to complete", func() bool {
		p, ok := c.Partition(0, "orders", 0)
		return ok && slices.Equal(p.Replicas, []int32{2, 3, 4}) && !p.Reassigning() && len(p.ISR) == 3
	})
	load.WaitAcked(c, 100, 20*time.Second)
	load.Stop()
	rep := load.Check(c)
	require.Zero(t, rep.Failed, "only retriable errors")
	require.Zero(t, rep.Duplicates)
	c.WaitFor(10*time.Second, "broker 1 to delete its copy", func() bool {
		_, err := os.Stat(c.LogDir(1, "orders", 0))
		return errors.Is(err, os.ErrNotExist)
	})
}

// TestTopicRecreatedWhileABrokerIsDown: a topic deleted and created again
// under the same name while a broker was down is another topic (another
// id, KIP-516). The broker, back, must not take its folder of the old
// topic for a replica of the new one: it deletes it and copies the new
// topic's records from the leader.
func TestTopicRecreatedWhileABrokerIsDown(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("t", 0, 0, [][]int32{{1, 2, 3}}, nil)
	leader := c.WaitFullISR("t", 0, 20*time.Second)
	for i := range 50 {
		require.NoError(t, c.ProduceTo(leader, "t", 0, -1, fmt.Sprintf("old-%d", i)))
	}
	c.WaitConverged("t", 0, 20*time.Second)
	c.Stop(3)
	adm := kadm.NewClient(c.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := adm.DeleteTopics(ctx, "t")
	require.NoError(t, err)
	c.CreateTopic("t", 0, 0, [][]int32{{1, 2, 3}}, nil)
	leader = c.WaitLeader("t", 0, 10*time.Second, func(l int32) bool { return l == 1 || l == 2 })
	for i := range 10 {
		require.NoError(t, c.ProduceTo(leader, "t", 0, -1, fmt.Sprintf("new-%d", i)))
	}
	c.Restart(3)
	c.WaitFullISR("t", 0, 30*time.Second)
	// WaitConverged compares every replica's records offset by offset:
	// broker 3 must hold new-0..new-9, not old-0..old-9.
	require.Equal(t, int64(10), c.WaitConverged("t", 0, 20*time.Second))
}

// TestReassignAfterDeleteRecordsInsideABatch: DeleteRecords may move the
// log start offset into the middle of a batch. A replica added afterwards
// starts at the leader's log start, but the leader sends the whole batch,
// which begins before it: the new replica must start at the batch's base
// and take it, or the move never completes.
func TestReassignAfterDeleteRecordsInsideABatch(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2}}, nil)
	c.WaitFullISR("orders", 0, 20*time.Second)
	p := c.Client(kgo.DefaultProduceTopic("orders"), kgo.ProducerLinger(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var records []*kgo.Record
	for i := range 300 {
		records = append(records, kgo.StringRecord(fmt.Sprintf("r%d", i)))
	}
	require.NoError(t, p.ProduceSync(ctx, records...).FirstErr(), "300 records, lingering together into one batch")
	adm := kadm.NewClient(c.Client())
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 100})
	deleted, err := adm.DeleteRecords(ctx, offsets)
	require.NoError(t, err)
	require.NoError(t, deleted.Error())

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("orders", 0, []int32{1, 2, 3})
	require.NoError(t, alterAssignments(t, adm, req))
	c.WaitFor(20*time.Second, "broker 3 to catch up and the move to complete", func() bool {
		p, ok := c.Partition(0, "orders", 0)
		return ok && !p.Reassigning() && p.InSync(3)
	})
	r, ok := c.Broker(3).Replica("orders", 0)
	require.True(t, ok)
	require.Equal(t, int64(100), r.LogStart, "the new replica starts where the leader's log does")
	require.Equal(t, int64(300), r.LogEndOffset)
}
