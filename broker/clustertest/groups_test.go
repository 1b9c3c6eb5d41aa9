package clustertest_test

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// Consumer groups on a three-broker cluster, through the faults that
// matter to them: the death of a member, of the group's coordinator, and
// members coming and going under load.

// groupCluster is a three-broker cluster whose groups form at once
// (group.initial.rebalance.delay.ms 0) and whose __consumer_offsets has 6
// partitions, so that tests are quick; the rest is Kafka's defaults.
func groupCluster(t *testing.T) *clustertest.Cluster {
	return clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Groups.InitialRebalanceDelay = 0
		cfg.OffsetsTopicPartitions = 6
	}})
}

// coordinatorOf asks the cluster which broker coordinates a group.
func coordinatorOf(t *testing.T, c *clustertest.Cluster, group string) int32 {
	t.Helper()
	var id int32
	c.WaitFor(20*time.Second, "a coordinator for "+group, func() bool {
		req := kmsg.NewFindCoordinatorRequest()
		req.CoordinatorKey = group
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, c.Client())
		if err != nil || resp.ErrorCode != 0 {
			return false
		}
		id = resp.NodeID
		return true
	})
	return id
}

// produce writes values v0..v(n-1) round-robin over a topic's partitions.
func produce(t *testing.T, c *clustertest.Cluster, topic string, from, n int) {
	t.Helper()
	cl := c.Client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, kgo.StringRecord(fmt.Sprintf("v%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())
}

// Fault row 8: the coordinator's broker is killed while a client commits
// in a loop and another reads the commits back. Every commit acknowledged
// before the kill is still there after it, on the new coordinator, and no
// reader ever sees a committed offset go back (Bufstream's Jepsen report
// found offsets regress after a coordinator change; Kafka PR #17260), and
// the leader epochs committed with them are kept.
func TestCommittedOffsetsNeverGoBackThroughACoordinatorKill(t *testing.T) {
	c := groupCluster(t)
	c.CreateTopic("orders", 3, 3, nil, nil)
	coord := coordinatorOf(t, c, "billing")
	adm := kadm.NewClient(c.Client(kgo.RetryTimeout(30 * time.Second)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	acked := int64(0) // the highest offset every partition's commit was acknowledged at
	var regressions []string
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the reader
		defer wg.Done()
		seen := map[int32]int64{}
		for {
			select {
			case <-done:
				return
			default:
			}
			fetched, err := adm.FetchOffsets(ctx, "billing")
			if err != nil {
				continue // the coordinator moves: ask again
			}
			fetched.Each(func(o kadm.OffsetResponse) {
				if o.Err != nil {
					return
				}
				mu.Lock()
				if o.At < seen[o.Partition] {
					regressions = append(regressions, fmt.Sprintf("partition %d: %d after %d", o.Partition, o.At, seen[o.Partition]))
				}
				seen[o.Partition] = o.At
				mu.Unlock()
			})
		}
	}()

	killed := false
	for next := int64(1); next <= 150 && ctx.Err() == nil; next++ {
		if next == 50 && !killed {
			c.Kill(coord)
			killed = true
		}
		var os kadm.Offsets
		for p := range int32(3) {
			os.Add(kadm.Offset{Topic: "orders", Partition: p, At: next, LeaderEpoch: int32(next % 7)})
		}
		committed, err := adm.CommitOffsets(ctx, "billing", os)
		if err == nil {
			err = committed.Error()
		}
		if err != nil {
			t.Logf("commit %d: %v (retrying)", next, err)
			next--
			continue
		}
		mu.Lock()
		acked = next
		mu.Unlock()
	}
	close(done)
	wg.Wait()
	require.NoError(t, ctx.Err(), "commits stopped being acknowledged after the kill")
	assert.NotEqual(t, coord, coordinatorOf(t, c, "billing"), "another broker coordinates the group")
	fetched, err := adm.FetchOffsets(context.Background(), "billing")
	require.NoError(t, err)
	fetched.Each(func(o kadm.OffsetResponse) {
		assert.Equal(t, acked, o.At, "partition %d", o.Partition)
		assert.Equal(t, int32(acked%7), o.LeaderEpoch, "partition %d: the committed leader epoch is kept", o.Partition)
	})
	assert.Empty(t, regressions, "a committed offset went back")
}

// A group consumer reads half a topic, commits and leaves; the group's
// coordinator is killed; a new member of the group resumes exactly at the
// commits: nothing lost, nothing read twice.
func TestAGroupResumesAtItsCommitsAfterItsCoordinatorDies(t *testing.T) {
	c := groupCluster(t)
	c.CreateTopic("events", 4, 3, nil, nil)
	produce(t, c, "events", 0, 400)

	first := readInGroup(t, c, "audit", "events", 200)
	c.Kill(coordinatorOf(t, c, "audit"))
	produce(t, c, "events", 400, 100)
	second := readInGroup(t, c, "audit", "events", 300)

	seen := map[string]int{}
	for _, v := range append(first, second...) {
		seen[v]++
	}
	for i := range 500 {
		assert.Equal(t, 1, seen[fmt.Sprintf("v%d", i)], "v%d", i)
	}
}

// readInGroup reads n records as a franz-go member of group, commits what
// it read, and leaves the group. It reads no more than n, so that what it
// commits is exactly what it returns.
func readInGroup(t *testing.T, c *clustertest.Cluster, group, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit())
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollRecords(ctx, n-len(got))
		require.NoError(t, ctx.Err(), "read %d of %d", len(got), n)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	require.NoError(t, cl.CommitUncommittedOffsets(ctx))
	return got
}

// A member dies without leaving (kcat, librdkafka, killed with SIGKILL):
// once its session times out, the other member owns every partition.
func TestAKilledMembersPartitionsGoToTheOther(t *testing.T) {
	kcatPath := need(t, "kcat", "kcat")
	c := groupCluster(t)
	c.CreateTopic("jobs", 4, 3, nil, nil)
	const session = 6 * time.Second // group.min.session.timeout.ms

	var mu sync.Mutex
	owned := map[int32]bool{}
	// Both members must share an assignor: franz-go's default is
	// cooperative-sticky, librdkafka's range and roundrobin.
	survivor := c.Client(kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("jobs"), kgo.SessionTimeout(session),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range a["jobs"] {
				owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, r map[string][]int32) {
			mu.Lock()
			defer mu.Unlock()
			for _, p := range r["jobs"] {
				delete(owned, p)
			}
		}))
	go func() { // franz-go joins and heartbeats while it polls
		for survivor.Context().Err() == nil {
			survivor.PollFetches(survivor.Context())
		}
	}()
	ownedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(owned) }
	c.WaitFor(30*time.Second, "the survivor to own the partitions", func() bool { return ownedCount() == 4 })

	victim := exec.Command(kcatPath, "-b", strings.Join(c.Addrs(), ","), "-G", "workers", "-q",
		"-X", fmt.Sprintf("session.timeout.ms=%d", session.Milliseconds()), "jobs")
	require.NoError(t, victim.Start())
	t.Cleanup(func() { victim.Process.Kill(); victim.Wait() })
	adm := kadm.NewClient(c.Client())
	c.WaitFor(30*time.Second, "two members, Stable, sharing the partitions", func() bool {
		d, err := adm.DescribeGroups(context.Background(), "workers")
		return err == nil && d["workers"].State == "Stable" && len(d["workers"].Members) == 2 && ownedCount() < 4
	})

	require.NoError(t, victim.Process.Kill())
	killed := time.Now()
	c.WaitFor(3*session, "the survivor to own every partition again", func() bool { return ownedCount() == 4 })
	t.Logf("the survivor owned every partition %v after the kill (session.timeout.ms %v)", time.Since(killed).Round(100*time.Millisecond), session)
}

// A rebalance storm: members join and leave while records are produced.
// When it stops, the group is Stable and every partition has exactly one
// owner.
func TestARebalanceStormEndsWithEveryPartitionOwnedOnce(t *testing.T) {
	c := groupCluster(t)
	c.CreateTopic("stream", 6, 3, nil, nil)
	load := c.StartLoad("stream", 0)
	defer load.Stop()

	var members []*kgo.Client
	join := func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup("storm"), kgo.ConsumeTopics("stream"))
		require.NoError(t, err)
		go func() {
			for cl.Context().Err() == nil {
				cl.PollFetches(cl.Context())
			}
		}()
		members = append(members, cl)
	}
	defer func() {
		for _, m := range members {
			m.Close()
		}
	}()
	for round := range 8 {
		join()
		join()
		if round%2 == 1 { // one leaves cleanly, one is closed mid-rebalance
			members[0].Close()
			members[1].Close()
			members = members[2:]
		}
	}
	adm := kadm.NewClient(c.Client())
	var last string
	c.WaitFor(60*time.Second, "the group Stable, every partition owned once", func() bool {
		d, err := adm.DescribeGroups(context.Background(), "storm")
		if err != nil {
			return false
		}
		g := d["storm"]
		var owned []string
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					owned = append(owned, fmt.Sprintf("%s-%d", t.Topic, p))
				}
			}
		}
		sort.Strings(owned)
		last = fmt.Sprintf("%s, %d members, owned %v", g.State, len(g.Members), owned)
		return g.State == "Stable" && len(g.Members) == len(members) &&
			strings.Join(owned, " ") == "stream-0 stream-1 stream-2 stream-3 stream-4 stream-5"
	})
	t.Logf("after the storm: %s", last)
}
