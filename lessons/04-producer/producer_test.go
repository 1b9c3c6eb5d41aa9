// The tests of lesson 04, the producer. They run the course's producer
// against a klab broker on a loopback port, check what reached the log with
// franz-go's consumer, and check compatibility with the Java client's
// partitioner and with another Kafka (franz-go's kfake).
package producer_test

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
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/producer"
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
	createTopic(t, b.Addr(), partitions)
	return b.Addr()
}

func createTopic(t *testing.T, addr string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx(t), partitions, 1, nil, "lesson")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// newProducer makes a producer with the given settings, by Java names.
func newProducer(t *testing.T, addr string, settings ...string) *producer.Producer {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	cfg.MaxBlock = 10 * time.Second
	for i := 0; i+1 < len(settings); i += 2 {
		require.NoError(t, cfg.Set(settings[i], settings[i+1]))
	}
	p, err := producer.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// batches reads partition p of "lesson" from the broker and returns how
// many records each batch holds.
func batches(t *testing.T, addr string, partition int32) []int {
	t.Helper()
	var counts []int
	for _, b := range rawBatches(t, addr, partition) {
		recs, err := log.DecodeRecords(b)
		require.NoError(t, err)
		counts = append(counts, len(recs))
	}
	return counts
}

// rawBatches reads partition p of "lesson" from the broker as the batches
// the producer made: the broker stores them as they came.
func rawBatches(t *testing.T, addr string, partition int32) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes = -1, 10<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "lesson", topicID(t, cl, "lesson")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = partition, 10<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err)
	raw := resp.Topics[0].Partitions[0].RecordBatches
	if len(raw) == 0 {
		return nil
	}
	all, err := log.Batches(raw)
	require.NoError(t, err)
	return all
}

// consumeAll reads n records of "lesson" with franz-go's consumer.
func consumeAll(t *testing.T, addr string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("lesson"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx(t))
		require.NoError(t, fs.Err0(), "consumed %d of %d", len(out), n)
		out = append(out, fs.Records()...)
	}
	return out
}

func TestKeysGoWhereTheJavaClientSendsThem(t *testing.T) {
	addr := cluster(t, 7)
	p := newProducer(t, addr, "linger.ms", "0")
	// murmur2 values from the Java client's own tests (UtilsTest.testMurmur2):
	// the partition is the hash with its sign bit cleared, modulo 7.
	for key, hash := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Key: []byte(key), Value: []byte("v")})
		require.NoError(t, err, "key %q", key)
		assert.Equal(t, (hash&0x7fffffff)%7, md.Partition, "key %q", key)
	}
	// And the same choice as franz-go's Java-compatible partitioner, for many keys.
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("lesson")
	for i := range 200 {
		key := []byte(fmt.Sprintf("user-%d", i*7919))
		md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Key: key, Value: []byte("v")})
		require.NoError(t, err)
		assert.Equal(t, int32(kp.Partition(&kgo.Record{Key: key}, 7)), md.Partition, "key %q", key)
	}
}

func TestSendWaitsForTheOffset(t *testing.T) {
	addr := cluster(t, 1)
	p := newProducer(t, addr)
	for i := range 3 {
		md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
		assert.Equal(t, int64(i), md.Offset, "synchronous sends get consecutive offsets")
		assert.Equal(t, int32(0), md.Partition)
	}
}

func TestSendAsyncReturnsAFutureAndCallsBack(t *testing.T) {
	addr := cluster(t, 1)
	p := newProducer(t, addr, "linger.ms", "60000") // nothing leaves until Flush
	called := make(chan producer.RecordMetadata, 10)
	var futures []*producer.Future
	for i := range 10 {
		f := p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte(fmt.Sprint(i))}, func(md producer.RecordMetadata, err error) {
			assert.NoError(t, err)
			called <- md
		})
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Done():
			t.Fatalf("record %d was answered before it was sent: SendAsync must return at once and linger.ms hold the batch", i)
		default:
		}
	}
	require.NoError(t, p.Flush(ctx(t)))
	for i, f := range futures {
		md, err := f.Wait(ctx(t))
		require.NoError(t, err)
		assert.Equal(t, int64(i), md.Offset)
		assert.Equal(t, md, <-called, "the callback gets what the future holds")
	}
}

func TestLingerMakesOneBatchOfManyRecords(t *testing.T) {
	addr := cluster(t, 1)
	one := int32(0)
	slow := newProducer(t, addr, "linger.ms", "60000")
	for i := range 20 {
		slow.SendAsync(&producer.Record{Topic: "lesson", Partition: &one, Value: []byte(fmt.Sprint(i))}, nil)
	}
	require.NoError(t, slow.Flush(ctx(t)))
	fast := newProducer(t, addr, "linger.ms", "0")
	for i := range 5 {
		_, err := fast.Send(ctx(t), &producer.Record{Topic: "lesson", Partition: &one, Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err)
	}
	assert.Equal(t, []int{20, 1, 1, 1, 1, 1}, batches(t, addr, 0),
		"with linger.ms the 20 async records wait for each other and leave as one batch; each synchronous send with linger.ms=0 is a batch of its own")
}

func TestBatchSizeCutsBatches(t *testing.T) {
	addr := cluster(t, 1)
	one := int32(0)
	p := newProducer(t, addr, "linger.ms", "60000", "batch.size", "1000")
	var futures []*producer.Future
	for range 30 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Partition: &one, Value: make([]byte, 100)}, nil))
	}
	require.NoError(t, p.Flush(ctx(t)))
	for i, f := range futures {
		md, err := f.Wait(ctx(t))
		require.NoError(t, err, "record %d", i)
		assert.Equal(t, int64(i), md.Offset, "the records of one partition keep the order they were sent in")
	}
	raw := rawBatches(t, addr, 0)
	var counts []int
	for i, b := range raw {
		assert.LessOrEqual(t, len(b), 1000, "batch %d: batch.size bounds the whole batch, its 61-byte header included", i)
		recs, err := log.DecodeRecords(b)
		require.NoError(t, err)
		counts = append(counts, len(recs))
	}
	// A record here takes about 110 bytes: 61 + 8*110 fits in 1000 bytes,
	// a ninth record does not. Each batch is as full as batch.size allows,
	// and the last holds what is left.
	assert.Equal(t, []int{8, 8, 8, 6}, counts, "batch.size=1000 and records of ~110 bytes: batches of 8, the header counted")
}

// TestABatchAtBatchSizeLeavesAtOnceWhileOthersLinger: a batch that reached
// batch.size is ready whatever linger.ms says, even with nothing behind it.
// A batch with room lingers.
func TestABatchAtBatchSizeLeavesAtOnceWhileOthersLinger(t *testing.T) {
	addr := cluster(t, 2)
	zero, one := int32(0), int32(1)
	p := newProducer(t, addr, "linger.ms", "600000", "batch.size", "1000")
	var small []*producer.Future
	for i := range 5 {
		small = append(small, p.SendAsync(&producer.Record{Topic: "lesson", Partition: &zero, Value: []byte(fmt.Sprint(i))}, nil))
	}
	// A record that makes a batch of exactly batch.size bytes: the 61-byte
	// header and the record, whose offset and timestamp deltas are 0.
	value := make([]byte, 900)
	for log.BatchHeaderSize+log.RecordSize(kmsg.Record{Value: value}) < 1000 {
		value = append(value, 0)
	}
	require.Equal(t, 1000, log.BatchHeaderSize+log.RecordSize(kmsg.Record{Value: value}))
	big := p.SendAsync(&producer.Record{Topic: "lesson", Partition: &one, Value: value}, nil)
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := big.Wait(wait)
	require.NoError(t, err, "a batch at batch.size is sent at once, with no Flush and linger.ms at ten minutes")
	assert.Equal(t, int64(0), md.Offset)
	// The sender looked at partition 0 when it sent the big record, queued
	// after the small ones: their batch has room, so it stayed.
	assert.Empty(t, batches(t, addr, 0), "partition 0's batch has room and linger.ms has not passed: nothing of it may leave before Flush")
	more := p.SendAsync(&producer.Record{Topic: "lesson", Partition: &one, Value: []byte("small")}, nil)
	require.NoError(t, p.Flush(ctx(t)))
	waitAll(t, append(small, more))
	assert.Equal(t, []int{5}, batches(t, addr, 0), "the lingering records left together on Flush")
	assert.Equal(t, []int{1, 1}, batches(t, addr, 1), "the full batch left alone; the next record went to a new one")
}

func TestKeylessRecordsStickToOnePartitionPerBatch(t *testing.T) {
	addr := cluster(t, 6)
	p := newProducer(t, addr, "linger.ms", "60000")
	var futures []*producer.Future
	for i := range 10 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte(fmt.Sprint(i))}, nil))
	}
	require.NoError(t, p.Flush(ctx(t)))
	first, err := futures[0].Wait(ctx(t))
	require.NoError(t, err)
	for i, f := range futures {
		md, err := f.Wait(ctx(t))
		require.NoError(t, err)
		assert.Equal(t, first.Partition, md.Partition, "record %d: keyless records stick to one partition while its batch has room (KIP-480)", i)
	}
}

func TestAcksZeroGetsNoOffsets(t *testing.T) {
	addr := cluster(t, 1)
	p := newProducer(t, addr, "acks", "0")
	md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Value: []byte("fire and forget")})
	require.NoError(t, err)
	assert.Equal(t, int64(-1), md.Offset, "acks=0: the broker does not answer, so the offset is unknown")
	assert.Len(t, consumeAll(t, addr, 1), 1, "but the record is written")
}

func TestEveryCompressionTypeIsReadableByAnotherClient(t *testing.T) {
	addr := cluster(t, 1)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		p := newProducer(t, addr, "compression.type", codec)
		_, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Key: []byte(codec), Value: []byte("compressed with " + codec)})
		require.NoError(t, err, codec)
	}
	got := map[string]string{}
	for _, r := range consumeAll(t, addr, 5) {
		got[string(r.Key)] = string(r.Value)
	}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		assert.Equal(t, "compressed with "+codec, got[codec], "franz-go reads what %s compressed", codec)
	}
}

func TestCloseLosesNothingBuffered(t *testing.T) {
	addr := cluster(t, 3)
	p := newProducer(t, addr, "linger.ms", "60000")
	var futures []*producer.Future
	for i := range 1000 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}, nil))
	}
	require.NoError(t, p.Close(), "Close sends what is buffered and waits for it")
	waitAll(t, futures)
	assert.Len(t, consumeAll(t, addr, 1000), 1000)
	_, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Value: []byte("late")})
	assert.ErrorIs(t, err, producer.ErrClosed)
}

func TestAnUnknownTopicFailsAfterMaxBlockAndOthersGoOn(t *testing.T) {
	addr := cluster(t, 1)
	p := newProducer(t, addr, "max.block.ms", "300")
	_, err := p.Send(ctx(t), &producer.Record{Topic: "no-such-topic", Value: []byte("x")})
	assert.ErrorContains(t, err, "UNKNOWN_TOPIC_OR_PARTITION")
	_, err = p.Send(ctx(t), &producer.Record{Topic: "lesson", Value: []byte("x")})
	assert.NoError(t, err, "a topic that exists is not held up by one that does not")
}

// waitAll checks that every future got its answer without an error.
func waitAll(t *testing.T, futures []*producer.Future) {
	t.Helper()
	for i, f := range futures {
		_, err := f.Wait(ctx(t))
		require.NoError(t, err, "record %d", i)
	}
}

// TestTheProducerWorksAgainstAnotherKafka runs against franz-go's kfake,
// which answers the first Produce to each partition with
// NOT_LEADER_OR_FOLLOWER: the producer must refresh its metadata, retry, and
// lose nothing.
func TestTheProducerWorksAgainstAnotherKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "lesson"))
	require.NoError(t, err)
	defer c.Close()
	failed := map[int32]bool{}
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		handled := false
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				if !failed[rp.Partition] {
					failed[rp.Partition] = true
					handled = true
				}
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, 6 // NOT_LEADER_OR_FOLLOWER
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		if !handled {
			return nil, nil, false // let kfake write it
		}
		return resp, nil, true
	})
	addr := c.ListenAddrs()[0]
	p := newProducer(t, addr, "retry.backoff.ms", "10")
	for i := range 30 {
		md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))})
		require.NoError(t, err, "record %d", i)
		assert.GreaterOrEqual(t, md.Offset, int64(0))
	}
	assert.Len(t, consumeAll(t, addr, 30), 30, "every record arrived once, after the retries")
}

func TestNewPartitionsAreSeen(t *testing.T) {
	addr := cluster(t, 1)
	p := newProducer(t, addr)
	_, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Value: []byte("before")})
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	grown, err := kadm.NewClient(cl).CreatePartitions(ctx(t), 2, "lesson")
	require.NoError(t, err)
	require.NoError(t, grown.Error())

	third := int32(2)
	md, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Partition: &third, Value: []byte("after")})
	require.NoError(t, err, "a partition the producer has not seen yet sends it back for metadata")
	assert.Equal(t, int32(2), md.Partition)
}

func TestARecordWithNowhereToGoFailsAtDeliveryTimeout(t *testing.T) {
	addr := cluster(t, 2)
	p := newProducer(t, addr, "delivery.timeout.ms", "1500", "retry.backoff.ms", "50", "linger.ms", "0")
	_, err := p.Send(ctx(t), &producer.Record{Topic: "lesson", Key: []byte("k"), Value: []byte("before")})
	require.NoError(t, err)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).DeleteTopics(ctx(t), "lesson")
	require.NoError(t, err)

	// The producer still believes in the topic: the broker answers
	// UNKNOWN_TOPIC_OR_PARTITION, a retriable error, and then the metadata
	// forgets the topic. delivery.timeout.ms must end the wait.
	f := p.SendAsync(&producer.Record{Topic: "lesson", Key: []byte("k"), Value: []byte("after")}, nil)
	_, err = f.Wait(ctx(t))
	require.Error(t, err)
	assert.ErrorContains(t, err, "delivery.timeout.ms")
	assert.NoError(t, p.Close(), "nothing is left unanswered, so Close has nothing to wait for")
}

func TestKeylessRecordsMoveOnWhenTheirBatchIsFull(t *testing.T) {
	addr := cluster(t, 6)
	p := newProducer(t, addr, "linger.ms", "60000", "batch.size", "1000")
	var futures []*producer.Future
	for range 40 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Value: make([]byte, 100)}, nil))
	}
	require.NoError(t, p.Flush(ctx(t)))
	runs := 0 // stretches of consecutive records in one partition
	last := int32(-1)
	for _, f := range futures {
		md, err := f.Wait(ctx(t))
		require.NoError(t, err)
		if md.Partition != last {
			runs++
			last = md.Partition
		}
	}
	assert.GreaterOrEqual(t, runs, 4, "40 records of ~110 bytes fill a 1000-byte batch every 8: the sticky partitioner moves on each time (KIP-480)")
}

func TestAFullBatchLeavesWithoutWaitingForLinger(t *testing.T) {
	addr := cluster(t, 1)
	one := int32(0)
	p := newProducer(t, addr, "linger.ms", "600000", "batch.size", "1000")
	var futures []*producer.Future
	for range 10 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Partition: &one, Value: make([]byte, 100)}, nil))
	}
	// No Flush: linger.ms is ten minutes, but the first batch is full: the
	// ninth record did not fit and opened a second batch.
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, f := range futures[:8] {
		md, err := f.Wait(wait)
		require.NoError(t, err, "record %d: a batch that another batch follows is full and leaves at once, whatever linger.ms says", i)
		assert.Equal(t, int64(i), md.Offset)
	}
	assert.Equal(t, []int{8}, batches(t, addr, 0), "the second batch has room: it lingers")
}

// recordsPerBatch returns, for each partition of a Produce request, how
// many records its batch holds.
func recordsPerBatch(req kmsg.Request) map[int32]int32 {
	out := map[int32]int32{}
	for _, rt := range req.(*kmsg.ProduceRequest).Topics {
		for _, rp := range rt.Partitions {
			var rb kmsg.RecordBatch
			if rb.ReadFrom(rp.Records) == nil {
				out[rp.Partition] = rb.NumRecords
			}
		}
	}
	return out
}

// TestRecordsBatchWhileARequestIsOutEvenWithLingerZero holds kfake's answer
// to the first Produce while 50 more records are queued: with
// max.in.flight.requests.per.connection=1 nothing else may leave, so the 50
// wait in one batch. linger.ms=0 does not mean "a batch per record".
func TestRecordsBatchWhileARequestIsOutEvenWithLingerZero(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lesson"))
	require.NoError(t, err)
	defer c.Close()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	var mu sync.Mutex
	var sent []int32 // records per batch of partition 0, in the order the requests came
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		sent = append(sent, recordsPerBatch(req)[0])
		first := len(sent) == 1
		mu.Unlock()
		if first {
			close(held)
			<-release // the whole of kfake waits here
		}
		return nil, nil, false
	})
	p := newProducer(t, c.ListenAddrs()[0], "linger.ms", "0", "max.in.flight.requests.per.connection", "1")
	futures := []*producer.Future{p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte("first")}, nil)}
	select {
	case <-held:
	case <-futures[0].Done():
		_, err := futures[0].Wait(ctx(t))
		require.NoError(t, err)
		t.Fatal("the first record was answered, but kfake holds its request")
	case <-ctx(t).Done():
		t.Fatal("the first record was not sent, with linger.ms=0")
	}
	for i := range 50 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte(fmt.Sprint(i))}, nil))
	}
	once.Do(func() { close(release) })
	require.NoError(t, p.Flush(ctx(t)))
	waitAll(t, futures)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int32{1, 50}, sent, "the records that queued behind the request in flight leave as one batch")
}

// TestARetriedBatchWaitsOutItsBackoffAndTakesNoNewRecords fails the first
// Produce with NOT_LEADER_OR_FOLLOWER. The producer puts the batch back,
// asks for metadata, and waits retry.backoff.ms, Flush or not; a record sent
// meanwhile goes to a new batch behind it, because the broker may already
// have the first one.
func TestARetriedBatchWaitsOutItsBackoffAndTakesNoNewRecords(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "lesson"))
	require.NoError(t, err)
	defer c.Close()
	type attempt struct {
		at      time.Time
		records int32
	}
	var mu sync.Mutex
	var attempts []attempt
	requeued := make(chan struct{})
	var once sync.Once
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, attempt{time.Now(), recordsPerBatch(req)[0]})
		if len(attempts) > 1 {
			return nil, nil, false
		}
		r := req.(*kmsg.ProduceRequest)
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, 6 // NOT_LEADER_OR_FOLLOWER
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) > 0 { // the producer asks after it put the batch back
			once.Do(func() { close(requeued) })
		}
		return nil, nil, false
	})
	const backoff = time.Second
	p := newProducer(t, c.ListenAddrs()[0], "linger.ms", "0", "retry.backoff.ms", fmt.Sprint(backoff.Milliseconds()))
	first := p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte("first")}, nil)
	select {
	case <-requeued:
	case <-first.Done():
		_, err := first.Wait(ctx(t))
		require.NoError(t, err)
		t.Fatal("the record was answered with no retry, although its first attempt failed")
	case <-ctx(t).Done():
		t.Fatal("the failed batch was not retried")
	}
	second := p.SendAsync(&producer.Record{Topic: "lesson", Value: []byte("second")}, nil)
	require.NoError(t, p.Flush(ctx(t)), "Flush waits out the backoff: it does not cut it short")
	md1, err := first.Wait(ctx(t))
	require.NoError(t, err)
	md2, err := second.Wait(ctx(t))
	require.NoError(t, err)
	assert.Less(t, md1.Offset, md2.Offset, "the retried batch stays ahead of the records sent after it")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, attempts, 3, "the first batch twice, then the second")
	assert.Equal(t, []int32{1, 1, 1}, []int32{attempts[0].records, attempts[1].records, attempts[2].records},
		"a batch sent once is sealed: its retry holds the same records, and the record sent meanwhile has a batch of its own")
	assert.GreaterOrEqual(t, attempts[1].at.Sub(attempts[0].at), backoff, "the retry waits retry.backoff.ms, even while Flush waits")
}

// topicID is a topic's id. A Fetch names its topics by id from v13
// (KIP-516), and franz-go sends the newest version the broker speaks.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, topics[topic].Err)
	return topics[topic].ID
}
