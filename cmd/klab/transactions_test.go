package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
)

// After an idempotent producer wrote three records, one a batch, to a
// partition, describe-producers shows it with its last sequence, 2, in
// kafka-transactions.sh's columns.
func TestDescribeProducersShowsTheLastSequence(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	defer b.Close()
	bs := "--bootstrap-server=" + b.Addr()
	_, err = capture(t, func() error { return runTopics([]string{"create", bs, "--topic", "orders", "--partitions", "1"}) })
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders")) // idempotent by default
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range []string{"a", "b", "c"} {
		require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr())
	}

	out, err := capture(t, func() error {
		return runTransactions([]string{"describe-producers", bs, "--topic", "orders", "--partition", "0"})
	})
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, "a header and one producer:\n%s", out)
	assert.Equal(t, []string{"ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp", "CurrentTransactionStartOffset"}, strings.Fields(lines[0]))
	fields := strings.Fields(lines[1])
	require.Len(t, fields, 6)
	assert.Equal(t, []string{"0", "-1", "2"}, fields[1:4], "epoch 0, no coordinator, last sequence 2")
	assert.Equal(t, "None", fields[5])

	_, err = capture(t, func() error {
		return runTransactions([]string{"describe-producers", bs, "--topic", "nope", "--partition", "0"})
	})
	assert.ErrorContains(t, err, "UNKNOWN_TOPIC_OR_PARTITION")
}
