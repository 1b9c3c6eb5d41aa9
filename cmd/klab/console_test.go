package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/consumer"
)

func startBroker(t *testing.T, partitions int32, topic string) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopics(context.Background(), partitions, 1, nil, topic)
	require.NoError(t, err)
	return b.Addr()
}

func TestProduceAndConsumeWithTheConsoleTools(t *testing.T) {
	addr := startBroker(t, 3, "orders")
	bs := "--bootstrap-server=" + addr
	var errs bytes.Buffer
	err := produceLines([]string{bs, "--topic", "orders", "--key-separator", ":", "-X", "linger.ms=10", "-X", "acks=all"},
		strings.NewReader("a:1\nb:2\nc:3\nd:4\nno key here\n"), &errs)
	require.NoError(t, err, errs.String())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	require.NoError(t, consumeRecords(ctx, []string{bs, "--topic", "orders", "--from-beginning", "--max-messages", "5", "--format", `%k=%s\n`}, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.ElementsMatch(t, []string{"a=1", "b=2", "c=3", "d=4", "=no key here"}, lines)

	out.Reset()
	require.NoError(t, consumeRecords(ctx, []string{bs, "--topic", "orders", "--partition", "1", "--offset", "0", "--max-messages", "1", "--format", `%t %p %o\n`}, &out))
	assert.Equal(t, "orders 1 0\n", out.String())
}

func TestConsoleToolsRefuseWhatTheyCannotDo(t *testing.T) {
	ctx := context.Background()
	assert.ErrorContains(t, consumeRecords(ctx, []string{"--topic", "x", "--group", "g", "--partition", "1"}, io.Discard), "--group")
	assert.ErrorContains(t, consumeRecords(ctx, []string{"--topic", "x", "--offset", "3"}, io.Discard), "--partition")
	assert.ErrorContains(t, produceLines([]string{"--topic", "x", "-X", "no.such=1"}, strings.NewReader(""), io.Discard), "no.such")
}

func TestConsumeWithAGroupPrintsEachRecordOnce(t *testing.T) {
	addr := startGroupBroker(t, 3, "orders")
	bs := "--bootstrap-server=" + addr
	var errs bytes.Buffer
	require.NoError(t, produceLines([]string{bs, "--topic", "orders"}, strings.NewReader("1\n2\n3\n4\n5\n"), &errs), errs.String())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	group := []string{bs, "--topic", "orders", "--group", "g", "--from-beginning"}
	var first, second bytes.Buffer
	require.NoError(t, consumeRecords(ctx, append(group, "--max-messages", "3"), &first))
	// The group committed what the first run printed, and no more: the
	// second starts there.
	require.NoError(t, consumeRecords(ctx, append(group, "--max-messages", "2"), &second))
	lines := strings.Fields(first.String() + second.String())
	assert.ElementsMatch(t, []string{"1", "2", "3", "4", "5"}, lines)
}

func TestProduceToAMissingTopicSaysHowToCreateIt(t *testing.T) {
	addr := startBroker(t, 1, "orders")
	began := time.Now()
	err := produceLines([]string{"--bootstrap-server=" + addr, "--topic", "ordres"}, strings.NewReader("a\nb\n"), io.Discard)
	assert.Less(t, time.Since(began), 10*time.Second)
	require.Error(t, err)
	assert.ErrorContains(t, err, "UNKNOWN_TOPIC_OR_PARTITION")
	assert.ErrorContains(t, err, "klab topics create --topic ordres --partitions 3 --replication-factor 1 --bootstrap-server "+addr)
}

func TestFormatRecordLikeKcat(t *testing.T) {
	r := consumer.Record{Topic: "t", Partition: 2, Offset: 41, Key: []byte("k"), Value: []byte("v"), Timestamp: time.UnixMilli(1700000000123)}
	assert.Equal(t, "t/2@41 k=v 1700000000123\t100%\n", formatRecord(`%t/%p@%o %k=%s %T\t100%%\n`, r))
}

// startGroupBroker is startBroker with group settings for tests: a group
// forms as soon as its members have joined, __consumer_offsets is small.
func startGroupBroker(t *testing.T, partitions int32, topic string) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range [][2]string{
		{"group.initial.rebalance.delay.ms", "0"},
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
	_, err = kadm.NewClient(cl).CreateTopics(context.Background(), partitions, 1, nil, topic)
	require.NoError(t, err)
	return b.Addr()
}
