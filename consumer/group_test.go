package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
)

// sessionTimeout is the session.timeout.ms of the tests' members: short,
// so that a test that waits for one to be noticed gone waits little.
const sessionTimeout = 3 * time.Second

// startCluster starts a klab broker with the topic, of partitions
// partitions, and group settings for tests: a group forms as soon as its
// members have joined, sessions may be short, and __consumer_offsets is
// small.
func startCluster(t *testing.T, topic string, partitions int32) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, s := range [][2]string{
		{"group.initial.rebalance.delay.ms", "0"},
		{"group.min.session.timeout.ms", "100"},
		{"offsets.topic.num.partitions", "4"},
		{"offsets.topic.replication.factor", "1"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	return b.Addr()
}

// startFake starts franz-go's fake cluster instead, a second opinion on
// what a coordinator answers.
func startFake(t *testing.T, topic string, partitions int32) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// testLog writes a broker's log to the test's.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// produceValues writes the values from..to-1, as decimal strings, spread
// over the topic's partitions.
func produceValues(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			assert.NoError(t, err)
		})
	}
	require.NoError(t, cl.Flush(ctx))
}

// member is a consumer of a group that polls on a goroutine of its own, as
// an application does, and remembers what it got and what its rebalance
// callbacks were told.
type member struct {
	c *consumer.Consumer

	mu       sync.Mutex
	values   []string
	assigned [][]consumer.TopicPartition // each OnPartitionsAssigned
	revoked  [][]consumer.TopicPartition
	lost     [][]consumer.TopicPartition
	errs     []error
	paused   bool

	resume chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

// newMember makes a consumer of group with the settings (name, value, ...)
// over short test timeouts, subscribed to topic. It does not poll yet.
func newMember(t *testing.T, addr, group, topic string, settings ...string) *member {
	t.Helper()
	m := &member{resume: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	all := append([]string{
		"group.id", group,
		"auto.offset.reset", "earliest",
		"session.timeout.ms", fmt.Sprint(sessionTimeout.Milliseconds()),
		"heartbeat.interval.ms", "200",
		"max.poll.interval.ms", "10000",
		"fetch.max.wait.ms", "100",
	}, settings...)
	for i := 0; i+1 < len(all); i += 2 {
		require.NoError(t, cfg.Set(all[i], all[i+1]))
	}
	note := func(into *[][]consumer.TopicPartition) func([]consumer.TopicPartition) {
		return func(tps []consumer.TopicPartition) {
			m.mu.Lock()
			defer m.mu.Unlock()
			*into = append(*into, tps)
		}
	}
	cfg.OnPartitionsAssigned, cfg.OnPartitionsRevoked, cfg.OnPartitionsLost = note(&m.assigned), note(&m.revoked), note(&m.lost)
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	m.c = c
	require.NoError(t, c.Subscribe(topic))
	return m
}

// start polls until close.
func (m *member) start(t *testing.T) *member {
	t.Helper()
	go m.loop()
	t.Cleanup(m.close)
	return m
}

func (m *member) loop() {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		m.mu.Lock()
		paused := m.paused
		m.mu.Unlock()
		if paused {
			select {
			case <-m.resume:
			case <-m.stop:
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		recs, err := m.c.Poll(ctx)
		cancel()
		m.mu.Lock()
		for _, r := range recs {
			m.values = append(m.values, string(r.Value))
		}
		failed := err != nil && !errors.Is(err, context.DeadlineExceeded)
		if failed {
			m.errs = append(m.errs, err)
		}
		m.mu.Unlock()
		if failed {
			return // as an application stops on an error it does not expect
		}
	}
}

// pause stops polling, as an application stuck on a record does.
func (m *member) pause() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paused = true
}

func (m *member) unpause() {
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	select {
	case m.resume <- struct{}{}:
	case <-m.done:
	}
}

// close stops polling and closes the consumer; twice is harmless.
func (m *member) close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.done
	m.c.Close()
}

func (m *member) got() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.values)
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still not %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // a polling interval, not a synchronisation
	}
}

// values returns "from".."to-1".
func values(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func partitions(topic string, ps ...int32) []consumer.TopicPartition {
	var out []consumer.TopicPartition
	for _, p := range ps {
		out = append(out, consumer.TopicPartition{Topic: topic, Partition: p})
	}
	return out
}

func TestOneMemberReadsEverything(t *testing.T) {
	addr := startCluster(t, "t", 3)
	produceValues(t, addr, "t", 0, 30)
	m := newMember(t, addr, "g", "t").start(t)
	waitFor(t, 15*time.Second, "all 30 read", func() bool { return len(m.got()) >= 30 })
	assert.ElementsMatch(t, values(0, 30), m.got())
	assert.ElementsMatch(t, partitions("t", 0, 1, 2), m.c.Assignment())
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Empty(t, m.errs)
	assert.Equal(t, [][]consumer.TopicPartition{partitions("t", 0, 1, 2)}, m.assigned)
}

func TestTwoMembersSplitTheTopic(t *testing.T) {
	for _, strategy := range []string{"range", "roundrobin", "cooperative-sticky"} {
		t.Run(strategy, func(t *testing.T) {
			addr := startCluster(t, "t", 4)
			testTwoMembersSplit(t, addr, strategy)
		})
		t.Run(strategy+"/kfake", func(t *testing.T) {
			addr := startFake(t, "t", 4)
			testTwoMembersSplit(t, addr, strategy)
		})
	}
}

func testTwoMembersSplit(t *testing.T, addr, strategy string) {
	produceValues(t, addr, "t", 0, 40)
	a := newMember(t, addr, "g", "t", "partition.assignment.strategy", strategy).start(t)
	b := newMember(t, addr, "g", "t", "partition.assignment.strategy", strategy).start(t)
	waitFor(t, 20*time.Second, "two partitions each", func() bool {
		return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
	})
	assert.ElementsMatch(t, partitions("t", 0, 1, 2, 3), append(a.c.Assignment(), b.c.Assignment()...))
	waitFor(t, 20*time.Second, "all 40 read", func() bool { return len(a.got())+len(b.got()) >= 40 })
}

func TestAClosedMembersPartitionsGoToTheOther(t *testing.T) {
	addr := startCluster(t, "t", 4)
	a := newMember(t, addr, "g", "t").start(t)
	b := newMember(t, addr, "g", "t").start(t)
	waitFor(t, 20*time.Second, "two partitions each", func() bool {
		return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
	})
	a.close()
	waitFor(t, sessionTimeout, "all four with b", func() bool { return len(b.c.Assignment()) == 4 })
}

func TestARestartResumesFromTheCommittedOffsets(t *testing.T) {
	addr := startCluster(t, "t", 3)
	produceValues(t, addr, "t", 0, 30)
	a := newMember(t, addr, "g", "t").start(t)
	waitFor(t, 15*time.Second, "all 30 read", func() bool { return len(a.got()) >= 30 })
	a.close() // commits, as enable.auto.commit is on

	produceValues(t, addr, "t", 30, 45)
	b := newMember(t, addr, "g", "t").start(t)
	waitFor(t, 15*time.Second, "15 read", func() bool { return len(b.got()) >= 15 })
	// Anything read again would have come before what is new.
	assert.ElementsMatch(t, values(30, 45), b.got())
}

func TestCommitSyncThenANewConsumerStartsThere(t *testing.T) {
	addr := startCluster(t, "t", 1)
	produceValues(t, addr, "t", 0, 10)
	tp := consumer.TopicPartition{Topic: "t", Partition: 0}
	a := newMember(t, addr, "g", "t", "enable.auto.commit", "false", "max.poll.records", "1")
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for len(got) < 4 {
		recs, err := a.c.Poll(ctx)
		require.NoError(t, err)
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	require.NoError(t, a.c.CommitSync(ctx))
	committed, err := a.c.Committed(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, map[consumer.TopicPartition]int64{tp: 4}, committed)
	require.NoError(t, a.c.Close())

	b := newMember(t, addr, "g", "t", "enable.auto.commit", "false").start(t)
	waitFor(t, 15*time.Second, "the rest read", func() bool { return len(b.got()) >= 6 })
	assert.Equal(t, values(4, 10), b.got())

	// CommitOffsets moves the group's offset anywhere; CommitAsync reports.
	require.NoError(t, b.c.CommitOffsets(ctx, map[consumer.TopicPartition]int64{tp: 2}))
	committed, err = b.c.Committed(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, int64(2), committed[tp])
	done := make(chan error, 1)
	b.c.CommitAsync(func(err error) { done <- err })
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-ctx.Done():
		t.Fatal("CommitAsync never called back")
	}
	committed, err = b.c.Committed(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, int64(10), committed[tp])
}

func TestRebalanceCallbacks(t *testing.T) {
	// How many rebalances it takes for b to join depends on the timing of
	// their JoinGroups; what the callbacks say of each does not.
	t.Run("eager", func(t *testing.T) {
		addr := startCluster(t, "t", 4)
		a := newMember(t, addr, "g", "t", "partition.assignment.strategy", "range").start(t)
		waitFor(t, 15*time.Second, "a has all", func() bool { return len(a.c.Assignment()) == 4 })
		b := newMember(t, addr, "g", "t", "partition.assignment.strategy", "range").start(t)
		waitFor(t, 20*time.Second, "two each", func() bool {
			return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
		})
		for _, m := range []*member{a, b} {
			m.mu.Lock()
			// Eager: before each rejoin, all that was assigned is revoked.
			require.NotEmpty(t, m.assigned)
			assert.Equal(t, append([][]consumer.TopicPartition(nil), m.assigned[:len(m.assigned)-1]...), m.revoked)
			assert.Equal(t, m.c.Assignment(), m.assigned[len(m.assigned)-1])
			m.mu.Unlock()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		assert.Equal(t, partitions("t", 0, 1, 2, 3), a.assigned[0])
	})
	t.Run("cooperative", func(t *testing.T) {
		addr := startCluster(t, "t", 4)
		a := newMember(t, addr, "g", "t", "partition.assignment.strategy", "cooperative-sticky").start(t)
		waitFor(t, 15*time.Second, "a has all", func() bool { return len(a.c.Assignment()) == 4 })
		b := newMember(t, addr, "g", "t", "partition.assignment.strategy", "cooperative-sticky").start(t)
		waitFor(t, 20*time.Second, "two each", func() bool {
			return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
		})
		a.mu.Lock()
		defer a.mu.Unlock()
		// Cooperative: a keeps what it is not asked to give up; it revokes
		// only what b gets, and is assigned nothing new.
		var revoked []consumer.TopicPartition
		for _, tps := range a.revoked {
			revoked = append(revoked, tps...)
		}
		assert.ElementsMatch(t, b.c.Assignment(), revoked)
		assert.Equal(t, partitions("t", 0, 1, 2, 3), a.assigned[0])
		for _, tps := range a.assigned[1:] {
			assert.Empty(t, tps)
		}
		assert.Empty(t, a.lost)
		b.mu.Lock()
		defer b.mu.Unlock()
		var assigned []consumer.TopicPartition
		for _, tps := range b.assigned {
			assigned = append(assigned, tps...)
		}
		assert.ElementsMatch(t, b.c.Assignment(), assigned)
		assert.Empty(t, b.revoked)
	})
}

func TestAMemberThatStopsPollingLosesItsPartitions(t *testing.T) {
	addr := startCluster(t, "t", 4)
	const maxPoll = "1500"
	a := newMember(t, addr, "g", "t", "max.poll.interval.ms", maxPoll).start(t)
	b := newMember(t, addr, "g", "t", "max.poll.interval.ms", maxPoll).start(t)
	waitFor(t, 20*time.Second, "two each", func() bool {
		return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
	})
	owned := a.c.Assignment()
	a.pause()
	waitFor(t, 10*time.Second, "all four with b", func() bool { return len(b.c.Assignment()) == 4 })

	a.unpause() // a finds its partitions lost, and rejoins
	waitFor(t, 20*time.Second, "two each again", func() bool {
		return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	require.NotEmpty(t, a.lost)
	assert.ElementsMatch(t, owned, a.lost[0])
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	addr := startCluster(t, "t", 2)
	produceValues(t, addr, "t", 0, 10)
	m := newMember(t, addr, "g", "t").start(t)
	waitFor(t, 15*time.Second, "all read", func() bool { return len(m.got()) >= 10 })
	m.close()
	waitFor(t, 5*time.Second, "no consumer goroutine left", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "klab.dev/klab/consumer.(*Consumer)")
	})
}

func TestConfigSetsGroupSettings(t *testing.T) {
	cfg := consumer.DefaultConfig()
	assert.Equal(t, []string{"range", "cooperative-sticky"}, cfg.PartitionAssignmentStrategy)
	assert.True(t, cfg.EnableAutoCommit)
	assert.Equal(t, 45*time.Second, cfg.SessionTimeout)
	assert.Equal(t, 3*time.Second, cfg.HeartbeatInterval)
	assert.Equal(t, 5*time.Minute, cfg.MaxPollInterval)
	assert.Equal(t, 5*time.Second, cfg.AutoCommitInterval)
	for _, s := range [][2]string{
		{"group.id", "g"}, {"group.instance.id", "i"}, {"session.timeout.ms", "6000"},
		{"heartbeat.interval.ms", "1000"}, {"max.poll.interval.ms", "2000"},
		{"enable.auto.commit", "false"}, {"auto.commit.interval.ms", "100"},
		{"partition.assignment.strategy", "org.apache.kafka.clients.consumer.RoundRobinAssignor, cooperative-sticky"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	assert.Equal(t, "g", cfg.GroupID)
	assert.Equal(t, "i", cfg.GroupInstanceID)
	assert.Equal(t, 6*time.Second, cfg.SessionTimeout)
	assert.Equal(t, time.Second, cfg.HeartbeatInterval)
	assert.Equal(t, 2*time.Second, cfg.MaxPollInterval)
	assert.False(t, cfg.EnableAutoCommit)
	assert.Equal(t, 100*time.Millisecond, cfg.AutoCommitInterval)
	assert.Equal(t, []string{"roundrobin", "cooperative-sticky"}, cfg.PartitionAssignmentStrategy)
	assert.Error(t, cfg.Set("partition.assignment.strategy", "sticky"))

	cfg.HeartbeatInterval = cfg.SessionTimeout
	_, err := consumer.New(cfg)
	assert.ErrorContains(t, err, "heartbeat.interval.ms")
}

func TestAStaticMemberKeepsItsPlaceThroughARestart(t *testing.T) {
	addr := startCluster(t, "t", 4)
	a := newMember(t, addr, "g", "t", "group.instance.id", "a").start(t)
	b := newMember(t, addr, "g", "t", "group.instance.id", "b").start(t)
	waitFor(t, 20*time.Second, "two partitions each", func() bool {
		return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
	})
	owned := a.c.Assignment()
	a.close() // a static member sends no LeaveGroup

	// a comes back within the session timeout under its instance id: it
	// gets its partitions back, and b keeps its own.
	a = newMember(t, addr, "g", "t", "group.instance.id", "a").start(t)
	waitFor(t, 20*time.Second, "a's partitions back", func() bool {
		return slices.Equal(owned, a.c.Assignment()) && len(b.c.Assignment()) == 2
	})

	// Gone for good, it is noticed when its session times out.
	a.close()
	began := time.Now()
	waitFor(t, 3*sessionTimeout, "all four with b", func() bool { return len(b.c.Assignment()) == 4 })
	assert.GreaterOrEqual(t, time.Since(began), sessionTimeout/2, "b took a's partitions before a's session could expire")
}

func TestAnAssigningConsumerCommitsToItsGroup(t *testing.T) {
	addr := startCluster(t, "t", 2)
	produceValues(t, addr, "t", 0, 10)
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers, cfg.GroupID, cfg.AutoOffsetReset = []string{addr}, "g", "earliest"
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	defer c.Close()
	tps := partitions("t", 0, 1)
	c.Assign(tps...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for n := 0; n < 10; {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		n += len(recs)
	}
	require.NoError(t, c.CommitSync(ctx)) // generation -1, no member id: the group has no members
	committed, err := c.Committed(ctx, tps...)
	require.NoError(t, err)
	assert.Equal(t, map[consumer.TopicPartition]int64{tps[0]: 5, tps[1]: 5}, committed)

	// Commits carry the leader epoch of the last record read (KIP-320).
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, "g")
	require.NoError(t, err)
	o, ok := offsets.Lookup("t", 0)
	require.True(t, ok)
	assert.Equal(t, int64(5), o.At)
	assert.Equal(t, int32(0), o.LeaderEpoch)
}

// A member joining mid-stream makes the first revoke partitions, which it
// commits first (auto commit): between them, the two read every record
// once.
func TestARebalanceNeitherLosesNorRepeats(t *testing.T) {
	for _, strategy := range []string{"range", "cooperative-sticky"} {
		t.Run(strategy, func(t *testing.T) {
			addr := startCluster(t, "t", 4)
			produceValues(t, addr, "t", 0, 100)
			settings := []string{"partition.assignment.strategy", strategy, "max.poll.records", "3"}
			a := newMember(t, addr, "g", "t", settings...).start(t)
			waitFor(t, 15*time.Second, "a reading", func() bool { return len(a.got()) >= 10 })
			b := newMember(t, addr, "g", "t", settings...).start(t)
			waitFor(t, 20*time.Second, "two each", func() bool {
				return len(a.c.Assignment()) == 2 && len(b.c.Assignment()) == 2
			})
			produceValues(t, addr, "t", 100, 200)
			waitFor(t, 20*time.Second, "all 200 read", func() bool { return len(a.got())+len(b.got()) >= 200 })
			assert.ElementsMatch(t, values(0, 200), append(a.got(), b.got()...))
		})
	}
}

// A coordinator that moved or is not ready makes the member look for it
// again and retry: each request here fails once, and the member still
// joins, reads, heartbeats and commits.
func TestCoordinatorErrorsAreRetried(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	produceValues(t, addr, "t", 0, 20)

	var mu sync.Mutex
	failed := map[kmsg.Key]bool{}
	failOnce := func(key kmsg.Key, answer func(kmsg.Request) kmsg.Response) {
		cluster.ControlKey(int16(key), func(req kmsg.Request) (kmsg.Response, error, bool) {
			mu.Lock()
			defer mu.Unlock()
			failed[key] = true
			return answer(req), nil, true
		})
	}
	failOnce(kmsg.JoinGroup, func(req kmsg.Request) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	})
	failOnce(kmsg.Heartbeat, func(req kmsg.Request) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	})
	failOnce(kmsg.OffsetFetch, func(req kmsg.Request) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code // v2-v7
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group, g.ErrorCode = "g", kerr.CoordinatorLoadInProgress.Code // v8+
		resp.Groups = append(resp.Groups, g)
		return resp
	})
	failOnce(kmsg.OffsetCommit, func(req kmsg.Request) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.(*kmsg.OffsetCommitRequest).Topics {
			t := kmsg.NewOffsetCommitResponseTopic()
			t.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				p := kmsg.NewOffsetCommitResponseTopicPartition()
				p.Partition, p.ErrorCode = rp.Partition, kerr.NotCoordinator.Code
				t.Partitions = append(t.Partitions, p)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return resp
	})

	m := newMember(t, addr, "g", "t", "auto.commit.interval.ms", "100").start(t)
	waitFor(t, 15*time.Second, "all 20 read", func() bool { return len(m.got()) >= 20 })
	waitFor(t, 15*time.Second, "every request failed once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(failed) == 4
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, m.c.CommitSync(ctx))
	committed, err := m.c.Committed(ctx, partitions("t", 0, 1)...)
	require.NoError(t, err)
	assert.Equal(t, map[consumer.TopicPartition]int64{{Topic: "t", Partition: 0}: 10, {Topic: "t", Partition: 1}: 10}, committed)
	assert.Equal(t, values(0, 20), sorted(m.got()))
}

// sorted sorts decimal strings by value.
func sorted(vs []string) []string {
	out := slices.Clone(vs)
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return out
}

// Two consumers with one group.instance.id: the newer takes the place of
// the older, whose Poll fails from then on (FENCED_INSTANCE_ID).
func TestASecondStaticMemberWithTheSameIDFencesTheFirst(t *testing.T) {
	addr := startCluster(t, "t", 2)
	a := newMember(t, addr, "g", "t", "group.instance.id", "x").start(t)
	waitFor(t, 15*time.Second, "a has both", func() bool { return len(a.c.Assignment()) == 2 })
	b := newMember(t, addr, "g", "t", "group.instance.id", "x").start(t)
	waitFor(t, 15*time.Second, "b has both", func() bool { return len(b.c.Assignment()) == 2 })
	waitFor(t, 15*time.Second, "a fenced", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.errs) > 0
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	assert.ErrorContains(t, a.errs[0], "FENCED_INSTANCE_ID")
}

// A member the coordinator no longer knows (UNKNOWN_MEMBER_ID: its session
// expired) or that missed a generation (ILLEGAL_GENERATION) has lost its
// partitions: OnPartitionsLost, not OnPartitionsRevoked, and it joins
// again.
func TestAMemberThatFellOutOfItsGenerationLosesItsPartitionsAndRejoins(t *testing.T) {
	for _, code := range []*kerr.Error{kerr.UnknownMemberID, kerr.IllegalGeneration} {
		t.Run(code.Message, func(t *testing.T) {
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"),
				kfake.GroupMinSessionTimeout(100*time.Millisecond))
			require.NoError(t, err)
			t.Cleanup(cluster.Close)
			addr := cluster.ListenAddrs()[0]
			m := newMember(t, addr, "g", "t").start(t)
			waitFor(t, 15*time.Second, "both assigned", func() bool { return len(m.c.Assignment()) == 2 })

			cluster.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
				resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
				resp.ErrorCode = code.Code
				return resp, nil, true
			})
			waitFor(t, 15*time.Second, "lost, and assigned again", func() bool {
				m.mu.Lock()
				defer m.mu.Unlock()
				return len(m.lost) == 1 && len(m.assigned) == 2
			})
			m.mu.Lock()
			defer m.mu.Unlock()
			assert.Equal(t, partitions("t", 0, 1), m.lost[0])
			assert.Equal(t, partitions("t", 0, 1), m.assigned[1])
			assert.Empty(t, m.revoked)
			assert.Empty(t, m.errs)
		})
	}
}

// The group's coordinator dies: the member finds the new one (the
// broker that now leads the group's partition of __consumer_offsets),
// and reads on. Records may be read twice (what was read after the last
// commit), none is lost.
func TestTheMemberFollowsItsCoordinatorWhenItDies(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-broker cluster")
	}
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Groups.InitialRebalanceDelay = 0
		cfg.Groups.MinSessionTimeout = 100 * time.Millisecond
		cfg.OffsetsTopicPartitions = 3
	}})
	c.CreateTopic("t", 2, 3, nil, nil)
	coordinator := int32(-1)
	c.WaitFor(20*time.Second, "a coordinator", func() bool {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = "g"
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, c.Client())
		if err != nil || resp.ErrorCode != 0 {
			return false
		}
		coordinator = resp.NodeID
		return true
	})
	var survivor string
	for _, id := range c.IDs() {
		if id != coordinator {
			survivor = c.Addr(id)
		}
	}
	produceValues(t, survivor, "t", 0, 50)
	m := newMember(t, survivor, "g", "t", "auto.commit.interval.ms", "100").start(t)
	waitFor(t, 30*time.Second, "50 read", func() bool { return len(m.got()) >= 50 })

	c.Kill(coordinator)
	produceValues(t, survivor, "t", 50, 100)
	waitFor(t, 60*time.Second, "all 100 read", func() bool { return len(slices.Compact(sorted(m.got()))) >= 100 })
	assert.Equal(t, values(0, 100), slices.Compact(sorted(m.got())))
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Empty(t, m.errs)
}
