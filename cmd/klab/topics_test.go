package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
)

// capture runs fn and returns what it printed on standard output.
func capture(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	runErr := fn()
	os.Stdout = stdout
	w.Close()
	return <-done, runErr
}

func TestTopicsCommandsWithKafkaTopicsFlags(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	defer b.Close()
	bs := "--bootstrap-server=" + b.Addr()

	out, err := capture(t, func() error {
		return runTopics([]string{"create", bs, "--topic", "orders", "--partitions", "3", "--replication-factor", "1", "--config", "retention.ms=60000", "--config", "cleanup.policy=compact"})
	})
	require.NoError(t, err)
	assert.Equal(t, "Created topic orders.\n", out)

	out, err = capture(t, func() error { return runTopics([]string{"list", bs}) })
	require.NoError(t, err)
	assert.Equal(t, "orders\n", out)

	// A group's commit makes __consumer_offsets, which kafka-topics lists
	// too, unless --exclude-internal.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 0, LeaderEpoch: -1})
	committed, err := kadm.NewClient(cl).CommitOffsets(context.Background(), "billing", commit)
	require.NoError(t, err)
	require.NoError(t, committed.Error())
	out, err = capture(t, func() error { return runTopics([]string{"list", bs}) })
	require.NoError(t, err)
	assert.Equal(t, "__consumer_offsets\norders\n", out)
	out, err = capture(t, func() error { return runTopics([]string{"list", bs, "--exclude-internal"}) })
	require.NoError(t, err)
	assert.Equal(t, "orders\n", out)

	out, err = capture(t, func() error { return runTopics([]string{"describe", bs, "--topic", "orders"}) })
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, "a topic line and three partition lines:\n%s", out)
	assert.Contains(t, lines[0], "PartitionCount: 3\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,retention.ms=60000")
	assert.Contains(t, lines[1], "Partition: 0\tLeader: 1\tReplicas: 1\tIsr: 1")

	out, err = capture(t, func() error {
		return runTopics([]string{"describe", bs, "--under-replicated-partitions"})
	})
	require.NoError(t, err)
	assert.Empty(t, out, "every partition is fully in sync: nothing to print, as kafka-topics prints nothing")

	_, err = capture(t, func() error { return runTopics([]string{"create", bs, "--topic", "orders"}) })
	assert.ErrorContains(t, err, "TOPIC_ALREADY_EXISTS")
	_, err = capture(t, func() error { return runTopics([]string{"create", bs, "--topic", "x", "--replication-factor", "3"}) })
	assert.ErrorContains(t, err, "INVALID_REPLICATION_FACTOR")

	out, err = capture(t, func() error { return runTopics([]string{"delete", bs, "--topic", "orders"}) })
	require.NoError(t, err)
	assert.Equal(t, "Deleted topic orders.\n", out)
}
