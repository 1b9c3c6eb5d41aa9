package admin_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// startBroker starts one klab broker on loopback and returns its address.
func startBroker(t *testing.T) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

// newClient returns an admin client for the brokers, closed with the test.
func newClient(t *testing.T, opts admin.Options) *admin.Client {
	t.Helper()
	c := admin.New(opts)
	t.Cleanup(c.Close)
	return c
}

// testContext is a context that ends before the test would hang.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestTopicsOnOneBroker(t *testing.T) {
	ctx := testContext(t)
	c := newClient(t, admin.Options{Bootstrap: []string{startBroker(t)}})

	res, err := c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "60000"}})
	require.NoError(t, err)
	require.Len(t, res, 1)
	assert.Equal(t, "orders", res[0].Name)
	assert.EqualValues(t, 3, res[0].Partitions)
	assert.NotEqual(t, [16]byte{}, res[0].ID, "a topic id from CreateTopics v7")

	// Each topic of a request succeeds or fails alone, and each failure is
	// its Kafka error, by name.
	res, err = c.CreateTopics(ctx,
		admin.NewTopic{Name: "orders", Partitions: 1},
		admin.NewTopic{Name: "payments", Partitions: 1, ReplicationFactor: 3},
		admin.NewTopic{Name: "refunds", Partitions: 2},
	)
	assert.ErrorIs(t, err, kerr.TopicAlreadyExists)
	assert.ErrorIs(t, err, kerr.InvalidReplicationFactor, "three replicas on one broker")
	require.Len(t, res, 3)
	assert.ErrorIs(t, res[0].Err, kerr.TopicAlreadyExists)
	assert.ErrorIs(t, res[1].Err, kerr.InvalidReplicationFactor)
	assert.NoError(t, res[2].Err)

	topics, err := c.DescribeTopics(ctx, "orders")
	require.NoError(t, err)
	require.Len(t, topics, 1)
	require.Len(t, topics[0].Partitions, 3)
	for i, p := range topics[0].Partitions {
		assert.EqualValues(t, i, p.Partition)
		assert.EqualValues(t, 1, p.Leader)
		assert.Equal(t, []int32{1}, p.Replicas)
		assert.Equal(t, []int32{1}, p.ISR)
		assert.Empty(t, p.Offline)
	}
	all, err := c.DescribeTopics(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"orders", "refunds"}, topicNames(all), "every topic, in order")
	_, err = c.DescribeTopics(ctx, "nope")
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)

	_, err = c.CreatePartitions(ctx, admin.NewPartitions{Topic: "orders", Count: 5})
	require.NoError(t, err)
	topics, err = c.DescribeTopics(ctx, "orders")
	require.NoError(t, err)
	assert.Len(t, topics[0].Partitions, 5)
	_, err = c.CreatePartitions(ctx, admin.NewPartitions{Topic: "orders", Count: 2})
	assert.ErrorIs(t, err, kerr.InvalidPartitions, "partitions only grow")

	_, err = c.DeleteTopics(ctx, "orders", "refunds")
	require.NoError(t, err)
	_, err = c.DeleteTopics(ctx, "orders")
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
}

func topicNames(ts []admin.TopicDescription) []string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
	}
	return names
}

func TestDescribeClusterAndConfigsOnOneBroker(t *testing.T) {
	ctx := testContext(t)
	c := newClient(t, admin.Options{Bootstrap: []string{startBroker(t)}})

	d, err := c.DescribeCluster(ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, d.ClusterID)
	assert.EqualValues(t, 1, d.ControllerID)
	require.Len(t, d.Brokers, 1)
	assert.EqualValues(t, 1, d.Brokers[0].ID)

	_, err = c.CreateTopics(ctx, admin.NewTopic{Name: "logs", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}})
	require.NoError(t, err)
	got, err := c.DescribeConfigs(ctx,
		admin.ConfigResource{Type: admin.TopicResource, Name: "logs"},
		admin.ConfigResource{Type: admin.BrokerResource, Name: "1"},
	)
	require.NoError(t, err)
	require.Len(t, got, 2)
	policy := findConfig(t, got[0].Configs, "cleanup.policy")
	assert.Equal(t, "compact", *policy.Value)
	assert.Equal(t, "DYNAMIC_TOPIC_CONFIG", policy.Source.String())
	assert.Equal(t, "DEFAULT_CONFIG", policy.Synonyms[len(policy.Synonyms)-1].Source.String(), "the synonyms end at Kafka's default")
	retention := findConfig(t, got[0].Configs, "retention.ms")
	assert.Equal(t, "DEFAULT_CONFIG", retention.Source.String())
	assert.Equal(t, "1", *findConfig(t, got[1].Configs, "node.id").Value)

	_, err = c.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: "nope"})
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
}

func findConfig(t *testing.T, configs []admin.Config, name string) admin.Config {
	t.Helper()
	i := slices.IndexFunc(configs, func(c admin.Config) bool { return c.Name == name })
	require.GreaterOrEqual(t, i, 0, "config %s is missing", name)
	return configs[i]
}

func TestElectPreferredLeadersOnOneBroker(t *testing.T) {
	ctx := testContext(t)
	c := newClient(t, admin.Options{Bootstrap: []string{startBroker(t)}})
	_, err := c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 2})
	require.NoError(t, err)

	// Its one replica leads each partition already: nothing to elect, and
	// that is not a failure.
	results, err := c.ElectLeaders(ctx, admin.Preferred)
	require.NoError(t, err)
	assert.Len(t, results, 2, "every partition, when none is named")
	for tp, err := range results {
		assert.ErrorIs(t, err, kerr.ElectionNotNeeded, tp.String())
	}
	results, err = c.ElectLeaders(ctx, admin.Preferred, admin.TopicPartition{Topic: "orders", Partition: 7})
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
	assert.ErrorIs(t, results[admin.TopicPartition{Topic: "orders", Partition: 7}], kerr.UnknownTopicOrPartition)
}

func TestRetriesARefusedConnectionUntilTheContextEnds(t *testing.T) {
	// A port that was free a moment ago: nothing listens there, so every
	// connection is refused, which the client retries until its context
	// ends, then says why it stopped.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := newClient(t, admin.Options{Bootstrap: []string{addr}, RetryBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.DescribeCluster(ctx)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.ErrorContains(t, err, "gave up after")
	assert.Less(t, time.Since(start), 5*time.Second, "the retries end with the context")
}

// startCluster starts three brokers that leave leadership where it is, so
// that a test decides when the preferred leader gets its partitions back.
func startCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	return clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		require.NoError(t, cfg.Set("auto.leader.rebalance.enable", "false"))
	}})
}

// controllerAndOther returns the active controller's id and a broker that
// is not the controller, as DescribeCluster says.
func controllerAndOther(t *testing.T, ctx context.Context, c *admin.Client) (controller, other int32) {
	t.Helper()
	d, err := c.DescribeCluster(ctx)
	require.NoError(t, err)
	require.Len(t, d.Brokers, 3)
	for _, b := range d.Brokers {
		if b.ID != d.ControllerID {
			return d.ControllerID, b.ID
		}
	}
	t.Fatal("every broker is the controller")
	return 0, 0
}

func TestThreeBrokersThroughABrokerThatIsNotTheController(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	probe := newClient(t, admin.Options{Bootstrap: cl.Addrs()})
	_, other := controllerAndOther(t, ctx, probe)

	// Every request for the controller goes first to a broker that is not
	// it: that broker forwards it (KIP-590), or answers NOT_CONTROLLER and
	// the client finds the controller. Either way the caller sees success.
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(other)}, Via: cl.Addr(other)})
	_, err := c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 3, ReplicationFactor: 3})
	require.NoError(t, err)
	_, err = c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 3})
	assert.ErrorIs(t, err, kerr.TopicAlreadyExists, "the controller's own error comes back through the other broker")

	for p := range int32(3) {
		cl.WaitFullISR("orders", p, 15*time.Second)
	}
	topics, err := c.DescribeTopics(ctx, "orders")
	require.NoError(t, err)
	for _, p := range topics[0].Partitions {
		assert.ElementsMatch(t, []int32{1, 2, 3}, p.Replicas)
		assert.ElementsMatch(t, []int32{1, 2, 3}, p.ISR)
		assert.Equal(t, p.Replicas[0], p.Leader, "the preferred leader leads a new partition")
	}

	c2 := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(other)}, Via: cl.Addr(other)})
	_, err = c2.CreatePartitions(ctx, admin.NewPartitions{Topic: "orders", Count: 4})
	require.NoError(t, err)
	c3 := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(other)}, Via: cl.Addr(other)})
	_, err = c3.DeleteTopics(ctx, "orders")
	require.NoError(t, err)
}

func TestThreeBrokersEachBrokersConfigsFromItself(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(1)}})
	for _, id := range cl.IDs() {
		name := strconv.Itoa(int(id))
		got, err := c.DescribeConfigs(ctx, admin.ConfigResource{Type: admin.BrokerResource, Name: name})
		require.NoError(t, err)
		assert.Equal(t, name, *findConfig(t, got[0].Configs, "node.id").Value, "broker %d's configs come from broker %d", id, id)
	}
}

func TestThreeBrokersPreferredLeaderElection(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	cl.CreateTopic("orders", 1, 3, [][]int32{{1, 2, 3}}, nil)
	cl.WaitFullISR("orders", 0, 15*time.Second)

	// Broker 1 goes away: another replica leads, and Metadata shows broker
	// 1 offline.
	cl.Stop(1)
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader != 1 })
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(2), cl.Addr(3)}})
	eventually(t, "broker 1 offline in Metadata", func() bool {
		topics, err := c.DescribeTopics(ctx, "orders")
		return err == nil && slices.Equal(topics[0].Partitions[0].Offline, []int32{1})
	})

	// Back and in sync, broker 1 does not lead until asked to: the
	// rebalance is off.
	cl.Restart(1)
	cl.WaitFullISR("orders", 0, 15*time.Second)
	tp := admin.TopicPartition{Topic: "orders", Partition: 0}
	results, err := c.ElectLeaders(ctx, admin.Preferred, tp)
	require.NoError(t, err)
	assert.NoError(t, results[tp])
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader == 1 })

	results, err = c.ElectLeaders(ctx, admin.Preferred, tp)
	require.NoError(t, err, "ELECTION_NOT_NEEDED is not a failure")
	assert.ErrorIs(t, results[tp], kerr.ElectionNotNeeded)
}

// eventually polls cond until it holds, failing the test after fifteen
// seconds: the cluster changes asynchronously, and a fixed sleep would be
// too short on a slow machine or wasted on a fast one.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestIncrementalAlterConfigs(t *testing.T) {
	ctx := testContext(t)
	c := newClient(t, admin.Options{Bootstrap: []string{startBroker(t)}})
	_, err := c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 1})
	require.NoError(t, err)
	orders := admin.ConfigResource{Type: admin.TopicResource, Name: "orders"}
	value := func(r admin.ConfigResource, name string) admin.Config {
		t.Helper()
		got, err := c.DescribeConfigs(ctx, r)
		require.NoError(t, err)
		return findConfig(t, got[0].Configs, name)
	}

	require.NoError(t, c.IncrementalAlterConfigs(ctx, orders,
		admin.ConfigChange{Op: admin.SetConfig, Name: "retention.ms", Value: "60000"},
		admin.ConfigChange{Op: admin.AppendConfig, Name: "cleanup.policy", Value: "compact"},
	))
	retention := value(orders, "retention.ms")
	assert.Equal(t, "60000", *retention.Value)
	assert.Equal(t, "DYNAMIC_TOPIC_CONFIG", retention.Source.String())
	assert.Equal(t, "delete,compact", *value(orders, "cleanup.policy").Value, "appended to Kafka's default, delete")

	// A change leaves the other configs as they are: that is what makes
	// it incremental.
	require.NoError(t, c.IncrementalAlterConfigs(ctx, orders,
		admin.ConfigChange{Op: admin.SubtractConfig, Name: "cleanup.policy", Value: "delete"},
	))
	assert.Equal(t, "compact", *value(orders, "cleanup.policy").Value)
	assert.Equal(t, "60000", *value(orders, "retention.ms").Value)

	require.NoError(t, c.IncrementalAlterConfigs(ctx, orders, admin.ConfigChange{Op: admin.DeleteConfig, Name: "retention.ms"}))
	assert.Equal(t, "DEFAULT_CONFIG", value(orders, "retention.ms").Source.String(), "deleted: back to the default")

	err = c.IncrementalAlterConfigs(ctx, orders, admin.ConfigChange{Op: admin.SetConfig, Name: "no.such.config", Value: "1"})
	assert.ErrorIs(t, err, kerr.InvalidConfig)
	err = c.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: "nope"},
		admin.ConfigChange{Op: admin.SetConfig, Name: "retention.ms", Value: "1"})
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)

	// A broker's dynamic configs: broker 1's own, and every broker's default.
	broker1 := admin.ConfigResource{Type: admin.BrokerResource, Name: "1"}
	require.NoError(t, c.IncrementalAlterConfigs(ctx, broker1,
		admin.ConfigChange{Op: admin.SetConfig, Name: "follower.replication.throttled.rate", Value: "1000000"}))
	rate := value(broker1, "follower.replication.throttled.rate")
	assert.Equal(t, "1000000", *rate.Value)
	assert.Equal(t, "DYNAMIC_BROKER_CONFIG", rate.Source.String())
	require.NoError(t, c.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.BrokerResource},
		admin.ConfigChange{Op: admin.SetConfig, Name: "leader.replication.throttled.rate", Value: "2000000"}))
	assert.Equal(t, "2000000", *value(broker1, "leader.replication.throttled.rate").Value, "the cluster-wide default")
	err = c.IncrementalAlterConfigs(ctx, broker1, admin.ConfigChange{Op: admin.SetConfig, Name: "num.partitions", Value: "3"})
	assert.ErrorIs(t, err, kerr.InvalidConfig, "a static broker config changes with a restart")
}

// produce writes n records to one partition of a topic of the cluster.
func produce(t *testing.T, cl *clustertest.Cluster, topic string, partition int32, n int) {
	t.Helper()
	for i := range n {
		leader := cl.WaitLeader(topic, partition, 15*time.Second, nil)
		require.NoError(t, cl.ProduceTo(leader, topic, partition, -1, "r"+strconv.Itoa(i)))
	}
}

func TestThreeBrokersDeleteRecordsOnEachLeader(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	// Two partitions led by two different brokers: one request each.
	cl.CreateTopic("orders", 2, 3, [][]int32{{1, 2, 3}, {2, 3, 1}}, nil)
	produce(t, cl, "orders", 0, 5)
	produce(t, cl, "orders", 1, 4)

	// The client knows only broker 3, which leads neither partition.
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(3)}})
	p0, p1 := admin.TopicPartition{Topic: "orders", Partition: 0}, admin.TopicPartition{Topic: "orders", Partition: 1}
	got, err := c.DeleteRecords(ctx, map[admin.TopicPartition]int64{p0: 3, p1: admin.HighWatermark})
	require.NoError(t, err)
	assert.Equal(t, admin.DeleteRecordsResult{LowWatermark: 3}, got[p0])
	assert.Equal(t, admin.DeleteRecordsResult{LowWatermark: 4}, got[p1], "-1: up to the high watermark")

	missing := admin.TopicPartition{Topic: "nope", Partition: 0}
	got, err = c.DeleteRecords(ctx, map[admin.TopicPartition]int64{p0: 100, missing: 1})
	assert.ErrorIs(t, err, kerr.OffsetOutOfRange)
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
	assert.ErrorIs(t, got[p0].Err, kerr.OffsetOutOfRange, "past the high watermark")
	assert.ErrorIs(t, got[missing].Err, kerr.UnknownTopicOrPartition)
}

func TestThreeBrokersDescribeLogDirsOfEveryBroker(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	cl.CreateTopic("orders", 1, 3, nil, nil)
	produce(t, cl, "orders", 0, 3)
	cl.WaitFullISR("orders", 0, 15*time.Second)

	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(1)}})
	dirs, err := c.DescribeLogDirs(ctx)
	require.NoError(t, err)
	require.Len(t, dirs, 3, "one log dir on each broker")
	for i, d := range dirs {
		assert.EqualValues(t, i+1, d.Broker)
		assert.NoError(t, d.Err)
		assert.NotEmpty(t, d.Dir)
		i := slices.IndexFunc(d.Partitions, func(p admin.LogDirPartition) bool { return p.TopicPartition.String() == "orders-0" })
		require.GreaterOrEqual(t, i, 0, "broker %d holds orders-0", d.Broker)
		assert.Positive(t, d.Partitions[i].Size, "broker %d's copy has the records", d.Broker)
		assert.False(t, d.Partitions[i].IsFuture)
	}

	dirs, err = c.DescribeLogDirs(ctx, 2)
	require.NoError(t, err)
	require.Len(t, dirs, 1)
	assert.EqualValues(t, 2, dirs[0].Broker)
}
func TestThreeBrokersReassignAPartition(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	cl.CreateTopic("orders", 1, 2, [][]int32{{1, 2}}, nil)
	produce(t, cl, "orders", 0, 5)
	probe := newClient(t, admin.Options{Bootstrap: cl.Addrs()})
	_, other := controllerAndOther(t, ctx, probe)
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(other)}, Via: cl.Addr(other)})

	tp := admin.TopicPartition{Topic: "orders", Partition: 0}
	results, err := c.AlterPartitionReassignments(ctx, map[admin.TopicPartition][]int32{tp: {3, 2}})
	require.NoError(t, err)
	assert.NoError(t, results[tp])
	eventually(t, "orders-0 to move to brokers 3 and 2", func() bool {
		moving, err := c.ListPartitionReassignments(ctx)
		if err != nil || len(moving) > 0 {
			return false
		}
		topics, err := c.DescribeTopics(ctx, "orders")
		return err == nil && slices.Equal(topics[0].Partitions[0].Replicas, []int32{3, 2})
	})

	results, err = c.AlterPartitionReassignments(ctx, map[admin.TopicPartition][]int32{tp: nil})
	assert.ErrorIs(t, err, kerr.NoReassignmentInProgress, "nothing to cancel")
	assert.ErrorIs(t, results[tp], kerr.NoReassignmentInProgress)
	_, err = c.AlterPartitionReassignments(ctx, map[admin.TopicPartition][]int32{tp: {3, 9}})
	assert.ErrorIs(t, err, kerr.InvalidReplicaAssignment, "broker 9 is not in the cluster")
}

// offlinePartition leaves orders-0, on brokers 1 and 2, without a leader
// and with broker 2 alive but out of sync: broker 2 stops, broker 1 takes
// a record alone, broker 1 stops, broker 2 comes back. Broker 3 keeps the
// metadata quorum.
func offlinePartition(t *testing.T, cl *clustertest.Cluster) {
	t.Helper()
	cl.CreateTopic("orders", 1, 2, [][]int32{{1, 2}}, nil)
	cl.WaitFullISR("orders", 0, 15*time.Second)
	cl.Stop(2)
	cl.WaitFor(15*time.Second, "broker 2 out of the ISR", func() bool {
		p, ok := cl.Partition(0, "orders", 0)
		return ok && slices.Equal(p.ISR, []int32{1})
	})
	require.NoError(t, cl.ProduceTo(1, "orders", 0, 1, "only broker 1 has it"))
	cl.Stop(1)
	cl.Restart(2)
	cl.WaitFor(15*time.Second, "orders-0 offline", func() bool {
		p, ok := cl.Partition(0, "orders", 0)
		return ok && p.Leader == -1
	})
}

func TestThreeBrokersUncleanLeaderElection(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	offlinePartition(t, cl)
	c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(2), cl.Addr(3)}})
	tp := admin.TopicPartition{Topic: "orders", Partition: 0}

	topics, err := c.DescribeTopics(ctx, "orders")
	require.NoError(t, err)
	assert.EqualValues(t, -1, topics[0].Partitions[0].Leader)
	assert.ErrorIs(t, topics[0].Partitions[0].Err, kerr.LeaderNotAvailable)

	// A preferred election cannot help: broker 1 is gone.
	results, err := c.ElectLeaders(ctx, admin.Preferred, tp)
	assert.ErrorIs(t, err, kerr.PreferredLeaderNotAvailable)
	assert.ErrorIs(t, results[tp], kerr.PreferredLeaderNotAvailable)

	// An unclean one takes broker 2, out of sync as it is.
	results, err = c.ElectLeaders(ctx, admin.Unclean, tp)
	require.NoError(t, err)
	assert.NoError(t, results[tp])
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader == 2 })

	results, err = c.ElectLeaders(ctx, admin.Unclean, tp)
	require.NoError(t, err, "ELECTION_NOT_NEEDED is not a failure")
	assert.ErrorIs(t, results[tp], kerr.ElectionNotNeeded, "it has a leader now")
}

func TestThreeBrokersForwardToTheController(t *testing.T) {
	cl := startCluster(t)
	ctx := testContext(t)
	probe := newClient(t, admin.Options{Bootstrap: cl.Addrs()})
	_, other := controllerAndOther(t, ctx, probe)

	// Each call goes first to a broker that is not the controller, and a
	// retry would wait a minute, longer than the call may take: each
	// succeeds at its first attempt only because that broker forwards it
	// to the controller (KIP-590) instead of answering NOT_CONTROLLER.
	calls := map[string]func(ctx context.Context, c *admin.Client) error{
		"1 CreateTopics": func(ctx context.Context, c *admin.Client) error {
			_, err := c.CreateTopics(ctx, admin.NewTopic{Name: "orders", Partitions: 1, ReplicationFactor: 3})
			return err
		},
		"2 CreatePartitions": func(ctx context.Context, c *admin.Client) error {
			_, err := c.CreatePartitions(ctx, admin.NewPartitions{Topic: "orders", Count: 2})
			return err
		},
		"3 IncrementalAlterConfigs": func(ctx context.Context, c *admin.Client) error {
			return c.IncrementalAlterConfigs(ctx, admin.ConfigResource{Type: admin.TopicResource, Name: "orders"},
				admin.ConfigChange{Op: admin.SetConfig, Name: "retention.ms", Value: "60000"})
		},
		"4 ElectLeaders": func(ctx context.Context, c *admin.Client) error {
			_, err := c.ElectLeaders(ctx, admin.Preferred)
			return err
		},
		"5 DeleteTopics": func(ctx context.Context, c *admin.Client) error {
			_, err := c.DeleteTopics(ctx, "orders")
			return err
		},
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		// A fresh client each time: only a first attempt goes through Via.
		c := newClient(t, admin.Options{Bootstrap: []string{cl.Addr(other)}, Via: cl.Addr(other), RetryBackoff: time.Minute})
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		assert.NoError(t, calls[name](callCtx, c), name)
		cancel()
	}
}
