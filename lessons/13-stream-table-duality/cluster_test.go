package streams_test

// Your pieces in an application on a cluster of three brokers in this
// process (package clustertest): the counts of one instance are restored
// by another, from the changelog, after the broker leading the changelog
// was killed. A stub fails the application at once (its first task cannot
// open or fill its store), and the test with it.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

const clusterWait = 60 * time.Second

// appLog keeps an application's log lines for the test to read.
type appLog struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *appLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.t.Log(line)
}

func (l *appLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// startCounting runs the count of purchases per customer on the cluster,
// with its state in stateDir, and waits until it runs.
func startCounting(t *testing.T, c *clustertest.Cluster, stateDir string) (*streams.KafkaStreams, *appLog) {
	t.Helper()
	log := &appLog{t: t}
	cfg := streams.DefaultConfig()
	cfg.Logger = log.logf
	for _, s := range [][2]string{
		{"application.id", "app"},
		{"bootstrap.servers", strings.Join(c.Addrs(), ",")},
		{"state.dir", stateDir},
		{"commit.interval.ms", "100"},
		{"replication.factor", "3"},
		{"consumer.session.timeout.ms", "6000"},
		{"consumer.heartbeat.interval.ms", "200"},
		{"consumer.fetch.max.wait.ms", "100"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	topo, err := countTopology()
	require.NoError(t, err)
	app, err := streams.New(topo, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { app.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	require.NoError(t, app.Start(ctx))
	return app, log
}

// buy writes purchases, customer name to how many, with the course's
// producer (acks=all).
func buy(t *testing.T, c *clustertest.Cluster, customers map[string]int) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = c.Addrs()
	p, err := producer.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), clusterWait)
	defer cancel()
	for name, n := range customers {
		for range n {
			_, err := p.Send(ctx, &producer.Record{Topic: "purchases", Key: []byte(name), Value: i64bytes(1)})
			require.NoError(t, err)
		}
	}
}

// waitForCounts reads "counts" from the start until the latest count of
// each customer is want, failing at once if the application fails.
func waitForCounts(t *testing.T, c *clustertest.Cluster, app *streams.KafkaStreams, want map[string]int64) {
	t.Helper()
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = c.Addrs()
	cfg.AutoOffsetReset = "earliest"
	cfg.FetchMaxWait = 100 * time.Millisecond
	cons, err := consumer.New(cfg)
	require.NoError(t, err)
	defer cons.Close()
	cons.Assign(consumer.TopicPartition{Topic: "counts", Partition: 0}, consumer.TopicPartition{Topic: "counts", Partition: 1})
	got := map[string]int64{}
	deadline := time.Now().Add(clusterWait)
	for !maps.Equal(got, want) {
		require.NoError(t, app.Err(), "the application failed")
		require.True(t, time.Now().Before(deadline), "counts %v, want %v", got, want)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		records, err := cons.Poll(ctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			require.NoError(t, err)
		}
		for _, r := range records {
			n, err := i64.Deserialize("counts", r.Value)
			require.NoError(t, err)
			got[string(r.Key)] = n
		}
	}
}

// TestCountsSurviveTheirInstanceAndTheChangelogsLeader: instance A counts
// purchases and stops. The broker leading the changelog's partition 0 is
// killed. Instance B, on a machine of its own (an empty state
// directory), takes the tasks: it rebuilds the counts from the changelog,
// read from the partition's new leader, and the next purchases count on
// from them.
func TestCountsSurviveTheirInstanceAndTheChangelogsLeader(t *testing.T) {
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
	_, err := adm.CreateTopics(ctx,
		admin.NewTopic{Name: "purchases", Partitions: 2, ReplicationFactor: 3},
		admin.NewTopic{Name: "counts", Partitions: 2, ReplicationFactor: 3})
	require.NoError(t, err)

	a, _ := startCounting(t, c, t.TempDir())
	buy(t, c, map[string]int{"ann": 3, "bob": 2, "cy": 1, "dee": 4})
	waitForCounts(t, c, a, map[string]int64{"ann": 3, "bob": 2, "cy": 1, "dee": 4})
	require.NoError(t, a.Close())

	leader := c.WaitLeader(streams.ChangelogTopic("app", "counts"), 0, clusterWait, func(int32) bool { return true })
	c.Kill(leader)
	c.WaitLeader(streams.ChangelogTopic("app", "counts"), 0, clusterWait, func(l int32) bool { return l != leader })

	b, log := startCounting(t, c, t.TempDir())
	buy(t, c, map[string]int{"ann": 1, "eve": 1})
	waitForCounts(t, c, b, map[string]int64{"ann": 4, "bob": 2, "cy": 1, "dee": 4, "eve": 1})
	require.True(t, log.has("from the start of the changelog"), "instance B had no state of its own: it restored from the changelog")
	require.NoError(t, b.Close())
}
