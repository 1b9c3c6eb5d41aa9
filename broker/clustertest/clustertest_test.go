package clustertest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

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
