package streams_test

// Tests of how an application behaves when things go wrong: a cluster out
// of reach, a Close while it starts, a thread that fails, and settings at
// their edges.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

// TestConfigCommitIntervalZero: commit.interval.ms=0 is accepted, as Kafka
// accepts it (a commit after every round of the loop), and task.timeout.ms
// is Kafka's 5 minutes unless set.
func TestConfigCommitIntervalZero(t *testing.T) {
	cfg := streams.DefaultConfig()
	assert.Equal(t, 5*time.Minute, cfg.TaskTimeout)
	require.NoError(t, cfg.Set("application.id", "x"))
	require.NoError(t, cfg.Set("commit.interval.ms", "0"))
	require.NoError(t, cfg.Set("task.timeout.ms", "1000"))
	assert.Equal(t, time.Duration(0), cfg.CommitInterval)
	assert.Equal(t, time.Second, cfg.TaskTimeout)
	_, err := streams.New(wordCountTopology(), cfg)
	require.NoError(t, err)
	require.Error(t, cfg.Set("commit.interval.ms", "-1"))

	// It runs, and counts right.
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	cfg, _ = appConfig(t, addr, t.TempDir(), "commit.interval.ms", "0")
	app := startApp(t, wordCountTopology(), cfg)
	batch := words(50)
	produceWords(t, addr, "text", batch...)
	waitForCounts(t, addr, "counts", countWords(batch))
	require.NoError(t, app.Close())
}

// TestAppUnreachableCluster: an application whose cluster does not answer
// fails Start within seconds with the connection's error, not a minute
// later as missing source topics.
func TestAppUnreachableCluster(t *testing.T) {
	cfg, _ := appConfig(t, "127.0.0.1:1", t.TempDir())
	app, err := streams.New(wordCountTopology(), cfg)
	require.NoError(t, err)
	defer app.Close()
	began := time.Now()
	err = app.Start(context.Background())
	require.Error(t, err)
	var missing *streams.MissingSourceTopicError
	assert.False(t, errors.As(err, &missing), "error %v", err)
	assert.ErrorContains(t, err, "cannot reach the cluster")
	assert.ErrorContains(t, err, "127.0.0.1:1")
	assert.Less(t, time.Since(began), 10*time.Second)
	assert.Equal(t, streams.Error, app.State())
}

// produceKeyed writes records, key to value, each to the partition its key
// hashes to.
func produceKeyed(t *testing.T, addr, topic string, records map[string]string) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	p, err := producer.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for k, v := range records {
		_, err := p.Send(ctx, &producer.Record{Topic: topic, Key: []byte(k), Value: []byte(v)})
		require.NoError(t, err)
	}
}

// waitForCommitted waits until group has committed the end offset of every
// partition of topic: it has processed all of it.
func waitForCommitted(t *testing.T, addr, group, topic string, partitions int32) {
	t.Helper()
	cc := consumer.DefaultConfig()
	cc.BootstrapServers, cc.GroupID = []string{addr}, group
	c, err := consumer.New(cc)
	require.NoError(t, err)
	defer c.Close()
	ends := consumer.DefaultConfig()
	ends.BootstrapServers, ends.AutoOffsetReset = []string{addr}, "latest"
	e, err := consumer.New(ends)
	require.NoError(t, err)
	defer e.Close()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for p := range partitions {
			tp := consumer.TopicPartition{Topic: topic, Partition: p}
			e.Assign(tp)
			if e.Seek(tp, -1) != nil {
				return false
			}
			end, err := e.Position(ctx, tp)
			if err != nil {
				return false
			}
			committed, err := c.Committed(ctx, tp)
			if err != nil || committed[tp] != end {
				return false
			}
		}
		return true
	}, waitFor, 50*time.Millisecond, "group %s processes all of %s", group, topic)
}

// readAll reads topic (one partition, string keys and values) from the
// start, keeping the last value of each key, until it equals want.
func readAll(t *testing.T, addr, topic string, want map[string]string) {
	t.Helper()
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers, cfg.AutoOffsetReset = []string{addr}, "earliest"
	require.NoError(t, cfg.Set("fetch.max.wait.ms", "100"))
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	defer c.Close()
	c.Assign(consumer.TopicPartition{Topic: topic, Partition: 0})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	got := map[string]string{}
	for !maps.Equal(got, want) {
		records, err := c.Poll(ctx)
		require.NoError(t, err, "so far %v, want %v", got, want)
		for _, r := range records {
			got[string(r.Key)] = string(r.Value)
		}
	}
}

// TestAppCopartitionRepartitionTopic: a stream of 6 partitions whose key
// changes (SelectKey) is joined with a table of 3: the repartition topic
// the join reads is made as wide as the table (co-partitioned with it, as
// Kafka's CopartitionedTopicsEnforcer makes it), not as the stream, so the
// application starts, and every order meets its user.
func TestAppCopartitionRepartitionTopic(t *testing.T) {
	addr := startBroker(t, map[string]int32{"orders": 6, "users": 3, "enriched": 1})
	b := streams.NewStreamsBuilder()
	users := streams.Table(b, "users", stringsConsumed, streams.Materialized[string, string]{Name: "users"})
	orders := streams.Stream(b, "orders", stringsConsumed)
	byUser := streams.SelectKey(orders, func(_, user string) string { return user })
	streams.Join(byUser, users, func(_, region string) string { return region },
		streams.Joined[string, string]{Key: streams.String, Value: streams.String, Name: "by-user"}).
		To("enriched", streams.Produced[string, string]{Key: streams.String, Value: streams.String})
	topo, err := b.Build()
	require.NoError(t, err)

	regions := map[string]string{}
	for i := range 20 {
		regions[fmt.Sprintf("user-%d", i)] = fmt.Sprintf("region-%d", i%4)
	}
	produceKeyed(t, addr, "users", regions)
	cfg, _ := appConfig(t, addr, t.TempDir())
	app := startApp(t, topo, cfg)
	waitForCommitted(t, addr, "wc", "users", 3) // the table is loaded
	orderUsers := map[string]string{}
	for i := range 60 {
		orderUsers[fmt.Sprintf("order-%d", i)] = fmt.Sprintf("user-%d", i%20)
	}
	produceKeyed(t, addr, "orders", orderUsers)
	want := map[string]string{}
	for _, user := range orderUsers {
		want[user] = regions[user]
	}
	readAll(t, addr, "enriched", want)
	waitForState(t, app, streams.Running)

	adm := admin.New(admin.Options{Bootstrap: []string{addr}})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	descs, err := adm.DescribeTopics(ctx, "wc-by-user-repartition", "wc-users-changelog")
	require.NoError(t, err)
	for _, d := range descs {
		assert.Len(t, d.Partitions, 3, d.Name)
	}
	configs, err := adm.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: "wc-by-user-repartition"})
	require.NoError(t, err)
	for name, want := range map[string]string{"cleanup.policy": "delete", "retention.ms": "-1", "segment.bytes": "52428800"} {
		found := false
		for _, c := range configs[0].Configs {
			if c.Name == name && c.Value != nil {
				found = true
				assert.Equal(t, want, *c.Value, name)
			}
		}
		assert.True(t, found, "config %s", name)
	}
	require.NoError(t, app.Close())
}

// TestAppThreadErrorReportedAtOnce: a processor fails while the thread's
// producer still holds a record it cannot deliver (its topic wants two
// in-sync replicas of one, so the broker answers NOT_ENOUGH_REPLICAS,
// which the producer retries up to delivery.timeout.ms). The application
// is in state Error with the processor's error at once, not once the
// producer gave up; Close then returns that error.
func TestAppThreadErrorReportedAtOnce(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 1})
	adm := admin.New(admin.Options{Bootstrap: []string{addr}})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, err := adm.CreateTopics(ctx, admin.NewTopic{Name: "stuck", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"min.insync.replicas": "2"}})
	require.NoError(t, err)
	fail := streams.ProcessorFunc(func(ctx *streams.ProcessorContext, r streams.Record) error {
		if err := ctx.Forward(r); err != nil {
			return err
		}
		return errors.New("cannot go on")
	})
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String}).
		AddProcessor("fail", fail.Supplier(), "lines").
		AddSink(streams.Sink{Name: "out", Topic: "stuck", Key: streams.String, Value: streams.String, Parents: []string{"fail"}})
	cfg, _ := appConfig(t, addr, t.TempDir(),
		"producer.delivery.timeout.ms", "15000", "producer.request.timeout.ms", "5000")
	app := startApp(t, topo, cfg)
	waitForState(t, app, streams.Running)
	produceWords(t, addr, "text", "boom")
	sent := time.Now()
	require.Eventually(t, func() bool { return app.State() == streams.Error }, 5*time.Second, 10*time.Millisecond,
		"state %s: the error is reported before the producer gives up on its record (15 s)", app.State())
	assert.Less(t, time.Since(sent), 5*time.Second)
	require.ErrorContains(t, app.Err(), "cannot go on")
	require.ErrorContains(t, app.Close(), "cannot go on")
	assert.Equal(t, streams.Error, app.State())
}

// TestAppCloseDuringStart: Close at various moments right after Start
// (before, while and after the topics are prepared and the threads
// launched) cancels Start or stops the threads it launched, and returns
// only when nothing runs; the race detector watches the WaitGroup.
func TestAppCloseDuringStart(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 2, "counts": 2})
	for i := range 12 {
		cfg, _ := appConfig(t, addr, t.TempDir())
		app, err := streams.New(wordCountTopology(), cfg)
		require.NoError(t, err)
		started := make(chan error, 1)
		go func() { started <- app.Start(context.Background()) }()
		// Start has begun (its first act is to leave state Created).
		require.Eventually(t, func() bool { return app.State() != streams.Created }, waitFor, time.Millisecond)
		// Not a synchronisation: the moment of the Close, which varies.
		time.Sleep(time.Duration(i*i) * time.Millisecond)
		require.NoError(t, app.Close(), "round %d", i)
		select {
		case err := <-started:
			t.Logf("round %d: Start returned %v", i, err)
		default:
			t.Fatalf("round %d: Close returned before Start", i)
		}
		assert.Equal(t, streams.NotRunning, app.State(), "round %d", i)
	}

	// Closed before it started: Start refuses.
	cfg, _ := appConfig(t, addr, t.TempDir())
	app, err := streams.New(wordCountTopology(), cfg)
	require.NoError(t, err)
	require.NoError(t, app.Close())
	require.ErrorContains(t, app.Start(context.Background()), "an application starts once")
	assert.Equal(t, streams.NotRunning, app.State())
}

// TestAppDroppedRecordsReported: records whose event time is before 1970
// are dropped; the thread says so in its log at its commits (a count, not
// a line per record) and the status file counts them per task.
func TestAppDroppedRecordsReported(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	before1970 := streams.TimestampExtractor(func(r streams.Record, _ time.Time) time.Time {
		if r.Value == "old" {
			return time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)
		}
		return r.Timestamp
	})
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String, TimestampExtractor: before1970}).
		AddSink(streams.Sink{Name: "out", Topic: "counts", Key: streams.String, Value: streams.String, Parents: []string{"lines"}})
	stateDir := t.TempDir()
	cfg, log := appConfig(t, addr, stateDir)
	app := startApp(t, topo, cfg)
	produceWords(t, addr, "text", "old", "new", "old", "old", "new")
	require.Eventually(t, func() bool {
		st, err := streams.ReadStatus(stateDir, "wc")
		if err != nil || len(st.Threads) != 1 || len(st.Threads[0].Tasks) != 1 {
			return false
		}
		return st.Threads[0].Tasks[0].Dropped == 3
	}, waitFor, 20*time.Millisecond, "the status file counts 3 dropped records")
	lines := log.grep("with a timestamp before 1970")
	require.NotEmpty(t, lines)
	assert.LessOrEqual(t, len(lines), 3)
	require.NoError(t, app.Close())
}
