package clustertest_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

func TestThreeBrokersReplicateAndFailOver(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 1, 3, nil, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("orders"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 10 {
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("v"+strconv.Itoa(i))).FirstErr())
	}
	leader := c.WaitLeader("orders", 0, 5*time.Second, nil)
	c.WaitFor(10*time.Second, "every replica has the 10 records", func() bool {
		for _, id := range c.IDs() {
			r, ok := c.Broker(id).Replica("orders", 0)
			if !ok || r.LogEndOffset != 10 || r.HighWatermark != 10 {
				return false
			}
		}
		return true
	})
	c.Kill(leader)
	next := c.WaitLeader("orders", 0, 10*time.Second, func(id int32) bool { return id != leader })
	require.NotEqual(t, leader, next)
	for i := 10; i < 20; i++ {
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("v"+strconv.Itoa(i))).FirstErr())
	}
	c.Restart(leader)

	consumer := c.Client(kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < 20 {
		fs := consumer.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		require.Equal(t, "v"+strconv.Itoa(i), v)
	}
}

// TestAFollowerBehindTheLeadersLogStartStartsOver: while a follower is
// down, retention on the leader deletes the records that follow the
// follower's log. Back, the follower cannot fetch from where it stopped
// (OFFSET_OUT_OF_RANGE): it empties its log, starts again at the leader's
// log start offset, catches up and rejoins the ISR.
func TestAFollowerBehindTheLeadersLogStartStartsOver(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.RetentionCheckInterval = 100 * time.Millisecond
		cfg.ReplicaLagTimeMax = 2 * time.Second
	}})
	small := "1024"
	c.CreateTopic("logs", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"segment.bytes": &small, "retention.bytes": &small})
	cl := c.Client(kgo.DefaultProduceTopic("logs"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(n int) {
		for i := range n {
			require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(strings.Repeat("x", 100)+strconv.Itoa(i))).FirstErr())
		}
	}
	produce(5)
	c.Kill(3)
	produce(100)
	var end int64
	c.WaitFor(10*time.Second, "retention to move the leader's log start past the follower's log", func() bool {
		r, _ := c.Broker(1).Replica("logs", 0)
		end = r.LogEndOffset
		return r.LogStart > 5
	})
	c.Restart(3)
	c.WaitFor(20*time.Second, "the follower to start over, catch up and rejoin the ISR", func() bool {
		r, ok := c.Broker(3).Replica("logs", 0)
		p, _ := c.Partition(0, "logs", 0)
		return ok && r.LogEndOffset == end && p.InSync(3)
	})
	r, _ := c.Broker(3).Replica("logs", 0)
	require.Greater(t, r.LogStart, int64(5), "the follower's log starts where the leader's did")
}
