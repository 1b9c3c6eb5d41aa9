package streams_test

// The word count of the README, with your repartition and split, run by
// two instances of the application on a cluster of three brokers in this
// process (package clustertest). A line's words are in whatever partition
// the line was written to; only the repartition by word brings each word's
// records to the one task that counts it. A stub fails the application at
// its first record, and the test with it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

const clusterWait = 60 * time.Second

// wordCount counts the words of "text" into "counts"; lines that start
// with "#" are split off to "comments" and not counted.
func wordCount() (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, "text", streams.Consumed[string, string]{Key: str, Value: str})
	branches := lines.Split("lines-").
		Branch("comments", func(_, line string) bool { return strings.HasPrefix(line, "#") }).
		DefaultBranch("text")
	branches["lines-comments"].To("comments", streams.Produced[string, string]{})
	words := streams.FlatMapValues(branches["lines-text"], func(_, line string) []string { return strings.Fields(line) })
	streams.GroupBy(words, func(_, w string) string { return w }, streams.Grouped[string, string]{Key: str, Value: str}).
		Count(streams.Materialized[string, int64]{Name: "counts"}).ToStream().To("counts", streams.Produced[string, int64]{})
	return b.Build()
}

func startWordCount(t *testing.T, c *clustertest.Cluster) *streams.KafkaStreams {
	t.Helper()
	cfg := streams.DefaultConfig()
	cfg.Logger = t.Logf
	for _, s := range [][2]string{
		{"application.id", "wc"},
		{"bootstrap.servers", strings.Join(c.Addrs(), ",")},
		{"state.dir", t.TempDir()},
		{"commit.interval.ms", "100"},
		{"replication.factor", "3"},
		{"consumer.session.timeout.ms", "6000"},
		{"consumer.heartbeat.interval.ms", "200"},
		{"consumer.fetch.max.wait.ms", "100"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	topo, err := wordCount()
	require.NoError(t, err)
	app, err := streams.New(topo, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { app.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	require.NoError(t, app.Start(ctx))
	return app
}

// writeLines writes lines to "text", each keyed by its number, so that
// they spread over the partitions.
func writeLines(t *testing.T, c *clustertest.Cluster, first int, lines ...string) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = c.Addrs()
	p, err := producer.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	for i, l := range lines {
		_, err := p.Send(ctx, &producer.Record{Topic: "text", Key: []byte(fmt.Sprint(first + i)), Value: []byte(l)})
		require.NoError(t, err)
	}
}

// latest reads topic from the start until the latest value of each key is
// want, failing at once if an application fails.
func latest(t *testing.T, c *clustertest.Cluster, topic string, apps []*streams.KafkaStreams, want map[string]int64) {
	t.Helper()
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = c.Addrs()
	cfg.AutoOffsetReset = "earliest"
	cfg.FetchMaxWait = 100 * time.Millisecond
	cons, err := consumer.New(cfg)
	require.NoError(t, err)
	defer cons.Close()
	cons.Assign(consumer.TopicPartition{Topic: topic, Partition: 0}, consumer.TopicPartition{Topic: topic, Partition: 1},
		consumer.TopicPartition{Topic: topic, Partition: 2})
	got := map[string]int64{}
	deadline := time.Now().Add(clusterWait)
	for !maps.Equal(got, want) {
		for _, app := range apps {
			require.NoError(t, app.Err(), "an application failed")
		}
		require.True(t, time.Now().Before(deadline), "counts %v, want %v", got, want)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		records, err := cons.Poll(ctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			require.NoError(t, err)
		}
		for _, r := range records {
			n, err := streams.Int64.Deserialize(topic, r.Value)
			require.NoError(t, err)
			got[string(r.Key)] = n
		}
	}
}

// notCoordinator is a broker that is not the coordinator of group.
func notCoordinator(t *testing.T, c *clustertest.Cluster, group string) int32 {
	t.Helper()
	adm := kadm.NewClient(c.Client())
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	groups, err := adm.DescribeGroups(ctx, group)
	require.NoError(t, err)
	coordinator := groups[group].Coordinator.NodeID
	for _, id := range c.IDs() {
		if id != coordinator {
			return id
		}
	}
	t.Fatal("every broker is the coordinator")
	return 0
}

// TestTwoInstancesCountEveryWordOnceAcrossPartitions: the lines are
// spread over three partitions, read by two instances; every word is
// counted in one place, so its latest count is its total, and comments
// are not counted. A broker is killed between two batches: the counts go
// on. (The broker killed is not the group's coordinator: a coordinator that
// dies costs klab's groups a rebalance, and under at-least-once the records
// since the last commit are processed again, which would count some words
// twice. That is at-least-once: exactly once needs transactions.)
func TestTwoInstancesCountEveryWordOnceAcrossPartitions(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		for _, s := range [][2]string{{"group.initial.rebalance.delay.ms", "0"}, {"group.min.session.timeout.ms", "100"}} {
			if err := cfg.Set(s[0], s[1]); err != nil {
				panic(err)
			}
		}
	}})
	adm := admin.New(admin.Options{Bootstrap: c.Addrs()})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	for _, topic := range []string{"text", "counts", "comments"} {
		_, err := adm.CreateTopics(ctx, admin.NewTopic{Name: topic, Partitions: 3, ReplicationFactor: 3})
		require.NoError(t, err)
	}
	apps := []*streams.KafkaStreams{startWordCount(t, c), startWordCount(t, c)}

	writeLines(t, c, 0, "to be or not to be", "# not counted", "be quick", "to the point", "or else")
	latest(t, c, "counts", apps, map[string]int64{"to": 3, "be": 3, "or": 2, "not": 1, "quick": 1, "the": 1, "point": 1, "else": 1})

	c.Kill(notCoordinator(t, c, "wc"))
	writeLines(t, c, 5, "be or", "# to to to")
	latest(t, c, "counts", apps, map[string]int64{"to": 3, "be": 4, "or": 3, "not": 1, "quick": 1, "the": 1, "point": 1, "else": 1})
	for _, app := range apps {
		require.NoError(t, app.Close())
	}
}
