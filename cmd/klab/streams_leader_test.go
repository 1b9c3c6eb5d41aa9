package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
)

// TestStreamsDescribeLeaderless: an input partition whose only replica's
// broker is down has no end offset; describe shows "-" for it (and its
// lag) and everything else as usual.
func TestStreamsDescribeLeaderless(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if err := cfg.Set("offsets.topic.num.partitions", "1"); err != nil {
			panic(err)
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The application's group, with committed offsets (its members gone),
	// its coordinator made before the topic is placed.
	cc := consumer.DefaultConfig()
	cc.BootstrapServers, cc.GroupID = c.Addrs(), "shop"
	cons, err := consumer.New(cc)
	require.NoError(t, err)
	defer cons.Close()
	_, _ = cons.Committed(ctx, consumer.TopicPartition{Topic: "orders", Partition: 0})
	up := c.WaitLeader("__consumer_offsets", 0, 60*time.Second, nil)
	down := up%3 + 1
	adm := admin.New(admin.Options{Bootstrap: c.Addrs()})
	defer adm.Close()
	_, err = adm.CreateTopics(ctx, admin.NewTopic{Name: "orders", Assignment: [][]int32{{up}, {down}}})
	require.NoError(t, err)
	offsets := map[consumer.TopicPartition]int64{}
	for p := range int32(2) {
		c.WaitLeader("orders", p, 60*time.Second, nil)
		offsets[consumer.TopicPartition{Topic: "orders", Partition: p}] = 0
	}
	require.NoError(t, cons.CommitOffsets(ctx, offsets))

	c.Kill(down)
	var out, stderr string
	eventually(t, "describe to answer without the partition's leader", func() bool {
		out, stderr, err = captureAll(t, func() error {
			return runStreams([]string{"describe", "--bootstrap-server=" + strings.Join(c.Addrs(), ","), "--application-id", "shop", "--state-dir", t.TempDir()})
		})
		return err == nil && strings.Contains(stderr, "some end offsets are unknown")
	})
	t.Log("\n" + out + stderr)
	assert.Regexp(t, `orders\s+0\s+0\s+0\s+0`, out, "the partition with a leader")
	assert.Regexp(t, `orders\s+1\s+0\s+-\s+-`, out, "the partition without: no end offset, no lag")
}
