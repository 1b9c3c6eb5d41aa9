package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
)

// testLog sends the broker's log lines to the test's log, so that a failing
// test shows what the broker said.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// start runs a broker on a free loopback port with its data in dir.
func start(t *testing.T, dir string, settings ...string) *broker.Broker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	for i := 0; i+1 < len(settings); i += 2 {
		require.NoError(t, cfg.Set(settings[i], settings[i+1]))
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

func client(t *testing.T, b *broker.Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKadmCreatesListsAndDeletesTopics(t *testing.T) {
	b := start(t, t.TempDir())
	adm := kadm.NewClient(client(t, b))
	ctx := ctxT(t)

	resp, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "orders")
	require.NoError(t, err)
	require.NoError(t, resp.Error())

	topics, err := adm.ListTopics(ctx)
	require.NoError(t, err)
	require.True(t, topics.Has("orders"))
	assert.Len(t, topics["orders"].Partitions, 3)

	configs, err := adm.DescribeTopicConfigs(ctx, "orders")
	require.NoError(t, err)
	rc, err := configs.On("orders", nil)
	require.NoError(t, err)
	var retention string
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			retention = c.MaybeValue()
		}
	}
	assert.Equal(t, "60000", retention)

	again, err := adm.CreateTopics(ctx, 1, 1, nil, "orders")
	require.NoError(t, err)
	assert.ErrorContains(t, again.Error(), "TOPIC_ALREADY_EXISTS")

	grown, err := adm.CreatePartitions(ctx, 2, "orders")
	require.NoError(t, err)
	require.NoError(t, grown.Error())
	// A fresh client: kgo's metadata cache answers the old partition count.
	topics, err = kadm.NewClient(client(t, b)).ListTopics(ctx)
	require.NoError(t, err)
	require.NoError(t, topics["orders"].Err)
	assert.Len(t, topics["orders"].Partitions, 5)

	del, err := adm.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
	require.NoError(t, del.Error())
	topics, err = adm.ListTopics(ctx)
	require.NoError(t, err)
	assert.False(t, topics.Has("orders"))
}

func TestKgoProducesWithAcksAllAndConsumes(t *testing.T) {
	b := start(t, t.TempDir())
	ctx := ctxT(t)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctx, 3, 1, nil, "events")
	require.NoError(t, err)

	p := client(t, b, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("events"))
	const n = 1000
	for i := range n {
		p.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 10)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	require.NoError(t, p.Flush(ctx))

	c := client(t, b, kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < n {
		fs := c.PollFetches(ctx)
		require.NoError(t, fs.Err0(), "after %d records", len(seen))
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	assert.Len(t, seen, n)
}

func TestARestartKeepsTopicsConfigsAndRecords(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	ctx := ctxT(t)
	adm := kadm.NewClient(client(t, b))
	_, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "kept")
	require.NoError(t, err)
	before, err := adm.ListTopics(ctx)
	require.NoError(t, err)
	p := client(t, b, kgo.DisableIdempotentWrite(), kgo.DefaultProduceTopic("kept"))
	for i := range 20 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr())
	}
	p.Close()
	require.NoError(t, b.Close())

	b2 := start(t, dir)
	assert.Equal(t, b.ClusterID(), b2.ClusterID(), "the cluster id is kept in meta.properties")
	adm2 := kadm.NewClient(client(t, b2))
	after, err := adm2.ListTopics(ctx)
	require.NoError(t, err)
	assert.Equal(t, before["kept"].ID, after["kept"].ID, "the topic id survives")
	assert.Len(t, after["kept"].Partitions, 2)
	configs, err := adm2.DescribeTopicConfigs(ctx, "kept")
	require.NoError(t, err)
	rc, err := configs.On("kept", nil)
	require.NoError(t, err)
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			assert.Equal(t, "compact", c.MaybeValue())
		}
	}
	offsets, err := adm2.ListEndOffsets(ctx, "kept")
	require.NoError(t, err)
	var total int64
	offsets.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Equal(t, int64(20), total, "every record is still there")
}

func TestAutoCreateTopicsIsOffUnlessEnabled(t *testing.T) {
	ctx := ctxT(t)
	off := start(t, t.TempDir())
	md, err := kadm.NewClient(client(t, off)).Metadata(ctx, "typo")
	require.NoError(t, err)
	assert.ErrorContains(t, md.Topics["typo"].Err, "UNKNOWN_TOPIC_OR_PARTITION", "auto.create.topics.enable is false by default")

	on := start(t, t.TempDir(), "auto.create.topics.enable", "true", "num.partitions", "4")
	p := client(t, on, kgo.DisableIdempotentWrite(), kgo.AllowAutoTopicCreation())
	require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Topic: "made-on-the-fly", Value: []byte("x")}).FirstErr())
	topics, err := kadm.NewClient(client(t, on)).ListTopics(ctx)
	require.NoError(t, err)
	assert.Len(t, topics["made-on-the-fly"].Partitions, 4, "created with num.partitions")
}
