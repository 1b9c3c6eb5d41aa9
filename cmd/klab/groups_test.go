package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// groupsTopic is the topic every groups test reads: three partitions, so
// that one can hold records, one fewer, and one none.
const groupsTopic = "orders"

// startGroupsCluster starts a klab broker on loopback with groupsTopic
// and returns its address. Its group coordinator is set up for tests: one
// __consumer_offsets partition instead of 50 to create, and no initial
// rebalance delay, so that a first consumer joins at once rather than after
// Kafka's 3 s wait for others.
func startGroupsCluster(t *testing.T) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	require.NoError(t, cfg.Set("offsets.topic.num.partitions", "1"))
	require.NoError(t, cfg.Set("group.initial.rebalance.delay.ms", "0"))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	_, err = capture(t, func() error {
		return runTopics([]string{"create", "--bootstrap-server=" + b.Addr(), "--topic", groupsTopic, "--partitions", "3"})
	})
	require.NoError(t, err)
	return b.Addr()
}

// captureAll runs fn and returns what it printed on standard output and on
// standard error: the groups commands put their notes ("has no active
// members") on standard error, as Kafka does.
func captureAll(t *testing.T, fn func() error) (stdout, stderr string, err error) {
	t.Helper()
	r, w, perr := os.Pipe()
	require.NoError(t, perr)
	saved := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	stdout, err = capture(t, fn)
	os.Stderr = saved
	w.Close()
	return stdout, <-done, err
}

// groupsCmd runs `klab groups args...` against addr and returns its standard
// output, standard error and error.
func groupsCmd(t *testing.T, addr string, args ...string) (string, string, error) {
	t.Helper()
	args = append(args[:1:1], append([]string{"--bootstrap-server=" + addr}, args[1:]...)...)
	return captureAll(t, func() error { return runGroups(args) })
}

// eventually polls cond until it holds, failing the test after ten seconds:
// group membership changes asynchronously, and a fixed sleep would be either
// too short on a slow machine or wasted on a fast one.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// produceTo writes counts[p] records to each partition p of groupsTopic.
func produceTo(t *testing.T, addr string, counts map[int32]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(groupsTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p, n := range counts {
		for i := 0; i < n; i++ {
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("x")}).FirstErr())
		}
	}
}

// consumeAndCommit joins group with a franz-go group consumer, reads want
// records of groupsTopic, and commits the offsets in commit. It returns the
// consumer, still a member of the group; close it to leave.
func consumeAndCommit(t *testing.T, addr, group string, want int, commit map[int32]int64) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ClientID("billing-app"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(groupsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), // the test commits exactly what it wants
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for got := 0; got < want; {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "read %d of %d records", got, want)
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("%s-%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	offsets := map[string]map[int32]kgo.EpochOffset{groupsTopic: {}}
	for p, o := range commit {
		offsets[groupsTopic][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = err
		if err == nil {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						t.Errorf("commit %s-%d: error code %d", rt.Topic, rp.Partition, rp.ErrorCode)
					}
				}
			}
		}
	})
	require.NoError(t, commitErr)
	return cl
}

// groupState is the group's state as the coordinator describes it.
func groupState(t *testing.T, addr, group string) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	require.NoError(t, err)
	return d[group].State
}

// committed is the group's committed offsets on groupsTopic, by partition,
// from OffsetFetch.
func committed(t *testing.T, addr, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	require.NoError(t, err)
	got := make(map[int32]int64)
	for p, o := range offsets[groupsTopic] {
		require.NoError(t, o.Err)
		got[p] = o.At
	}
	return got
}

// table splits a command's output into its lines' fields, skipping blank
// lines.
func table(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows = append(rows, f)
		}
	}
	return rows
}

// leave closes a group consumer and waits until the coordinator has
// removed it: its group is Empty.
func leave(t *testing.T, addr, group string, cl *kgo.Client) {
	t.Helper()
	cl.Close()
	eventually(t, group+" to be Empty", func() bool { return groupState(t, addr, group) == "Empty" })
}

// A group appears in list once a consumer has joined it and committed, and
// describe shows each partition's committed offset, log end offset and lag
// in kafka-consumer-groups.sh's columns, with its owner while the consumer
// is a member and "-" once it has left.
func TestGroupsListAndDescribe(t *testing.T) {
	addr := startGroupsCluster(t)
	produceTo(t, addr, map[int32]int{0: 10, 1: 4})
	consumer := consumeAndCommit(t, addr, "billing", 14, map[int32]int64{0: 6, 1: 4})
	defer consumer.Close()

	out, _, err := groupsCmd(t, addr, "list")
	require.NoError(t, err)
	assert.Equal(t, "billing\n", out)
	eventually(t, "billing to be Stable", func() bool { return groupState(t, addr, "billing") == "Stable" })
	out, _, err = groupsCmd(t, addr, "list", "--state")
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"GROUP", "STATE"}, {"billing", "Stable"}}, table(out))
	out, _, err = groupsCmd(t, addr, "list", "--state", "stable,empty")
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"GROUP", "STATE"}, {"billing", "Stable"}}, table(out), "listed by state")
	out, _, err = groupsCmd(t, addr, "list", "--state=Empty")
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"GROUP", "STATE"}}, table(out), "no group is Empty")
	_, _, err = groupsCmd(t, addr, "list", "--state", "Sleepy")
	assert.ErrorContains(t, err, "one of PreparingRebalance")

	out, _, err = groupsCmd(t, addr, "describe", "--group", "billing")
	require.NoError(t, err)
	rows := table(out)
	require.Len(t, rows, 4, "a header and three partitions:\n%s", out)
	assert.Equal(t, []string{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"}, rows[0])
	for i, want := range [][]string{
		{"billing", groupsTopic, "0", "6", "10", "4"},
		{"billing", groupsTopic, "1", "4", "4", "0"},
		{"billing", groupsTopic, "2", "-", "0", "-"}, // owned, never committed
	} {
		require.Len(t, rows[i+1], 9, "row %d: %v", i, rows[i+1])
		assert.Equal(t, want, rows[i+1][:6])
		assert.NotEqual(t, "-", rows[i+1][6], "an owner's member id")
		assert.Equal(t, "billing-app", rows[i+1][8])
	}
	assert.Equal(t, strings.Index(strings.Split(out, "\n")[1], "CONSUMER-ID"), strings.Index(strings.Split(out, "\n")[2], rows[1][6]), "columns aligned:\n%s", out)

	out, _, err = groupsCmd(t, addr, "describe", "--group", "billing", "--members", "--verbose")
	require.NoError(t, err)
	rows = table(out)
	require.Len(t, rows, 2, out)
	assert.Equal(t, []string{"GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT"}, rows[0])
	assert.Equal(t, []string{"billing-app", "3", groupsTopic + "(0,1,2)"}, rows[1][3:])

	out, _, err = groupsCmd(t, addr, "describe", "--group", "billing", "--state")
	require.NoError(t, err)
	rows = table(out)
	require.Len(t, rows, 2, out)
	assert.Equal(t, []string{"GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"}, rows[0])
	assert.Equal(t, []string{"Stable", "1"}, rows[1][len(rows[1])-2:])

	leave(t, addr, "billing", consumer)
	out, errOut, err := groupsCmd(t, addr, "describe", "--all-groups")
	require.NoError(t, err)
	assert.Contains(t, errOut, "Consumer group 'billing' has no active members.")
	assert.Equal(t, [][]string{
		{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"},
		{"billing", groupsTopic, "0", "6", "10", "4", "-", "-", "-"},
		{"billing", groupsTopic, "1", "4", "4", "0", "-", "-", "-"},
	}, table(out), "committed partitions, no owners")

	_, errOut, err = groupsCmd(t, addr, "describe", "--group", "nobody")
	assert.Error(t, err)
	assert.Contains(t, errOut, "Consumer group 'nobody' does not exist.")
}

// reset-offsets prints a plan and changes nothing under --dry-run, commits
// it under --execute, clamps offsets into the log, and refuses a group that
// has an active member.
func TestGroupsResetOffsets(t *testing.T) {
	addr := startGroupsCluster(t)
	produceTo(t, addr, map[int32]int{0: 10, 1: 4})
	consumer := consumeAndCommit(t, addr, "billing", 14, map[int32]int64{0: 6, 1: 4})
	defer consumer.Close()
	eventually(t, "billing to be Stable", func() bool { return groupState(t, addr, "billing") == "Stable" })

	_, _, err := groupsCmd(t, addr, "reset-offsets", "--group", "billing", "--all-topics", "--to-earliest", "--execute")
	require.ErrorContains(t, err, "can only be reset if the group 'billing' is inactive, but the current state is Stable")
	assert.Equal(t, map[int32]int64{0: 6, 1: 4}, committed(t, addr, "billing"))
	leave(t, addr, "billing", consumer)

	out, _, err := groupsCmd(t, addr, "reset-offsets", "--group", "billing", "--all-topics", "--to-earliest", "--dry-run")
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"},
		{"billing", groupsTopic, "0", "0"},
		{"billing", groupsTopic, "1", "0"},
	}, table(out))
	assert.Equal(t, map[int32]int64{0: 6, 1: 4}, committed(t, addr, "billing"), "a dry run commits nothing")
	_, errOut, err := groupsCmd(t, addr, "reset-offsets", "--group", "billing", "--all-topics", "--to-earliest")
	require.NoError(t, err)
	assert.Contains(t, errOut, "--execute option is missing")
	assert.Equal(t, map[int32]int64{0: 6, 1: 4}, committed(t, addr, "billing"), "no --execute, no commit")

	for _, step := range []struct {
		args []string
		want map[int32]int64
	}{
		{[]string{"--topic", groupsTopic + ":0", "--to-earliest"}, map[int32]int64{0: 0, 1: 4}},
		{[]string{"--topic", groupsTopic + ":0", "--to-offset", "3"}, map[int32]int64{0: 3, 1: 4}},
		{[]string{"--topic", groupsTopic + ":0", "--to-offset", "99"}, map[int32]int64{0: 10, 1: 4}}, // clamped to the log end
		{[]string{"--topic", groupsTopic + ":0,1", "--shift-by", "-3"}, map[int32]int64{0: 7, 1: 1}},
		{[]string{"--all-topics", "--shift-by", "-100"}, map[int32]int64{0: 0, 1: 0}}, // clamped to the log start
		{[]string{"--all-topics", "--shift-by", "100"}, map[int32]int64{0: 10, 1: 4}}, // clamped to the log end
		{[]string{"--topic", groupsTopic, "--to-earliest"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
		{[]string{"--topic", groupsTopic, "--to-latest"}, map[int32]int64{0: 10, 1: 4, 2: 0}},
		{[]string{"--all-topics", "--to-datetime", "2000-01-01T00:00:00.000"}, map[int32]int64{0: 0, 1: 0, 2: 0}},   // before every record
		{[]string{"--all-topics", "--to-datetime", "2999-01-01T00:00:00.000Z"}, map[int32]int64{0: 10, 1: 4, 2: 0}}, // after every record: the log end
		{[]string{"--topic", groupsTopic + ":0", "--to-offset", "5"}, map[int32]int64{0: 5, 1: 4, 2: 0}},
		{[]string{"--all-topics", "--to-current"}, map[int32]int64{0: 5, 1: 4, 2: 0}},
	} {
		args := append([]string{"reset-offsets", "--group", "billing", "--execute"}, step.args...)
		out, _, err := groupsCmd(t, addr, args...)
		require.NoError(t, err, "%v", step.args)
		assert.Equal(t, []string{"GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"}, table(out)[0])
		assert.Equal(t, step.want, committed(t, addr, "billing"), "%v", step.args)
	}

	out, _, err = groupsCmd(t, addr, "describe", "--group", "billing")
	require.NoError(t, err)
	assert.Equal(t, []string{"billing", groupsTopic, "0", "5", "10", "5", "-", "-", "-"}, table(out)[1], "describe reads the reset offsets")

	_, _, err = groupsCmd(t, addr, "reset-offsets", "--group", "fresh", "--topic", groupsTopic+":0", "--shift-by", "1")
	assert.ErrorContains(t, err, "no committed offset", "nothing to shift from")

	_, _, err = groupsCmd(t, addr, "reset-offsets", "--group", "billing", "--topic", groupsTopic, "--to-offset", "1", "--to-latest")
	assert.ErrorContains(t, err, "give one of")
}

// delete refuses a group with a member (NON_EMPTY_GROUP) and removes one
// whose members have left; delete-offsets refuses the partitions of a topic
// the members subscribe to, and forgets them once they have left.
func TestGroupsDelete(t *testing.T) {
	addr := startGroupsCluster(t)
	produceTo(t, addr, map[int32]int{0: 2, 1: 1})
	consumer := consumeAndCommit(t, addr, "billing", 3, map[int32]int64{0: 2, 1: 1})
	defer consumer.Close()

	out, _, err := groupsCmd(t, addr, "delete", "--group", "billing")
	assert.Error(t, err)
	assert.Contains(t, out, "* Group 'billing' could not be deleted due to: NON_EMPTY_GROUP: The group is not empty.")
	out, _, err = groupsCmd(t, addr, "delete-offsets", "--group", "billing", "--topic", groupsTopic+":0")
	assert.Error(t, err)
	assert.Contains(t, out, "Error: GROUP_SUBSCRIBED_TO_TOPIC")

	leave(t, addr, "billing", consumer)
	out, _, err = groupsCmd(t, addr, "delete-offsets", "--group", "billing", "--topic", groupsTopic+":0")
	require.NoError(t, err)
	assert.Equal(t, [][]string{
		{"Request", "succeed", "for", "deleting", "offsets", "with", "topic", groupsTopic, "group", "billing"},
		{"TOPIC", "PARTITION", "STATUS"},
		{groupsTopic, "0", "Successful"},
	}, table(out))
	assert.Equal(t, map[int32]int64{1: 1}, committed(t, addr, "billing"), "partition 0's offset forgotten")

	out, _, err = groupsCmd(t, addr, "delete", "--group", "billing")
	require.NoError(t, err)
	assert.Equal(t, "Deletion of requested consumer groups ('billing') was successful.\n", out)
	out, _, err = groupsCmd(t, addr, "list")
	require.NoError(t, err)
	assert.Empty(t, out)
}

// Against an address where nothing listens, a command fails at once and
// says where it tried.
func TestGroupsUnreachableCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	start := time.Now()
	_, _, err = groupsCmd(t, addr, "list")
	assert.ErrorContains(t, err, "cannot reach the cluster at "+addr)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// On a cluster of three brokers, groups live on different coordinators:
// list and describe --all-groups ask every broker, and --state names each
// group's coordinator, the one FindCoordinator names.
func TestGroupsAcrossCoordinators(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Configure: func(cfg *broker.Config) {
		require.NoError(t, cfg.Set("offsets.topic.num.partitions", "3"))
	}})
	addr := c.Addr(c.IDs()[0])
	_, err := capture(t, func() error {
		return runTopics([]string{"create", "--bootstrap-server=" + addr, "--topic", groupsTopic, "--partitions", "3"})
	})
	require.NoError(t, err)

	// reset-offsets --execute on a group no one has joined commits its
	// first offsets: a quick way to make an Empty group.
	names := []string{"g1", "g2", "g3", "g4", "g5", "g6"}
	for _, g := range names {
		_, _, err := groupsCmd(t, addr, "reset-offsets", "--group", g, "--topic", groupsTopic, "--to-earliest", "--execute")
		require.NoError(t, err, g)
	}
	out, _, err := groupsCmd(t, addr, "list")
	require.NoError(t, err)
	assert.Equal(t, strings.Join(names, "\n")+"\n", out)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	coordinators := kadm.NewClient(cl).FindGroupCoordinators(ctx, names...)
	out, _, err = groupsCmd(t, addr, "describe", "--all-groups", "--state")
	require.NoError(t, err)
	seen := map[string]bool{} // coordinators
	described := 0
	for _, r := range table(out) {
		if r[0] == "GROUP" {
			continue // each group's table has its header
		}
		described++
		require.Len(t, r, 6, "%v", r)
		want := coordinators[r[0]]
		require.NoError(t, want.Err)
		coordinator := fmt.Sprintf("%s:%d", want.Host, want.Port)
		assert.Equal(t, []string{coordinator, fmt.Sprintf("(%d)", want.NodeID), "-", "Empty", "0"}, r[1:], r[0])
		seen[coordinator] = true
	}
	assert.Equal(t, len(names), described)
	assert.Greater(t, len(seen), 1, "the groups are spread over more than one coordinator")
}
