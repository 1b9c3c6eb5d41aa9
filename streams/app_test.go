package streams_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

// waitFor bounds every wait of these tests: generous, for a machine whose
// cores are busy, and still an answer rather than a hang.
const waitFor = 60 * time.Second

// startBroker starts a klab broker on loopback, set up for group tests: a
// group forms as soon as its members have joined (no initial rebalance
// delay), short sessions are allowed, and __consumer_offsets is small. It
// creates the topics, name to partition count.
func startBroker(t *testing.T, topics map[string]int32) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range [][2]string{
		{"group.initial.rebalance.delay.ms", "0"},
		{"group.min.session.timeout.ms", "100"},
		{"offsets.topic.num.partitions", "2"},
		{"offsets.topic.replication.factor", "1"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	adm := admin.New(admin.Options{Bootstrap: []string{b.Addr()}})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		_, err := adm.CreateTopics(ctx, admin.NewTopic{Name: name, Partitions: topics[name], ReplicationFactor: 1})
		require.NoError(t, err)
	}
	return b.Addr()
}

// produceWords writes each word as a record keyed by itself, so that a
// word always lands in the same partition and the processor-API word count
// (which does not repartition) counts it in one task.
func produceWords(t *testing.T, addr, topic string, words ...string) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	p, err := producer.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	for _, w := range words {
		p.SendAsync(&producer.Record{Topic: topic, Key: []byte(w), Value: []byte(w)}, func(_ producer.RecordMetadata, err error) {
			assert.NoError(t, err)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, p.Flush(ctx))
}

// countWords returns how many times each word appears in lists of words.
func countWords(lists ...[]string) map[string]int64 {
	out := map[string]int64{}
	for _, l := range lists {
		for _, w := range l {
			out[w]++
		}
	}
	return out
}

// words makes n words out of a few, in a repeating pattern.
func words(n int) []string {
	vocabulary := []string{"kafka", "streams", "go", "table", "log", "topic", "task", "store"}
	out := make([]string, n)
	for i := range out {
		out[i] = vocabulary[(i*7+i/3)%len(vocabulary)]
	}
	return out
}

// waitForCounts reads topic (string keys, int64 values) from the start,
// keeping the last value of each key, until it equals want.
func waitForCounts(t *testing.T, addr, topic string, want map[string]int64) {
	t.Helper()
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	cfg.AutoOffsetReset = "earliest"
	require.NoError(t, cfg.Set("fetch.max.wait.ms", "100"))
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	defer c.Close()
	adm := admin.New(admin.Options{Bootstrap: []string{addr}})
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	descs, err := adm.DescribeTopics(ctx, topic)
	require.NoError(t, err)
	var tps []consumer.TopicPartition
	for _, p := range descs[0].Partitions {
		tps = append(tps, consumer.TopicPartition{Topic: topic, Partition: p.Partition})
	}
	c.Assign(tps...)
	got := map[string]int64{}
	for !maps.Equal(got, want) {
		records, err := c.Poll(ctx)
		require.NoError(t, err, "counts so far %v, want %v", got, want)
		for _, r := range records {
			n, err := streams.Int64.Deserialize(topic, r.Value)
			require.NoError(t, err)
			got[string(r.Key)] = n
		}
	}
}

// testLog is an application's Logger that keeps its lines, for the test to
// look at, and passes them to the test's log.
type testLog struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *testLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	l.t.Log(line)
}

// grep returns the lines that contain s.
func (l *testLog) grep(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// appConfig is a configuration for tests: quick commits, short sessions,
// and a log the test can read.
func appConfig(t *testing.T, addr, stateDir string, settings ...string) (streams.Config, *testLog) {
	t.Helper()
	log := &testLog{t: t}
	cfg := streams.DefaultConfig()
	cfg.Logger = log.logf
	all := append([]string{
		"application.id", "wc",
		"bootstrap.servers", addr,
		"state.dir", stateDir,
		"commit.interval.ms", "100",
		"consumer.session.timeout.ms", "6000",
		"consumer.heartbeat.interval.ms", "200",
		"consumer.max.poll.interval.ms", "20000",
		"consumer.fetch.max.wait.ms", "100",
		"producer.linger.ms", "5",
	}, settings...)
	for i := 0; i+1 < len(all); i += 2 {
		require.NoError(t, cfg.Set(all[i], all[i+1]))
	}
	return cfg, log
}

// startApp starts the topology with cfg and waits until it runs. The test
// closes it (t.Cleanup closes it too, in case the test failed first).
func startApp(t *testing.T, topo *streams.Topology, cfg streams.Config) *streams.KafkaStreams {
	t.Helper()
	app, err := streams.New(topo, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { app.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, app.Start(ctx))
	return app
}

// waitForState waits until app is in state want, or fails the test with
// what it is in and why.
func waitForState(t *testing.T, app *streams.KafkaStreams, want streams.State) {
	t.Helper()
	require.Eventually(t, func() bool { return app.State() == want }, waitFor, 20*time.Millisecond,
		"state %s, want %s (error: %v)", app.State(), want, app.Err())
}

// tasksOf lists the tasks of every thread of app.
func tasksOf(app *streams.KafkaStreams) []string {
	var out []string
	for _, th := range app.Threads() {
		for _, task := range th.Tasks {
			out = append(out, task.ID.String())
		}
	}
	return out
}

// TestAppWordCountRestarts runs the processor-API word count on a broker:
// its counts are right; stopped and started again on the same state
// directory, it restores nothing (its checkpoints match the changelogs'
// ends) and counts on; started again after CleanUp emptied its state
// directory, it restores its store from the changelog, and counts on.
func TestAppWordCountRestarts(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 2, "counts": 2})
	stateDir := t.TempDir()
	batch1, batch2, batch3 := words(300), words(50), words(70)

	produceWords(t, addr, "text", batch1...)
	cfg, _ := appConfig(t, addr, stateDir)
	app := startApp(t, wordCountTopology(), cfg)
	waitForCounts(t, addr, "counts", countWords(batch1))
	waitForState(t, app, streams.Running)
	assert.ElementsMatch(t, []string{"0_0", "0_1"}, tasksOf(app))
	status, err := streams.ReadStatus(stateDir, "wc")
	require.NoError(t, err)
	require.Len(t, status.Threads, 1)
	for _, task := range status.Threads[0].Tasks {
		require.Len(t, task.Stores, 1)
		assert.Equal(t, streams.StoreRunning, task.Stores[0].State, "task %s", task.ID)
	}
	require.NoError(t, app.Close())
	assert.Equal(t, streams.NotRunning, app.State())

	// The same state directory: the checkpoints are at the changelogs' ends.
	produceWords(t, addr, "text", batch2...)
	cfg, log := appConfig(t, addr, stateDir)
	app = startApp(t, wordCountTopology(), cfg)
	waitForCounts(t, addr, "counts", countWords(batch1, batch2))
	require.NoError(t, app.Close())
	assert.Len(t, log.grep("restored 0 records from the checkpoint"), 2, "both tasks restore nothing")

	// The local state cleaned up: the store comes back from the changelog.
	produceWords(t, addr, "text", batch3...)
	require.NoError(t, app.CleanUp())
	assert.NoDirExists(t, filepath.Join(stateDir, "wc"))
	cfg, log = appConfig(t, addr, stateDir)
	app = startApp(t, wordCountTopology(), cfg)
	require.Error(t, app.CleanUp(), "not while it runs")
	waitForCounts(t, addr, "counts", countWords(batch1, batch2, batch3))
	require.NoError(t, app.Close())
	restored := log.grep("from the start of the changelog")
	require.Len(t, restored, 2)
	for _, line := range restored {
		assert.NotContains(t, line, "restored 0 records", "the changelog has records for both tasks")
	}
}

// TestAppInstancesSplitTasks runs two instances, one of two threads and
// one of one, over a 4-partition input: the group deals the four tasks
// among the three threads, each task to one, and together they count
// right. When one instance leaves, the other takes over its tasks, their
// stores restored from the changelogs, and the counts go on.
func TestAppInstancesSplitTasks(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 4, "counts": 4})
	cfgA, _ := appConfig(t, addr, t.TempDir(), "num.stream.threads", "2")
	cfgB, _ := appConfig(t, addr, t.TempDir())
	a := startApp(t, wordCountTopology(), cfgA)
	b := startApp(t, wordCountTopology(), cfgB)
	require.Eventually(t, func() bool {
		all := append(tasksOf(a), tasksOf(b)...)
		slices.Sort(all)
		return a.State() == streams.Running && b.State() == streams.Running &&
			slices.Equal(all, []string{"0_0", "0_1", "0_2", "0_3"})
	}, waitFor, 20*time.Millisecond, "tasks %v and %v", tasksOf(a), tasksOf(b))
	for _, th := range append(a.Threads(), b.Threads()...) {
		// Four tasks over three threads: two, one and one.
		assert.Contains(t, []int{1, 2}, len(th.Tasks), "thread %s", th.Name)
	}
	batch := words(400)
	produceWords(t, addr, "text", batch...)
	waitForCounts(t, addr, "counts", countWords(batch))

	// B leaves: A takes its task, restores its store from the changelog
	// (A's state directory has nothing of it), and counts on.
	require.NoError(t, b.Close())
	require.Eventually(t, func() bool {
		return a.State() == streams.Running && len(tasksOf(a)) == 4
	}, waitFor, 20*time.Millisecond, "tasks of A: %v", tasksOf(a))
	more := words(100)
	produceWords(t, addr, "text", more...)
	waitForCounts(t, addr, "counts", countWords(batch, more))
	require.NoError(t, a.Close())
}

// TestAppMissingSourceTopic: an application whose input does not exist
// stops within seconds and says which topic is missing.
func TestAppMissingSourceTopic(t *testing.T) {
	addr := startBroker(t, map[string]int32{"counts": 1})
	cfg, _ := appConfig(t, addr, t.TempDir())
	app, err := streams.New(wordCountTopology(), cfg)
	require.NoError(t, err)
	defer app.Close()
	began := time.Now()
	err = app.Start(context.Background())
	var missing *streams.MissingSourceTopicError
	require.True(t, errors.As(err, &missing), "error %v", err)
	assert.Equal(t, []string{"text"}, missing.Topics)
	assert.Less(t, time.Since(began), 10*time.Second)
	assert.Equal(t, streams.Error, app.State())
	assert.ErrorIs(t, app.Err(), err)
}

// TestConfig checks the settings by their Java names.
func TestConfig(t *testing.T) {
	cfg := streams.DefaultConfig()
	assert.Equal(t, 1, cfg.NumStreamThreads)
	assert.Equal(t, 30*time.Second, cfg.CommitInterval)
	assert.Equal(t, int16(-1), cfg.ReplicationFactor)
	assert.True(t, strings.HasSuffix(cfg.StateDir, filepath.Join("", "kafka-streams")))
	require.NoError(t, cfg.Set("num.stream.threads", "3"))
	require.NoError(t, cfg.Set("consumer.session.timeout.ms", "10000"))
	assert.Equal(t, 3, cfg.NumStreamThreads)
	assert.Equal(t, "10000", cfg.Consumer["session.timeout.ms"])
	err := cfg.Set("processing.guarantee", "exactly_once_v2")
	require.ErrorContains(t, err, "exactly-once waits for transactions")
	require.Error(t, cfg.Set("no.such.setting", "1"))

	_, err = streams.New(wordCountTopology(), cfg)
	require.ErrorContains(t, err, "application.id is required")
	require.NoError(t, cfg.Set("application.id", "x"))
	require.NoError(t, cfg.Set("consumer.no.such.setting", "1"))
	_, err = streams.New(wordCountTopology(), cfg)
	require.ErrorContains(t, err, "consumer.no.such.setting")
}

// TestAppProcessorError: a processor's error stops the application in
// state Error, and Err and Close say why.
func TestAppProcessorError(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	fail := streams.ProcessorFunc(func(ctx *streams.ProcessorContext, r streams.Record) error {
		if r.Value.(string) == "boom" {
			return errors.New("cannot count boom")
		}
		return ctx.Forward(r)
	})
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String}).
		AddProcessor("check", fail.Supplier(), "lines").
		AddSink(streams.Sink{Name: "out", Topic: "counts", Key: streams.String, Value: streams.String, Parents: []string{"check"}})
	cfg, _ := appConfig(t, addr, t.TempDir())
	app := startApp(t, topo, cfg)
	produceWords(t, addr, "text", "fine", "boom")
	waitForState(t, app, streams.Error)
	require.ErrorContains(t, app.Err(), "cannot count boom")
	require.ErrorContains(t, app.Close(), "cannot count boom")
	assert.Equal(t, streams.Error, app.State())
}

// produceLines writes lines without keys, round robin over partitions 0
// to 2.
func produceLines(t *testing.T, addr, topic string, lines ...string) {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	p, err := producer.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	for i, line := range lines {
		partition := int32(i % 3)
		p.SendAsync(&producer.Record{Topic: topic, Value: []byte(line), Partition: &partition}, func(_ producer.RecordMetadata, err error) {
			assert.NoError(t, err)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, p.Flush(ctx))
}

// TestAppDSLWordCount runs the DSL word count, whose GroupBy repartitions
// by word, on two instances: the application creates the repartition
// topic as wide as its input and the changelog as wide as the repartition
// topic, and the two sub-topologies' tasks, spread over both instances,
// count every word once whatever partition its lines were in. The
// records of the repartition topic are deleted once committed.
func TestAppDSLWordCount(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 3, "counts": 2})
	topo, err := wordCount("text", "counts").Build()
	require.NoError(t, err)
	cfgA, _ := appConfig(t, addr, t.TempDir(), "repartition.purge.interval.ms", "0")
	cfgB, _ := appConfig(t, addr, t.TempDir(), "repartition.purge.interval.ms", "0")
	a := startApp(t, topo, cfgA)
	b := startApp(t, topo, cfgB)
	var lines []string
	var all []string
	for i := range 60 {
		ws := words(i%5 + 1)
		lines = append(lines, strings.Join(ws, " "))
		all = append(all, ws...)
	}
	produceLines(t, addr, "text", lines...)
	waitForCounts(t, addr, "counts", countWords(all))
	require.Eventually(t, func() bool {
		tasks := append(tasksOf(a), tasksOf(b)...)
		slices.Sort(tasks)
		return slices.Equal(tasks, []string{"0_0", "0_1", "0_2", "1_0", "1_1", "1_2"})
	}, waitFor, 20*time.Millisecond)
	adm := admin.New(admin.Options{Bootstrap: []string{addr}})
	defer adm.Close()
	descs, err := adm.DescribeTopics(context.Background(), "wc-counts-repartition", "wc-counts-changelog")
	require.NoError(t, err)
	for _, d := range descs {
		assert.Len(t, d.Partitions, 3, d.Name)
	}

	// What the application committed of its repartition topic is purged.
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers, cfg.AutoOffsetReset = []string{addr}, "earliest"
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		purged := 0
		for p := range int32(3) {
			tp := consumer.TopicPartition{Topic: "wc-counts-repartition", Partition: p}
			c.Assign(tp)
			if c.Seek(tp, -1) != nil { // forget the position: find the log start again
				return false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			start, err := c.Position(ctx, tp)
			cancel()
			if err == nil && start > 0 {
				purged++
			}
		}
		return purged == 3
	}, waitFor, 50*time.Millisecond, "the repartition topic's log start offsets move up")
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
}

// TestAppInMemoryStoreRestores: an in-memory store has no checkpoint, so
// a restart on the same state directory replays its whole changelog, and
// counts go on from where they were.
func TestAppInMemoryStoreRestores(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	topo := func() *streams.Topology {
		return streams.NewTopology().
			AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String}).
			AddProcessor("count", func() streams.Processor { return &wordCounter{} }, "lines").
			AddStateStore(streams.StoreSpec{Name: "counts", InMemory: true}, "count").
			AddSink(streams.Sink{Name: "out", Topic: "counts", Key: streams.String, Value: streams.Int64, Parents: []string{"count"}})
	}
	stateDir := t.TempDir()
	batch1, batch2 := words(40), words(10)
	produceWords(t, addr, "text", batch1...)
	cfg, _ := appConfig(t, addr, stateDir)
	app := startApp(t, topo(), cfg)
	waitForCounts(t, addr, "counts", countWords(batch1))
	require.NoError(t, app.Close())

	produceWords(t, addr, "text", batch2...)
	cfg, log := appConfig(t, addr, stateDir)
	app = startApp(t, topo(), cfg)
	waitForCounts(t, addr, "counts", countWords(batch1, batch2))
	require.NoError(t, app.Close())
	assert.Len(t, log.grep("restored 40 records from the start of the changelog"), 1)
}

// TestAppPunctuationAndCommitRequest: a wall-clock punctuation fires on a
// running application, records or not, and a processor's Commit commits
// the input offsets long before commit.interval.ms.
func TestAppPunctuationAndCommitRequest(t *testing.T) {
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String}).
		AddProcessor("tick", func() streams.Processor { return &punctuator{} }, "lines").
		AddSink(streams.Sink{Name: "out", Topic: "counts", Key: streams.String, Value: streams.String, Parents: []string{"tick"}})
	cfg, _ := appConfig(t, addr, t.TempDir(), "commit.interval.ms", "3600000")
	app := startApp(t, topo, cfg)
	waitForState(t, app, streams.Running)
	produceWords(t, addr, "text", "a", "b", "c")

	cc := consumer.DefaultConfig()
	cc.BootstrapServers, cc.GroupID = []string{addr}, "wc"
	c, err := consumer.New(cc)
	require.NoError(t, err)
	defer c.Close()
	tp := consumer.TopicPartition{Topic: "text", Partition: 0}
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		committed, err := c.Committed(ctx, tp)
		return err == nil && committed[tp] == 3
	}, waitFor, 50*time.Millisecond, "the processor asked for a commit after each record")

	out := consumer.DefaultConfig()
	out.BootstrapServers, out.AutoOffsetReset = []string{addr}, "earliest"
	ticks, err := consumer.New(out)
	require.NoError(t, err)
	defer ticks.Close()
	ticks.Assign(consumer.TopicPartition{Topic: "counts", Partition: 0})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	for n := 0; n < 3; {
		records, err := ticks.Poll(ctx)
		require.NoError(t, err)
		for _, r := range records {
			if string(r.Key) == "tick" {
				n++
			}
		}
	}
	require.NoError(t, app.Close())
}

// punctuator asks for a commit after each record, and forwards a "tick"
// every 20 ms of wall-clock time.
type punctuator struct{ ctx *streams.ProcessorContext }

func (p *punctuator) Init(ctx *streams.ProcessorContext) error {
	p.ctx = ctx
	_, err := ctx.Schedule(20*time.Millisecond, streams.WallClockTime, func(now time.Time) error {
		return ctx.Forward(streams.Record{Key: "tick", Value: now.String(), Timestamp: now})
	})
	return err
}

func (p *punctuator) Process(streams.Record) error {
	p.ctx.Commit()
	return nil
}

func (p *punctuator) Close() error { return nil }
