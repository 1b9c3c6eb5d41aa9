package streams_test

// An application on a cluster of three brokers in this process (package
// clustertest), its topics with one replica each: a killed broker that
// leads some of them stops the application's progress, not the
// application.

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
	"klab.dev/klab/streams"
)

// TestAppSurvivesBrokerRestart: the word count reads "text" and writes
// "counts" and its changelog, each of one replica, the output and the
// changelog on the broker that is killed (not the group coordinator's,
// nor the input's). It is killed for longer than a commit's old 30 s
// bound: the thread's commit waits for its records (up to the producer's
// delivery.timeout.ms) instead of failing, and once it is back the
// counts are right. Then, the broker killed again, the instance running the
// task closes and the other takes it over: its restore waits for the
// changelog's leader (up to task.timeout.ms) instead of failing, and once
// it is back it restores and counts on.
func TestAppSurvivesBrokerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a broker for 35 s")
	}
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		for _, s := range [][2]string{
			{"group.initial.rebalance.delay.ms", "0"},
			{"group.min.session.timeout.ms", "100"},
			{"offsets.topic.replication.factor", "3"},
			{"offsets.topic.num.partitions", "1"},
		} {
			if err := cfg.Set(s[0], s[1]); err != nil {
				panic(err)
			}
		}
	}})
	adm := admin.New(admin.Options{Bootstrap: c.Addrs()})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	// The group's coordinator is on a broker that stays up: its own
	// failover is another story (the group's generation starts again, and
	// an at-least-once commit fails, so records are counted twice).
	// Asking for a committed offset makes __consumer_offsets.
	cc := consumer.DefaultConfig()
	cc.BootstrapServers, cc.GroupID = c.Addrs(), "wc"
	probe, err := consumer.New(cc)
	require.NoError(t, err)
	_, _ = probe.Committed(ctx, consumer.TopicPartition{Topic: "text", Partition: 0})
	probe.Close()
	up := c.WaitLeader("__consumer_offsets", 0, waitFor, nil)
	down := up%3 + 1 // another broker: the one killed
	_, err = adm.CreateTopics(ctx,
		admin.NewTopic{Name: "text", Assignment: [][]int32{{up}}},
		admin.NewTopic{Name: "counts", Assignment: [][]int32{{down}}},
		admin.NewTopic{Name: streams.ChangelogTopic("wc", "counts"), Assignment: [][]int32{{down}}, Configs: map[string]string{"cleanup.policy": "compact"}})
	require.NoError(t, err)
	for _, topic := range []string{"text", "counts", streams.ChangelogTopic("wc", "counts")} {
		c.WaitLeader(topic, 0, waitFor, nil)
	}
	addr := c.Addr(up) // up all along
	settings := []string{
		"bootstrap.servers", strings.Join(c.Addrs(), ","),
		"replication.factor", "1",
		"consumer.max.poll.interval.ms", "300000", // a commit may wait long
	}

	cfgA, _ := appConfig(t, addr, t.TempDir(), settings...)
	a := startApp(t, wordCountTopology(), cfgA)
	batch1, batch2, batch3 := words(40), words(30), words(20)
	produceWords(t, addr, "text", batch1...)
	waitForCounts(t, addr, "counts", countWords(batch1))

	// Broker 3 down: the next records are processed, and their commit
	// waits for "counts" and the changelog.
	c.Kill(down)
	produceWords(t, addr, "text", batch2...)
	require.Never(t, func() bool { return a.State() == streams.Error }, 35*time.Second, 100*time.Millisecond,
		"the application failed")
	c.Restart(down)
	waitForCounts(t, addr, "counts", countWords(batch1, batch2))
	require.NoError(t, a.Err())

	// A second instance; that broker down again; whichever instance runs
	// the task leaves, and the other restores it from the changelog.
	cfgB, logB := appConfig(t, addr, t.TempDir(), settings...)
	b := startApp(t, wordCountTopology(), cfgB)
	waitForState(t, b, streams.Running)
	waitForState(t, a, streams.Running)
	owner, heir, heirLog := a, b, logB
	if len(tasksOf(a)) == 0 {
		owner, heir, heirLog = b, a, nil
	}
	c.Kill(down)
	require.NoError(t, owner.Close())
	require.Never(t, func() bool { return heir.State() == streams.Error }, 5*time.Second, 100*time.Millisecond,
		"the application failed")
	c.Restart(down)
	produceWords(t, addr, "text", batch3...)
	waitForCounts(t, addr, "counts", countWords(batch1, batch2, batch3))
	require.NoError(t, heir.Err())
	if heirLog != nil {
		require.NotEmpty(t, heirLog.grep("from the start of the changelog"), "B had no state of its own")
	}
	require.NoError(t, heir.Close())
}
