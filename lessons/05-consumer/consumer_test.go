// The tests of lesson 05, the consumer. They produce with franz-go's client
// to a klab broker (or to franz-go's kfake) and read with the course's
// consumer.
package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/consumer"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// cluster starts a klab broker with topic "lesson" of n partitions.
func cluster(t *testing.T, partitions int32) string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx(t), partitions, 1, nil, "lesson")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	return b.Addr()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// produce writes n records to a partition with franz-go, values "0".."n-1"
// after those already there, compressed with codec.
func produce(t *testing.T, addr string, partition int32, from, n int, codec kgo.CompressionCodec) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DisableIdempotentWrite(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(codec))
	require.NoError(t, err)
	defer cl.Close()
	for i := from; i < from+n; i++ {
		cl.Produce(ctx(t), &kgo.Record{Topic: "lesson", Partition: partition, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			assert.NoError(t, err)
		})
	}
	require.NoError(t, cl.Flush(ctx(t)))
}

func newConsumer(t *testing.T, addr string, settings ...string) *consumer.Consumer {
	t.Helper()
	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	for i := 0; i+1 < len(settings); i += 2 {
		require.NoError(t, cfg.Set(settings[i], settings[i+1]))
	}
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// pollN polls until it has n records.
func pollN(t *testing.T, c *consumer.Consumer, n int) []consumer.Record {
	t.Helper()
	var out []consumer.Record
	for len(out) < n {
		recs, err := c.Poll(ctx(t))
		require.NoError(t, err, "after %d of %d records", len(out), n)
		out = append(out, recs...)
	}
	return out
}

var p0 = consumer.TopicPartition{Topic: "lesson", Partition: 0}

func TestPollReadsInOrderFromThePosition(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 100, kgo.NoCompression())
	c := newConsumer(t, addr)
	c.Assign(p0)
	require.NoError(t, c.Seek(p0, 10))
	recs := pollN(t, c, 90)
	for i, r := range recs {
		assert.Equal(t, int64(10+i), r.Offset, "records come in offset order from the position")
		assert.Equal(t, fmt.Sprint(10+i), string(r.Value))
	}
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(100), pos, "the position is the offset of the next record to read")
}

func TestAutoOffsetResetEarliest(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 20, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest")
	c.Assign(p0)
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(0), pos, "earliest: the log start offset")
	assert.Equal(t, int64(0), pollN(t, c, 20)[0].Offset)
}

func TestAutoOffsetResetLatestReadsOnlyNewRecords(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 20, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "latest")
	c.Assign(p0)
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(20), pos, "latest: the end of the log, where the next record will go")
	produce(t, addr, 0, 20, 5, kgo.NoCompression())
	recs := pollN(t, c, 5)
	assert.Equal(t, int64(20), recs[0].Offset, "only records written after the reset")
}

func TestAutoOffsetResetNoneIsAnError(t *testing.T) {
	addr := cluster(t, 1)
	c := newConsumer(t, addr, "auto.offset.reset", "none")
	c.Assign(p0)
	_, err := c.Poll(ctx(t))
	assert.ErrorIs(t, err, consumer.ErrNoOffset, "with none, a partition without a position is the application's to Seek")
}

func TestAnOffsetOutOfRangeIsReset(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 10, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest")
	c.Assign(p0)
	require.NoError(t, c.Seek(p0, 5000))
	recs := pollN(t, c, 10)
	assert.Equal(t, int64(0), recs[0].Offset, "offset 5000 is past the log: OFFSET_OUT_OF_RANGE, then auto.offset.reset=earliest")
}

func TestMaxPollRecordsBoundsEachPoll(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 50, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest", "max.poll.records", "7")
	c.Assign(p0)
	total := 0
	for total < 50 {
		recs, err := c.Poll(ctx(t))
		require.NoError(t, err)
		assert.LessOrEqual(t, len(recs), 7)
		total += len(recs)
	}
	assert.Equal(t, 50, total)
}

func TestPollWaitsForNewRecords(t *testing.T) {
	addr := cluster(t, 1)
	c := newConsumer(t, addr, "auto.offset.reset", "latest", "fetch.max.wait.ms", "10000")
	c.Assign(p0)
	_, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	got := make(chan []consumer.Record, 1)
	go func() {
		recs, err := c.Poll(ctx(t))
		assert.NoError(t, err)
		got <- recs
	}()
	produce(t, addr, 0, 0, 1, kgo.NoCompression())
	select {
	case recs := <-got:
		require.Len(t, recs, 1, "the waiting fetch returns the record that arrived")
	case <-time.After(20 * time.Second):
		t.Fatal("Poll did not return the new record")
	}
}

func TestCompressedBatchesAreDecompressed(t *testing.T) {
	addr := cluster(t, 1)
	codecs := []kgo.CompressionCodec{kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	for i, codec := range codecs {
		produce(t, addr, 0, i*10, 10, codec)
	}
	c := newConsumer(t, addr, "auto.offset.reset", "earliest")
	c.Assign(p0)
	for i, r := range pollN(t, c, 40) {
		assert.Equal(t, fmt.Sprint(i), string(r.Value))
	}
}

func TestManyPartitionsAreAllRead(t *testing.T) {
	addr := cluster(t, 3)
	var tps []consumer.TopicPartition
	for p := range int32(3) {
		produce(t, addr, p, 0, 30, kgo.NoCompression())
		tps = append(tps, consumer.TopicPartition{Topic: "lesson", Partition: p})
	}
	c := newConsumer(t, addr, "auto.offset.reset", "earliest")
	c.Assign(tps...)
	seen := map[int32]int{}
	for _, r := range pollN(t, c, 90) {
		seen[r.Partition]++
	}
	assert.Equal(t, map[int32]int{0: 30, 1: 30, 2: 30}, seen)
}

// TestTheConsumerFollowsALeaderToAnotherBroker reads from franz-go's kfake,
// another Kafka, with two brokers, and moves the partition's leader midway.
func TestTheConsumerFollowsALeaderToAnotherBroker(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(1, "lesson"))
	require.NoError(t, err)
	defer k.Close()
	addr := k.ListenAddrs()[0]
	produce(t, addr, 0, 0, 20, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest", "fetch.max.wait.ms", "100", "retry.backoff.ms", "20")
	c.Assign(p0)
	first := pollN(t, c, 20)
	other := 1 - k.LeaderFor("lesson", 0)
	require.NoError(t, k.MoveTopicPartition("lesson", 0, other))
	produce(t, addr, 0, 20, 20, kgo.NoCompression())
	second := pollN(t, c, 20)
	assert.Equal(t, int64(19), first[len(first)-1].Offset)
	assert.Equal(t, int64(20), second[0].Offset, "after the move, reading goes on from the position, at the new leader")
}

func TestSmallFetchesReadEveryRecordOnce(t *testing.T) {
	addr := cluster(t, 1)
	for i := range 30 { // 30 batches of one record each
		produce(t, addr, 0, i, 1, kgo.NoCompression())
	}
	c := newConsumer(t, addr, "auto.offset.reset", "earliest", "max.partition.fetch.bytes", "100")
	c.Assign(p0)
	for i, r := range pollN(t, c, 30) {
		require.Equal(t, int64(i), r.Offset, "each fetch brings one batch; together, every record once, in order")
	}
}

func TestPollTakesFromEveryPartitionInTurn(t *testing.T) {
	addr := cluster(t, 2)
	produce(t, addr, 0, 0, 100, kgo.NoCompression())
	produce(t, addr, 1, 0, 100, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest", "max.poll.records", "10")
	c.Assign(consumer.TopicPartition{Topic: "lesson", Partition: 0}, consumer.TopicPartition{Topic: "lesson", Partition: 1})
	seen := map[int32]bool{}
	for range 4 {
		for _, r := range pollN(t, c, 1) {
			seen[r.Partition] = true
		}
	}
	assert.Len(t, seen, 2, "a few polls in, both partitions have had a turn: one busy partition must not starve the other")
}
