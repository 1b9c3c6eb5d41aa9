// The tests of lesson 05, the consumer. They produce with franz-go's client
// to a klab broker (or to franz-go's kfake) and read with the course's
// consumer.
package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
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
	"klab.dev/klab/broker/log"
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
	recs := pollN(t, c, 1)
	require.Equal(t, int64(10), recs[0].Offset, "the first record is the one at the position")
	recs = append(recs, pollN(t, c, 90-len(recs))...)
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
	require.Equal(t, int64(0), pos, "earliest: the log start offset")
	assert.Equal(t, int64(0), pollN(t, c, 20)[0].Offset)
}

func TestAutoOffsetResetLatestReadsOnlyNewRecords(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 20, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "latest")
	c.Assign(p0)
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	require.Equal(t, int64(20), pos, "latest: the end of the log, where the next record will go")
	produce(t, addr, 0, 20, 5, kgo.NoCompression())
	recs := pollN(t, c, 5)
	assert.Equal(t, int64(20), recs[0].Offset, "only records written after the reset")
}

func TestAutoOffsetResetNoneIsAnError(t *testing.T) {
	addr := cluster(t, 1)
	c := newConsumer(t, addr, "auto.offset.reset", "none")
	c.Assign(p0)
	_, err := c.Position(ctx(t), p0)
	require.ErrorIs(t, err, consumer.ErrNoOffset, "with none, a partition without a position has none to give")
	_, err = c.Poll(ctx(t))
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
		require.LessOrEqual(t, len(recs), 7)
		for i, r := range recs {
			require.Equal(t, int64(total+i), r.Offset, "every record once, in order, across polls")
		}
		total += len(recs)
		pos, err := c.Position(ctx(t), p0)
		require.NoError(t, err)
		require.Equal(t, int64(total), pos, "the position is just past the last record returned, not past what was fetched")
	}
	assert.Equal(t, 50, total)
}

func TestMaxPollRecordsCountsAllPartitionsTogether(t *testing.T) {
	addr := cluster(t, 2)
	produce(t, addr, 0, 0, 3, kgo.NoCompression())
	produce(t, addr, 1, 0, 100, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "earliest", "max.poll.records", "10")
	c.Assign(consumer.TopicPartition{Topic: "lesson", Partition: 0}, consumer.TopicPartition{Topic: "lesson", Partition: 1})
	seen := map[int32]int{}
	for total := 0; total < 103; {
		recs, err := c.Poll(ctx(t))
		require.NoError(t, err)
		require.LessOrEqual(t, len(recs), 10, "max.poll.records bounds a whole Poll, not each partition's share of it")
		for _, r := range recs {
			seen[r.Partition]++
		}
		total += len(recs)
	}
	assert.Equal(t, map[int32]int{0: 3, 1: 100}, seen)
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
		recs := pollN(t, c, 1)
		require.LessOrEqual(t, len(recs), 10, "max.poll.records counts the records of all partitions together")
		for _, r := range recs {
			seen[r.Partition] = true
		}
	}
	assert.Len(t, seen, 2, "a few polls in, both partitions have had a turn: one busy partition must not starve the other")
}

func TestAutoOffsetResetEarliestOnAnEmptyLog(t *testing.T) {
	addr := cluster(t, 1)
	c := newConsumer(t, addr, "auto.offset.reset", "earliest")
	c.Assign(p0)
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(0), pos, "earliest is the log start offset (ListOffsets -2), even on a log with no record yet")
	produce(t, addr, 0, 0, 3, kgo.NoCompression())
	assert.Equal(t, int64(0), pollN(t, c, 3)[0].Offset)
}

func TestAnOffsetOutOfRangeWithNoneIsTheApplicationsToHandle(t *testing.T) {
	addr := cluster(t, 1)
	produce(t, addr, 0, 0, 10, kgo.NoCompression())
	c := newConsumer(t, addr, "auto.offset.reset", "none")
	c.Assign(p0)
	require.NoError(t, c.Seek(p0, 5000))
	_, err := c.Poll(ctx(t))
	require.Error(t, err)
	assert.ErrorIs(t, err, consumer.ErrNoOffset, "none: the consumer does not guess where to go on")
	assert.ErrorIs(t, err, kerr.OffsetOutOfRange, "and the application learns why")
	require.NoError(t, c.Seek(p0, 3))
	assert.Equal(t, int64(3), pollN(t, c, 7)[0].Offset, "after a Seek into the log, reading goes on")
}

// fakeLog is one partition of "lesson" served by franz-go's kfake with
// batches the test builds, so that a test can give the consumer what a
// Kafka broker may send and klab's tests cannot easily make it send: gaps
// that compaction left in the offsets, a corrupt batch, a log start that
// retention moved. Each Fetch answer holds one batch, the one that holds
// the offset asked for, as a broker does when max.partition.fetch.bytes is
// small.
type fakeLog struct {
	mu      sync.Mutex
	start   int64    // the log start offset
	batches [][]byte // whole batches, in offset order, from start on
}

// batch builds a v2 batch of records at the given offsets, whose values are
// the offsets; last is the batch's last offset, past the last record when
// compaction removed records at its end.
func batch(last int64, offsets ...int64) []byte {
	base := offsets[0]
	var recs []byte
	for _, o := range offsets {
		recs = log.AppendRecord(recs, kmsg.Record{OffsetDelta: int32(o - base), Value: []byte(fmt.Sprint(o))})
	}
	return log.SealBatch(kmsg.RecordBatch{
		FirstOffset: base, Magic: 2, LastOffsetDelta: int32(last - base),
		FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(offsets)),
	}, recs)
}

func lastOffset(b []byte) int64 {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		panic(err)
	}
	return rb.FirstOffset + int64(rb.LastOffsetDelta)
}

func (l *fakeLog) end() int64 {
	if len(l.batches) == 0 {
		return l.start
	}
	return lastOffset(l.batches[len(l.batches)-1]) + 1
}

// set replaces the log: retention moved its start, or compaction rewrote it.
func (l *fakeLog) set(start int64, batches ...[]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start, l.batches = start, batches
}

// serve starts kfake answering ListOffsets and Fetch from l.
func (l *fakeLog) serve(t *testing.T) string {
	t.Helper()
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lesson"))
	require.NoError(t, err)
	t.Cleanup(k.Close)
	k.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		l.mu.Lock()
		defer l.mu.Unlock()
		r := req.(*kmsg.ListOffsetsRequest)
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition, sp.Timestamp, sp.LeaderEpoch = rp.Partition, -1, rp.CurrentLeaderEpoch
				switch rp.Timestamp {
				case -2:
					sp.Offset = l.start
				case -1:
					sp.Offset = l.end()
				default:
					sp.ErrorCode = kerr.InvalidRequest.Code // the consumer asks only for -2 and -1
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	k.ControlKey(int16(kmsg.Fetch), func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.KeepControl()
		l.mu.Lock()
		defer l.mu.Unlock()
		r := req.(*kmsg.FetchRequest)
		resp := r.ResponseKind().(*kmsg.FetchResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewFetchResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewFetchResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = l.end(), l.end(), l.start
				switch {
				case rp.FetchOffset < l.start || rp.FetchOffset > l.end():
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				default:
					for _, b := range l.batches {
						if lastOffset(b) >= rp.FetchOffset {
							sp.RecordBatches = b
							break
						}
					}
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return k.ListenAddrs()[0]
}

func offsets(recs []consumer.Record) []int64 {
	var out []int64
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

// TestRecordsBelowTheFetchOffsetAreSkipped: a Fetch answer begins with the
// whole batch that holds the offset asked for.
func TestRecordsBelowTheFetchOffsetAreSkipped(t *testing.T) {
	l := &fakeLog{}
	l.set(0, batch(9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9), batch(12, 10, 11, 12))
	c := newConsumer(t, l.serve(t))
	c.Assign(p0)
	require.NoError(t, c.Seek(p0, 6))
	assert.Equal(t, []int64{6, 7, 8, 9, 10, 11, 12}, offsets(pollN(t, c, 7)),
		"the answer to a fetch from 6 starts at 0, the batch's first offset: 0 to 5 are not the consumer's to return")
}

// TestThePositionFollowsOffsetsNotCounts reads a compacted log, whose
// offsets have gaps: the position moves to the offset after the last
// record returned, not by the number of records.
func TestThePositionFollowsOffsetsNotCounts(t *testing.T) {
	l := &fakeLog{}
	l.set(0, batch(9, 0, 3, 7), batch(14, 10, 14))
	c := newConsumer(t, l.serve(t), "auto.offset.reset", "earliest", "max.poll.records", "2")
	c.Assign(p0)
	var got []int64
	for len(got) < 5 {
		recs, err := c.Poll(ctx(t))
		require.NoError(t, err)
		got = append(got, offsets(recs)...)
		pos, err := c.Position(ctx(t), p0)
		require.NoError(t, err)
		require.Equal(t, got[len(got)-1]+1, pos, "after offsets %v", got)
	}
	assert.Equal(t, []int64{0, 3, 7, 10, 14}, got)
	// Offsets 8 and 9 are gone, but their batch is still the one that
	// holds them: an answer with no record at or after the offset asked.
	require.NoError(t, c.Seek(p0, 8))
	assert.Equal(t, []int64{10, 14}, offsets(pollN(t, c, 2)), "a Seek into the compacted end of a batch reads on from the next batch")
}

func TestPollWithNothingAssignedWaitsForItsContext(t *testing.T) {
	addr := cluster(t, 1)
	c := newConsumer(t, addr)
	wait, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	recs, err := c.Poll(wait)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "no partitions: nothing to return, and nothing wrong either")
	assert.Empty(t, recs)
}

// TestACorruptBatchIsAnErrorUntilTheApplicationSeeksPastIt: check.crcs. A
// batch whose CRC-32C does not match is never returned; Poll fails, and
// fails again, until the application decides what to skip.
func TestACorruptBatchIsAnErrorUntilTheApplicationSeeksPastIt(t *testing.T) {
	bad := batch(9, 5, 6, 7, 8, 9)
	bad[len(bad)-1] ^= 0xff // the last byte of the last record's value
	l := &fakeLog{}
	l.set(0, batch(4, 0, 1, 2, 3, 4), bad, batch(14, 10, 11, 12, 13, 14))
	c := newConsumer(t, l.serve(t), "auto.offset.reset", "earliest")
	c.Assign(p0)
	assert.Equal(t, []int64{0, 1, 2, 3, 4}, offsets(pollN(t, c, 5)))
	for i := range 2 {
		recs, err := c.Poll(ctx(t))
		require.Error(t, err, "poll %d after the good batch: the corrupt batch must not be skipped silently", i+1)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.Empty(t, recs)
	}
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(5), pos, "nothing of the corrupt batch was returned")
	require.NoError(t, c.Seek(p0, 10))
	assert.Equal(t, []int64{10, 11, 12, 13, 14}, offsets(pollN(t, c, 5)), "past it, reading goes on")
}

// TestRetentionMovingTheLogStartResetsThePosition: the consumer read 0 to
// 4, then retention deleted up to 10. The fetch from 5 answers
// OFFSET_OUT_OF_RANGE, and auto.offset.reset=earliest goes on from the new
// log start.
func TestRetentionMovingTheLogStartResetsThePosition(t *testing.T) {
	l := &fakeLog{}
	l.set(0, batch(4, 0, 1, 2, 3, 4))
	c := newConsumer(t, l.serve(t), "auto.offset.reset", "earliest")
	c.Assign(p0)
	assert.Equal(t, []int64{0, 1, 2, 3, 4}, offsets(pollN(t, c, 5)))
	l.set(10, batch(14, 10, 11, 12, 13, 14))
	assert.Equal(t, []int64{10, 11, 12, 13, 14}, offsets(pollN(t, c, 5)), "records 5 to 9 are gone: earliest is now 10")
	pos, err := c.Position(ctx(t), p0)
	require.NoError(t, err)
	assert.Equal(t, int64(15), pos)
}
