package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/clustertest"
)

// DeleteRecords on three brokers: the leader answers once every in-sync
// follower has moved its log start too (they learn it from their fetches),
// or REQUEST_TIMED_OUT while one cannot; a new leader starts where the old
// one did; DescribeLogDirs describes each broker's replica.
func TestDeleteRecordsReachesEveryInSyncReplica(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("logs", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"segment.bytes": kadm.StringPtr("1024")})
	cl := c.Client(kgo.DefaultProduceTopic("logs"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produce := func(from, n int) {
		for i := from; i < from+n; i++ {
			require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%03d-%0100d", i, 0))).FirstErr())
		}
	}
	produce(0, 40)
	leader := c.WaitFullISR("logs", 0, 10*time.Second)
	adm := kadm.NewClient(cl)

	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "logs", Partition: 0, At: 25})
	resps, err := adm.DeleteRecords(ctx, os)
	require.NoError(t, err)
	r, _ := resps.Lookup("logs", 0)
	require.NoError(t, r.Err)
	assert.Equal(t, int64(25), r.LowWatermark)
	for _, id := range c.IDs() {
		rep, ok := c.Broker(id).Replica("logs", 0)
		require.True(t, ok)
		assert.Equal(t, int64(25), rep.LogStart, "broker %d moved its start before the answer", id)
	}

	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	require.NoError(t, err)
	for _, id := range c.IDs() {
		p, ok := dirs[id].LookupPartition("logs", 0)
		require.True(t, ok, "broker %d describes its replica", id)
		assert.Positive(t, p.Size, "broker %d", id)
		assert.GreaterOrEqual(t, p.OffsetLag, int64(0), "broker %d", id)
	}

	// A follower that cannot fetch holds the answer back, until the timeout.
	follower := c.IDs()[0]
	if follower == leader {
		follower = c.IDs()[1]
	}
	c.Pause(follower)
	sp := deleteRecordsAt(t, c.Addr(leader), "logs", -1, 300*time.Millisecond)
	assert.Equal(t, kerr.RequestTimedOut, kerr.ErrorForCode(sp.ErrorCode))
	assert.Equal(t, int64(25), sp.LowWatermark, "the low watermark is the paused follower's start")
	c.Resume(follower)
	c.WaitFor(20*time.Second, "every replica to start at 40", func() bool {
		for _, id := range c.IDs() {
			if rep, _ := c.Broker(id).Replica("logs", 0); rep.LogStart != 40 {
				return false
			}
		}
		return true
	})

	produce(40, 5)
	c.WaitFullISR("logs", 0, 20*time.Second)
	c.Kill(leader)
	c.WaitLeader("logs", 0, 15*time.Second, func(id int32) bool { return id != leader })
	// The brokers may for a moment still name the killed leader, which
	// their broker lists already leave out ("unknown broker" in kadm, which
	// does not retry): ask until an answer comes from the new leader.
	fresh := kadm.NewClient(c.Client())
	var starts kadm.ListedOffsets
	c.WaitFor(15*time.Second, "ListStartOffsets to reach the new leader", func() bool {
		var err error
		starts, err = fresh.ListStartOffsets(ctx, "logs")
		return err == nil
	})
	s, _ := starts.Lookup("logs", 0)
	require.NoError(t, s.Err)
	assert.Equal(t, int64(40), s.Offset, "the new leader starts where the old one did")
	consumer := c.Client(kgo.ConsumeTopics("logs"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var offsets []int64
	for len(offsets) < 5 {
		fs := consumer.PollFetches(ctx)
		require.NoError(t, ctx.Err())
		fs.EachRecord(func(r *kgo.Record) { offsets = append(offsets, r.Offset) })
	}
	assert.Equal(t, []int64{40, 41, 42, 43, 44}, offsets)
}

// deleteRecordsAt sends one DeleteRecords for partition 0 of topic
// straight to a broker, without a client's retries, and returns the
// partition's answer.
func deleteRecordsAt(t *testing.T, addr, topic string, offset int64, timeout time.Duration) kmsg.DeleteRecordsResponseTopicPartition {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, addr, "test")
	require.NoError(t, err)
	defer conn.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = int32(timeout.Milliseconds())
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := conn.Request(ctx, req)
	require.NoError(t, err)
	return resp.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
}
