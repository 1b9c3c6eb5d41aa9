package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// startAdminBroker starts one broker on loopback with a topic "orders" of
// two partitions, and returns its --bootstrap-server flag.
func startAdminBroker(t *testing.T) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	bs := "--bootstrap-server=" + b.Addr()
	_, err = capture(t, func() error {
		return runTopics([]string{"create", bs, "--topic", "orders", "--partitions", "2", "--replication-factor", "1"})
	})
	require.NoError(t, err)
	return bs
}

// produceRecords writes n records to one partition of a topic.
func produceRecords(t *testing.T, addrs []string, topic string, partition int32, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite())
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for range n {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte("x")}).FirstErr())
	}
}

// writeFile writes content to a file in a temporary directory and returns
// its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

func TestConfigsCommandAsKafkaConfigs(t *testing.T) {
	bs := startAdminBroker(t)
	configs := func(args ...string) (string, error) {
		return capture(t, func() error { return runConfigs(append([]string{bs}, args...)) })
	}
	topic := []string{"--entity-type", "topics", "--entity-name", "orders"}

	out, err := configs(append([]string{"--alter", "--add-config", "retention.ms=60000,cleanup.policy=[compact,delete]"}, topic...)...)
	require.NoError(t, err)
	assert.Equal(t, "Completed updating config for topic orders.\n", out)

	out, err = configs(append([]string{"--describe"}, topic...)...)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t, "Dynamic configs for topic orders are:", lines[0])
	assert.Equal(t, "  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:cleanup.policy=delete}", lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "  retention.ms=60000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=60000, "), lines[2])

	out, err = configs(append([]string{"--describe", "--all"}, topic...)...)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "All configs for topic orders are:\n"), out)
	assert.Contains(t, out, "\n  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:segment.bytes=1073741824}\n", "a config nobody set, from its default")

	out, err = configs(append([]string{"--alter", "--delete-config", "retention.ms"}, topic...)...)
	require.NoError(t, err)
	assert.Equal(t, "Completed updating config for topic orders.\n", out)
	out, err = configs(append([]string{"--describe"}, topic...)...)
	require.NoError(t, err)
	assert.NotContains(t, out, "retention.ms")

	_, err = configs(append([]string{"--alter", "--delete-config", "retention.ms"}, topic...)...)
	assert.ErrorContains(t, err, "invalid config(s): retention.ms: not set on topic orders")
	_, err = configs(append([]string{"--alter", "--add-config", "retention.ms=soon"}, topic...)...)
	assert.ErrorContains(t, err, "INVALID_CONFIG")
	_, err = configs("--describe", "--entity-type", "topics", "--entity-name", "nope")
	assert.ErrorContains(t, err, "UNKNOWN_TOPIC_OR_PARTITION")

	out, err = configs("--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config", "follower.replication.throttled.rate=1000")
	require.NoError(t, err)
	assert.Equal(t, "Completed updating config for broker 1.\n", out)
	out, err = configs("--alter", "--entity-type", "brokers", "--entity-default", "--add-config", "leader.replication.throttled.rate=2000")
	require.NoError(t, err)
	assert.Equal(t, "Completed updating default config for brokers in the cluster.\n", out)
	out, err = configs("--describe", "--entity-type", "brokers", "--entity-name", "1")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "Dynamic configs for broker 1 are:\n  follower.replication.throttled.rate=1000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:follower.replication.throttled.rate=1000"), out)
	out, err = configs("--describe", "--entity-type", "brokers", "--entity-default")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "Default configs for brokers in the cluster are:\n  leader.replication.throttled.rate=2000 "), out)
	_, err = configs("--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config", "num.partitions=3")
	assert.ErrorContains(t, err, "INVALID_CONFIG", "a static config takes a restart")
}

func TestLogDirsCommandPrintsKafkasJSON(t *testing.T) {
	bs := startAdminBroker(t)
	produceRecords(t, []string{strings.TrimPrefix(bs, "--bootstrap-server=")}, "orders", 0, 3)
	out, err := capture(t, func() error { return runLogDirs([]string{bs, "--describe", "--topic-list", "orders"}) })
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t, "Querying brokers for log directories information", lines[0])
	assert.Equal(t, "Received log directory information from brokers 1", lines[1])
	assert.True(t, strings.HasPrefix(lines[2], `{"version":1,"brokers":[{"broker":1,"logDirs":[{"logDir":"`), lines[2])

	var report logDirsReport
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &report))
	require.Len(t, report.Brokers, 1)
	require.Len(t, report.Brokers[0].LogDirs, 1)
	dir := report.Brokers[0].LogDirs[0]
	assert.Nil(t, dir.Error)
	require.Len(t, dir.Partitions, 2, "orders-0 and orders-1, and no other topic")
	assert.Equal(t, "orders-0", dir.Partitions[0].Partition)
	assert.Positive(t, dir.Partitions[0].Size, "orders-0 has three records")
	assert.Zero(t, dir.Partitions[0].OffsetLag, "a leader has no lag")

	out, err = capture(t, func() error { return runLogDirs([]string{bs, "--describe", "--topic-list", "other"}) })
	require.NoError(t, err)
	assert.Contains(t, out, `"partitions":[]`, "no partition of a topic not asked for")
}

func TestDeleteRecordsCommand(t *testing.T) {
	bs := startAdminBroker(t)
	produceRecords(t, []string{strings.TrimPrefix(bs, "--bootstrap-server=")}, "orders", 0, 5)
	file := writeFile(t, "offsets.json", `{"partitions":[{"topic":"orders","partition":0,"offset":3},{"topic":"orders","partition":1,"offset":100}],"version":1}`)
	out, err := capture(t, func() error { return runDeleteRecords([]string{bs, "--offset-json-file", file}) })
	assert.ErrorContains(t, err, "some partitions kept their records")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Equal(t, "Executing records delete operation", lines[0])
	assert.Equal(t, "Records delete operation completed:", lines[1])
	assert.Equal(t, "partition: orders-0\tlow_watermark: 3", lines[2])
	assert.True(t, strings.HasPrefix(lines[3], "partition: orders-1\terror: OFFSET_OUT_OF_RANGE"), "orders-1 has no offset 100: %s", lines[3])

	file = writeFile(t, "all.json", `{"partitions":[{"topic":"orders","partition":0,"offset":-1}],"version":1}`)
	out, err = capture(t, func() error { return runDeleteRecords([]string{bs, "--offset-json-file", file}) })
	require.NoError(t, err)
	assert.Contains(t, out, "partition: orders-0\tlow_watermark: 5\n", "-1: up to the high watermark")

	file = writeFile(t, "dup.json", `{"partitions":[{"topic":"orders","partition":0,"offset":1},{"topic":"orders","partition":0,"offset":2}],"version":1}`)
	_, err = capture(t, func() error { return runDeleteRecords([]string{bs, "--offset-json-file", file}) })
	assert.ErrorContains(t, err, "names partition orders-0 twice")
}

func TestLeaderElectionCommandOnOneBroker(t *testing.T) {
	bs := startAdminBroker(t)
	out, err := capture(t, func() error {
		return runLeaderElection([]string{bs, "--election-type", "PREFERRED", "--all-topic-partitions"})
	})
	require.NoError(t, err)
	assert.Equal(t, "Valid replica already elected for partitions orders-0, orders-1\n", out)

	file := writeFile(t, "partitions.json", `{"partitions":[{"topic":"orders","partition":1},{"topic":"orders","partition":9}]}`)
	out, err = capture(t, func() error {
		return runLeaderElection([]string{bs, "--election-type", "preferred", "--path-to-json-file", file})
	})
	assert.EqualError(t, err, "1 replica(s) could not be elected")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	assert.Equal(t, "Valid replica already elected for partitions orders-1", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "Error completing leader election (PREFERRED) for partition: orders-9: UNKNOWN_TOPIC_OR_PARTITION"), lines[1])

	_, err = capture(t, func() error { return runLeaderElection([]string{bs, "--election-type", "preferred"}) })
	assert.ErrorContains(t, err, "name the partitions one way")
}

// startAdminCluster starts three brokers that leave leadership where it
// is, so that a test decides when preferred leaders get their partitions
// back.
func startAdminCluster(t *testing.T) (*clustertest.Cluster, string) {
	t.Helper()
	cl := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		require.NoError(t, cfg.Set("auto.leader.rebalance.enable", "false"))
	}})
	return cl, "--bootstrap-server=" + strings.Join(cl.Addrs(), ",")
}

func TestLeaderElectionCommandGivesAPartitionBackToItsPreferredLeader(t *testing.T) {
	cl, bs := startAdminCluster(t)
	cl.CreateTopic("orders", 1, 3, [][]int32{{1, 2, 3}}, nil)
	cl.WaitFullISR("orders", 0, 15*time.Second)
	cl.Stop(1)
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader != 1 })
	cl.Restart(1)
	cl.WaitFullISR("orders", 0, 15*time.Second)

	out, err := capture(t, func() error {
		return runLeaderElection([]string{bs, "--election-type", "preferred", "--topic", "orders", "--partition", "0"})
	})
	require.NoError(t, err)
	assert.Equal(t, "Successfully completed leader election (PREFERRED) for partitions orders-0\n", out)
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader == 1 })
}

func TestReassignCommandGenerate(t *testing.T) {
	cl, bs := startAdminCluster(t)
	cl.CreateTopic("orders", 3, 2, nil, nil)
	topics := writeFile(t, "topics.json", `{"topics":[{"topic":"orders"}],"version":1}`)
	out, err := capture(t, func() error {
		return runReassign([]string{bs, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,3"})
	})
	require.NoError(t, err)
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 5, out)
	assert.Equal(t, "Current partition replica assignment", lines[0])
	assert.Equal(t, "", lines[2])
	assert.Equal(t, "Proposed partition reassignment configuration", lines[3])
	var current, proposed reassignmentJSON
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &current))
	require.NoError(t, json.Unmarshal([]byte(lines[4]), &proposed))
	assert.Len(t, current.Partitions, 3)
	require.Len(t, proposed.Partitions, 3)
	leaders := map[int32]int{}
	for i, p := range proposed.Partitions {
		assert.EqualValues(t, i, p.Partition)
		assert.ElementsMatch(t, []int32{2, 3}, p.Replicas, "two replicas, on the brokers listed")
		assert.Equal(t, []string{"any", "any"}, p.LogDirs)
		leaders[p.Replicas[0]]++
	}
	assert.Len(t, leaders, 2, "preferred leaders spread over both brokers, as the controller places them")

	_, err = capture(t, func() error {
		return runReassign([]string{bs, "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,9"})
	})
	assert.ErrorContains(t, err, "broker 9 is not in the cluster")
}

func TestReassignCommandListsNothingInProgress(t *testing.T) {
	_, bs := startAdminCluster(t)
	out, err := capture(t, func() error { return runReassign([]string{bs, "--list"}) })
	require.NoError(t, err)
	assert.Equal(t, "No partition reassignments found.\n", out)
}

func TestRestartCommandOfAGoRunBinary(t *testing.T) {
	tmp := t.TempDir()
	goRun := filepath.Join(tmp, "go-build123456", "b001", "exe", "klab")
	assert.True(t, builtByGoRun(goRun))
	assert.False(t, builtByGoRun("/usr/local/bin/klab"))
	assert.Equal(t, "/usr/local/bin/klab", restartCommand("/usr/local/bin/klab"))

	// The tests run in cmd/klab; from the module root, as the README says
	// to run it, the command is the README's.
	assert.Equal(t, "go run .", restartCommand(goRun))
	t.Chdir("../..")
	assert.Equal(t, "go run ./cmd/klab", restartCommand(goRun))
	t.Chdir("docs")
	assert.Equal(t, "go run ../cmd/klab", restartCommand(goRun))
	assert.Equal(t, "broker --id 2 --dir 'my data/broker-2'", shellJoin([]string{"broker", "--id", "2", "--dir", "my data/broker-2"}))
}

// reassignCmd runs `klab reassign args...` and returns its output.
func reassignCmd(t *testing.T, bs string, args ...string) (string, error) {
	t.Helper()
	return capture(t, func() error { return runReassign(append([]string{bs}, args...)) })
}

// topicConfig is a config's value on a topic, "" when it has none.
func topicConfig(t *testing.T, bs, topic, name string) string {
	t.Helper()
	out, err := capture(t, func() error {
		return runConfigs([]string{bs, "--describe", "--entity-type", "topics", "--entity-name", topic})
	})
	require.NoError(t, err)
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "  "+name+"="); ok {
			return strings.Fields(v)[0]
		}
	}
	return ""
}

func TestReassignCommandExecuteVerifyWithThrottle(t *testing.T) {
	cl, bs := startAdminCluster(t)
	cl.CreateTopic("orders", 2, 2, [][]int32{{1, 2}, {2, 1}}, nil)
	produceRecords(t, cl.Addrs(), "orders", 0, 5)
	plan := writeFile(t, "plan.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[3,2]},{"topic":"orders","partition":1,"replicas":[2,1]}]}`)

	out, err := reassignCmd(t, bs, "--execute", "--reassignment-json-file", plan, "--throttle", "50000000")
	require.NoError(t, err)
	assert.Equal(t, `Current partition replica assignment

{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"orders","partition":1,"replicas":[2,1],"log_dirs":["any","any"]}]}

Save this to use as the --reassignment-json-file option during rollback
Warning: You must run --verify periodically, until the reassignment completes, to ensure the throttle is removed.
The inter-broker throttle limit was set to 50000000 B/s
Successfully started partition reassignments for orders-0,orders-1
`, out)
	// Only orders-0 moves: its current replicas may send (as leaders), its
	// new one fetches (as a follower).
	eventually(t, "the throttled replicas on every broker's metadata", func() bool {
		return topicConfig(t, bs, "orders", "leader.replication.throttled.replicas") == "0:1,0:2" &&
			topicConfig(t, bs, "orders", "follower.replication.throttled.replicas") == "0:3"
	})

	eventually(t, "the reassignment to complete", func() bool {
		out, err = reassignCmd(t, bs, "--verify", "--reassignment-json-file", plan)
		require.NoError(t, err)
		return !strings.Contains(out, "in progress")
	})
	assert.Equal(t, `Status of partition reassignment:
Reassignment of partition orders-0 is completed.
Reassignment of partition orders-1 is completed.
Clearing broker-level throttles on brokers 1,2,3
Clearing topic-level throttles on topic orders
`, out)
	// Any broker answers DescribeConfigs from the metadata it has applied,
	// which may be a moment behind the controller's.
	eventually(t, "verify to remove the throttles", func() bool {
		out, err := capture(t, func() error {
			return runConfigs([]string{bs, "--describe", "--entity-type", "brokers", "--entity-name", "3"})
		})
		require.NoError(t, err)
		return out == "Dynamic configs for broker 3 are:\n" && topicConfig(t, bs, "orders", "leader.replication.throttled.replicas") == ""
	})

	out, err = reassignCmd(t, bs, "--cancel", "--reassignment-json-file", plan, "--preserve-throttles")
	require.NoError(t, err)
	assert.Equal(t, "None of the specified partition reassignments are active.\n", out)

	bad := writeFile(t, "bad.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[3,9]}]}`)
	_, err = reassignCmd(t, bs, "--execute", "--reassignment-json-file", bad)
	assert.ErrorContains(t, err, "Error reassigning partition(s):\norders-0: INVALID_REPLICA_ASSIGNMENT")
}

func TestReassignCommandListAndCancelAMoveThatCannotFinish(t *testing.T) {
	cl, bs := startAdminCluster(t)
	cl.CreateTopic("orders", 1, 2, [][]int32{{1, 2}}, nil)
	// Broker 3 is down: a replica added there cannot catch up, so the move
	// stays in progress until it is cancelled.
	cl.Stop(3)
	plan := writeFile(t, "plan.json", `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[3,2]}]}`)
	out, err := reassignCmd(t, bs, "--execute", "--reassignment-json-file", plan)
	require.NoError(t, err)
	assert.Contains(t, out, "Successfully started partition reassignment for orders-0\n")

	out, err = reassignCmd(t, bs, "--list")
	require.NoError(t, err)
	assert.Equal(t, "Current partition reassignments:\norders-0: replicas: 3,2,1. adding: 3. removing: 1.\n", out)
	out, err = reassignCmd(t, bs, "--verify", "--reassignment-json-file", plan)
	require.NoError(t, err)
	assert.Equal(t, "Status of partition reassignment:\nReassignment of partition orders-0 is still in progress.\n", out)

	out, err = reassignCmd(t, bs, "--cancel", "--reassignment-json-file", plan)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(out, "Successfully cancelled partition reassignment for: orders-0\n"), out)
	out, err = reassignCmd(t, bs, "--list")
	require.NoError(t, err)
	assert.Equal(t, "No partition reassignments found.\n", out)
}

func TestLeaderElectionCommandUnclean(t *testing.T) {
	cl, bs := startAdminCluster(t)
	// orders-0 on brokers 1 and 2: broker 2 stops and falls out of the
	// ISR, broker 1 takes a record alone and stops, broker 2 comes back.
	// The partition has no leader, and only an unclean election gives it
	// one. Broker 3 keeps the metadata quorum.
	cl.CreateTopic("orders", 1, 2, [][]int32{{1, 2}}, nil)
	cl.WaitFullISR("orders", 0, 15*time.Second)
	cl.Stop(2)
	cl.WaitFor(15*time.Second, "broker 2 out of the ISR", func() bool {
		p, ok := cl.Partition(0, "orders", 0)
		return ok && len(p.ISR) == 1
	})
	require.NoError(t, cl.ProduceTo(1, "orders", 0, 1, "only broker 1 has it"))
	cl.Stop(1)
	cl.Restart(2)
	cl.WaitFor(15*time.Second, "orders-0 offline", func() bool {
		p, ok := cl.Partition(0, "orders", 0)
		return ok && p.Leader == -1
	})
	bs = "--bootstrap-server=" + cl.Addr(2) + "," + cl.Addr(3)

	out, err := capture(t, func() error {
		return runLeaderElection([]string{bs, "--election-type", "preferred", "--topic", "orders", "--partition", "0"})
	})
	assert.EqualError(t, err, "1 replica(s) could not be elected")
	assert.True(t, strings.HasPrefix(out, "Error completing leader election (PREFERRED) for partition: orders-0: PREFERRED_LEADER_NOT_AVAILABLE"), out)

	out, err = capture(t, func() error {
		return runLeaderElection([]string{bs, "--election-type", "unclean", "--all-topic-partitions"})
	})
	require.NoError(t, err)
	assert.Equal(t, "Successfully completed leader election (UNCLEAN) for partitions orders-0\n", out)
	cl.WaitLeader("orders", 0, 15*time.Second, func(leader int32) bool { return leader == 2 })
}
