// The tests of lesson 03, speaking Kafka: a broker on a loopback port,
// driven by a real Kafka client (franz-go's kgo) and by raw requests built
// with kmsg, so that each test sees the protocol as a client does.
package speaking_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/log"
)

// testLog shows the broker's log in the test's output: when a test fails,
// what the broker said (and which lesson function is missing) is there.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// setup starts a broker with one topic, "lesson", of the given partitions
// and configs, and a kgo client for it.
func setup(t *testing.T, partitions int32, configs map[string]*string) (*broker.Broker, *kgo.Client) {
	t.Helper()
	return setupWith(t, partitions, configs, nil)
}

// setupWith is setup with the broker's Config changed by configure first.
func setupWith(t *testing.T, partitions int32, configs map[string]*string, configure func(*broker.Config)) (*broker.Broker, *kgo.Client) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	if configure != nil {
		configure(&cfg)
	}
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	resp, err := kadm.NewClient(cl).CreateTopics(ctx(t), partitions, 1, configs, "lesson")
	require.NoError(t, err, "CreateTopics")
	require.NoError(t, resp.Error(), "CreateTopics")
	return b, cl
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// produce sends one Produce request with one batch per partition given,
// from a client configured with those acks (kgo sends its own acks setting
// on every Produce request, even one built by hand).
func produce(t *testing.T, b *broker.Broker, acks int16, batches map[int32][]byte) *kmsg.ProduceResponse {
	t.Helper()
	ack := map[int16]kgo.Acks{0: kgo.NoAck(), 1: kgo.LeaderAck(), -1: kgo.AllISRAcks()}[acks]
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequiredAcks(ack), kgo.DisableIdempotentWrite(), kgo.RequestRetries(0))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "lesson"
	for p, b := range batches {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p, b
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err, "Produce request")
	if acks != 0 {
		require.Len(t, resp.Topics, 1)
	}
	return resp
}

// partitionResult finds a partition's answer in a Produce response.
func partitionResult(t *testing.T, resp *kmsg.ProduceResponse, p int32) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	for _, rp := range resp.Topics[0].Partitions {
		if rp.Partition == p {
			return rp
		}
	}
	t.Fatalf("no answer for partition %d", p)
	return kmsg.ProduceResponseTopicPartition{}
}

func fetch(t *testing.T, cl *kgo.Client, partition int32, offset int64, maxWait time.Duration, minBytes int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	return fetchMany(t, cl, maxWait, minBytes, want{partition, offset, 1 << 20})[0]
}

// want is one partition of a Fetch: where to read from, and at most how
// many bytes (partition_max_bytes).
type want struct {
	partition int32
	offset    int64
	maxBytes  int32
}

// fetchMany sends one Fetch for several partitions of "lesson" and returns
// their answers, in the request's order.
func fetchMany(t *testing.T, cl *kgo.Client, maxWait time.Duration, minBytes int32, parts ...want) []kmsg.FetchResponseTopicPartition {
	t.Helper()
	return fetchUpTo(t, cl, 1<<20, maxWait, minBytes, parts...)
}

// fetchUpTo is fetchMany with the request's max_bytes, for all partitions.
func fetchUpTo(t *testing.T, cl *kgo.Client, maxBytes int32, maxWait time.Duration, minBytes int32, parts ...want) []kmsg.FetchResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, int32(maxWait.Milliseconds()), minBytes, maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "lesson", topicID(t, cl, "lesson")
	for _, w := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = w.partition, w.offset, w.maxBytes
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err, "Fetch request")
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, len(parts))
	return resp.Topics[0].Partitions
}

// offsets lists the offsets of the records in a Fetch answer's batches.
func offsets(t *testing.T, batches []byte) []int64 {
	t.Helper()
	recs, err := log.DecodeRecords(batches)
	require.NoError(t, err)
	out := []int64{}
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func batch(values ...string) []byte {
	recs := make([]log.Record, len(values))
	for i, v := range values {
		recs[i] = log.Record{Timestamp: time.Now(), Value: []byte(v)}
	}
	return log.EncodeBatch(recs...)
}

func TestApiVersionsListsTheImplementedAPIs(t *testing.T) {
	_, cl := setup(t, 1, nil)
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx(t), cl)
	require.NoError(t, err)
	assert.Zero(t, resp.ErrorCode)
	versions := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		versions[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.ApiVersions, kmsg.CreateTopics} {
		assert.Contains(t, versions, int16(key), "ApiVersions must list %s", key.Name())
	}
	assert.NotContains(t, versions, int16(kmsg.DescribeACLs), "only what is implemented is advertised: klab has no ACLs")
}

func TestProduceAppendsAndReturnsTheBaseOffset(t *testing.T) {
	b, _ := setup(t, 2, nil)
	first := partitionResult(t, produce(t, b, 1, map[int32][]byte{0: batch("a", "b", "c")}), 0)
	require.Zero(t, first.ErrorCode, "first produce: %v", kerr.ErrorForCode(first.ErrorCode))
	assert.Equal(t, int64(0), first.BaseOffset)
	second := partitionResult(t, produce(t, b, -1, map[int32][]byte{0: batch("d"), 1: batch("x")}), 0)
	require.Zero(t, second.ErrorCode, "second produce: %v", kerr.ErrorForCode(second.ErrorCode))
	assert.Equal(t, int64(3), second.BaseOffset, "the second batch starts after the first's three records")
}

func TestAcksZeroGetsNoResponseButIsWritten(t *testing.T) {
	b, cl := setup(t, 1, nil)
	resp := produce(t, b, 0, map[int32][]byte{0: batch("fire", "and", "forget")})
	assert.Empty(t, resp.Topics, "kgo makes up an empty answer: the broker sends none")
	require.Eventually(t, func() bool {
		return fetch(t, cl, 0, 0, 0, 1).HighWatermark == 3
	}, 5*time.Second, 10*time.Millisecond, "the three records of an acks=0 produce reach the log")
}

func TestFetchReturnsWhatWasProduced(t *testing.T) {
	b, cl := setup(t, 1, nil)
	produce(t, b, 1, map[int32][]byte{0: batch("a", "b")})
	produce(t, b, 1, map[int32][]byte{0: batch("c")})
	got := fetch(t, cl, 0, 1, 0, 0)
	require.Zero(t, got.ErrorCode, "fetch: %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, int64(3), got.HighWatermark, "high watermark: with one broker, the log end offset")
	assert.Equal(t, int64(3), got.LastStableOffset, "last stable offset: without transactions, the high watermark")
	assert.Equal(t, int64(0), got.LogStartOffset)
	recs, err := log.DecodeRecords(got.RecordBatches)
	require.NoError(t, err)
	var values []string
	for _, r := range recs {
		values = append(values, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	assert.Equal(t, []string{"0:a", "1:b", "2:c"}, values, "whole batches from the one holding offset 1")
}

func TestFetchAtTheEndWaitsForData(t *testing.T) {
	b, cl := setup(t, 1, nil)
	done := make(chan kmsg.FetchResponseTopicPartition, 1)
	started := time.Now()
	go func() { done <- fetch(t, cl, 0, 0, 10*time.Second, 1) }()
	// The fetch is waiting (there is no data); this produce must wake it.
	produce(t, b, 1, map[int32][]byte{0: batch("wake up")})
	select {
	case got := <-done:
		require.Zero(t, got.ErrorCode)
		recs, err := log.DecodeRecords(got.RecordBatches)
		require.NoError(t, err)
		require.Len(t, recs, 1, "the long poll returns the record that arrived while it waited")
		assert.Less(t, time.Since(started), 9*time.Second, "the fetch returned when data came, not at max wait")
	case <-time.After(15 * time.Second):
		t.Fatal("the fetch did not return")
	}
}

func TestFetchWithNoDataReturnsAtMaxWait(t *testing.T) {
	_, cl := setup(t, 1, nil)
	got := fetch(t, cl, 0, 0, 200*time.Millisecond, 1)
	require.Zero(t, got.ErrorCode)
	assert.Empty(t, got.RecordBatches)
}

func TestFetchOutsideTheLogIsOffsetOutOfRange(t *testing.T) {
	b, cl := setup(t, 1, nil)
	produce(t, b, 1, map[int32][]byte{0: batch("only")})
	got := fetch(t, cl, 0, 5, 0, 0)
	assert.Equal(t, kerr.OffsetOutOfRange.Code, got.ErrorCode, "got %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Empty(t, got.RecordBatches)
	got = fetch(t, cl, 0, 1, 0, 0)
	assert.Zero(t, got.ErrorCode, "offset 1 is the log end: nothing yet, but in range: got %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Empty(t, got.RecordBatches)
	assert.Equal(t, int64(1), got.HighWatermark)
}

func TestUnknownTopicOrPartition(t *testing.T) {
	b, cl := setup(t, 1, nil)
	got := partitionResult(t, produce(t, b, 1, map[int32][]byte{7: batch("x")}), 7)
	assert.Equal(t, kerr.UnknownTopicOrPartition.Code, got.ErrorCode, "produce to partition 7 of a one-partition topic")
	assert.Equal(t, kerr.UnknownTopicOrPartition.Code, fetch(t, cl, 7, 0, 0, 0).ErrorCode, "fetch from partition 7")
}

func TestAcksAllNeedsMinInsyncReplicas(t *testing.T) {
	b, cl := setup(t, 1, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")})
	got := partitionResult(t, produce(t, b, -1, map[int32][]byte{0: batch("x")}), 0)
	assert.Equal(t, kerr.NotEnoughReplicas.Code, got.ErrorCode, "one in-sync replica, min.insync.replicas=2: got %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, int64(0), fetch(t, cl, 0, 0, 0, 0).HighWatermark, "NOT_ENOUGH_REPLICAS is decided before the append: nothing was written")
	got = partitionResult(t, produce(t, b, 1, map[int32][]byte{0: batch("y")}), 0)
	assert.Zero(t, got.ErrorCode, "acks=1 does not look at min.insync.replicas: got %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, int64(0), got.BaseOffset, "the refused batch took no offset")
	produce(t, b, 0, map[int32][]byte{0: batch("z")})
	require.Eventually(t, func() bool {
		return fetch(t, cl, 0, 0, 0, 0).HighWatermark == 2
	}, 5*time.Second, 10*time.Millisecond, "acks=0 does not look at min.insync.replicas either: the record is written")
}

// TestMinInsyncReplicasComesFromTheTopicThenTheBroker: a topic's
// min.insync.replicas overrides the broker's (server.properties); a topic
// without one takes the broker's.
func TestMinInsyncReplicasComesFromTheTopicThenTheBroker(t *testing.T) {
	b, _ := setupWith(t, 1, nil, func(cfg *broker.Config) {
		require.NoError(t, cfg.Set("min.insync.replicas", "2"))
	})
	got := partitionResult(t, produce(t, b, -1, map[int32][]byte{0: batch("x")}), 0)
	assert.Equal(t, kerr.NotEnoughReplicas.Code, got.ErrorCode, "the broker says min.insync.replicas=2 and the topic says nothing: got %v", kerr.ErrorForCode(got.ErrorCode))

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RequestRetries(0))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx(t), 1, 1, map[string]*string{"min.insync.replicas": kadm.StringPtr("1")}, "relaxed")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "relaxed"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch("x")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	pr, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err)
	code := pr.Topics[0].Partitions[0].ErrorCode
	assert.Zero(t, code, "the topic's min.insync.replicas=1 overrides the broker's 2: got %v", kerr.ErrorForCode(code))
}

// TestFetchReturnsWholeBatchesUpToPartitionMaxBytes: a Fetch returns whole
// batches, as many as fit in partition_max_bytes, but always the first
// one, even when it alone is larger (KIP-74), so that no consumer is stuck
// behind a large batch.
func TestFetchReturnsWholeBatchesUpToPartitionMaxBytes(t *testing.T) {
	b, cl := setup(t, 1, nil)
	for _, v := range []string{"a", "b", "c"} {
		produce(t, b, 1, map[int32][]byte{0: batch(v)})
	}
	all := fetch(t, cl, 0, 0, 0, 0)
	require.Equal(t, []int64{0, 1, 2}, offsets(t, all.RecordBatches))
	one := len(all.RecordBatches) / 3 // three batches of the same size

	got := fetchMany(t, cl, 0, 0, want{0, 0, 1})[0]
	require.Zero(t, got.ErrorCode, "fetch: %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, []int64{0}, offsets(t, got.RecordBatches), "partition_max_bytes 1: still the first whole batch (KIP-74), and only it")
	assert.Equal(t, int64(3), got.HighWatermark)

	got = fetchMany(t, cl, 0, 0, want{0, 1, int32(2*one + one/2)})[0]
	assert.Equal(t, []int64{1, 2}, offsets(t, got.RecordBatches), "room for two and a half batches from offset 1: two whole batches")

	got = fetchMany(t, cl, 0, 0, want{0, 0, int32(2 * one)})[0]
	assert.Equal(t, []int64{0, 1}, offsets(t, got.RecordBatches), "room for exactly two batches")

	got = fetchUpTo(t, cl, int32(one+1), 0, 0, want{0, 0, 1 << 20})[0]
	assert.Equal(t, []int64{0}, offsets(t, got.RecordBatches), "the request's max_bytes caps the answer too: room for one batch")
	got = fetchUpTo(t, cl, 1, 0, 0, want{0, 1, 1 << 20})[0]
	assert.Equal(t, []int64{1}, offsets(t, got.RecordBatches), "max_bytes 1: still one whole batch (KIP-74)")
}

// TestAPartitionWithNoRoomGetsNoRecords: past the first partition with
// data, a partition whose partition_max_bytes is 0 gets no records, but
// still its high watermark and log start offset.
func TestAPartitionWithNoRoomGetsNoRecords(t *testing.T) {
	b, cl := setup(t, 2, nil)
	produce(t, b, 1, map[int32][]byte{0: batch("a"), 1: batch("b", "c")})
	got := fetchMany(t, cl, 0, 0, want{0, 0, 1 << 20}, want{1, 0, 0})
	assert.Equal(t, []int64{0}, offsets(t, got[0].RecordBatches), "partition 0 has room")
	require.Zero(t, got[1].ErrorCode, "fetch: %v", kerr.ErrorForCode(got[1].ErrorCode))
	assert.Empty(t, got[1].RecordBatches, "partition 1 asked for 0 bytes")
	assert.Equal(t, int64(2), got[1].HighWatermark, "partition 1's high watermark, even without records")
	assert.Equal(t, int64(2), got[1].LastStableOffset)
	assert.Equal(t, int64(0), got[1].LogStartOffset)
}

// TestFetchBelowTheLogStartIsOffsetOutOfRange: once retention has deleted
// the oldest segments, the log starts later. A Fetch says where it starts,
// and one from before it is OFFSET_OUT_OF_RANGE.
func TestFetchBelowTheLogStartIsOffsetOutOfRange(t *testing.T) {
	b, cl := setupWith(t, 1, map[string]*string{
		"segment.bytes":   kadm.StringPtr("14"), // every batch rolls a new segment
		"retention.bytes": kadm.StringPtr("1"),  // keep only the active segment
	}, func(cfg *broker.Config) { cfg.RetentionCheckInterval = 20 * time.Millisecond })
	for _, v := range []string{"a", "b", "c"} {
		produce(t, b, 1, map[int32][]byte{0: batch(v)})
	}
	adm := kadm.NewClient(cl)
	require.Eventually(t, func() bool {
		starts, err := adm.ListStartOffsets(ctx(t), "lesson")
		if err != nil {
			return false
		}
		o, ok := starts.Lookup("lesson", 0)
		return ok && o.Offset == 2
	}, 10*time.Second, 20*time.Millisecond, "retention deletes the two sealed segments")
	got := fetch(t, cl, 0, 2, 0, 0)
	require.Zero(t, got.ErrorCode, "fetch: %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, int64(2), got.LogStartOffset, "the log now starts at 2")
	assert.Equal(t, []int64{2}, offsets(t, got.RecordBatches))
	assert.Equal(t, int64(3), got.HighWatermark)
	got = fetch(t, cl, 0, 0, 0, 0)
	assert.Equal(t, kerr.OffsetOutOfRange.Code, got.ErrorCode, "offset 0 is gone: got %v", kerr.ErrorForCode(got.ErrorCode))
}

func TestABadBatchFailsOnlyItsPartition(t *testing.T) {
	b, cl := setup(t, 3, map[string]*string{"max.message.bytes": kadm.StringPtr("1000")})
	corrupt := batch("value")
	corrupt[len(corrupt)-1] ^= 1
	big := batch(string(make([]byte, 2000)))
	resp := produce(t, b, 1, map[int32][]byte{0: batch("fine"), 1: corrupt, 2: big})
	assert.Zero(t, partitionResult(t, resp, 0).ErrorCode, "partition 0's good batch is written")
	assert.Equal(t, kerr.CorruptMessage.Code, partitionResult(t, resp, 1).ErrorCode, "a CRC mismatch is CORRUPT_MESSAGE")
	assert.Equal(t, kerr.MessageTooLarge.Code, partitionResult(t, resp, 2).ErrorCode, "a batch over max.message.bytes is MESSAGE_TOO_LARGE")
	got := fetch(t, cl, 1, 0, 0, 0)
	require.Zero(t, got.ErrorCode, "fetch: %v", kerr.ErrorForCode(got.ErrorCode))
	assert.Equal(t, int64(0), got.HighWatermark, "nothing of the corrupt batch was written")
	assert.Equal(t, int64(1), fetch(t, cl, 0, 0, 0, 0).HighWatermark, "partition 0 has its record")
}

func TestAKafkaClientProducesAndConsumes(t *testing.T) {
	b, _ := setup(t, 3, nil)
	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("lesson"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	require.NoError(t, err)
	defer p.Close()
	for i := range 100 {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}
		require.NoError(t, p.ProduceSync(ctx(t), r).FirstErr(), "record %d", i)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("lesson"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer c.Close()
	seen := 0
	for seen < 100 {
		fs := c.PollFetches(ctx(t))
		if err := fs.Err0(); err != nil {
			require.False(t, errors.Is(err, context.DeadlineExceeded), "consumed %d of 100 records before the deadline", seen)
			require.NoError(t, err)
		}
		seen += fs.NumRecords()
	}
	assert.Equal(t, 100, seen)
}

// TestTheFramingIsKafkas sends bytes by hand: a size, then a request header
// and body. It shows what a client puts on the wire.
func TestTheFramingIsKafkas(t *testing.T) {
	b, _ := setup(t, 1, nil)
	conn := dial(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 0
	body := req.AppendTo(nil)
	frame := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+len(body)))
	frame = binary.BigEndian.AppendUint16(frame, uint16(kmsg.ApiVersions)) // api key 18
	frame = binary.BigEndian.AppendUint16(frame, 0)                        // version 0
	frame = binary.BigEndian.AppendUint32(frame, 42)                       // correlation id
	frame = binary.BigEndian.AppendUint16(frame, 0xffff)                   // client id: null
	frame = append(frame, body...)
	_, err := conn.Write(frame)
	require.NoError(t, err)
	resp := readResponse(t, conn)
	assert.Equal(t, uint32(42), binary.BigEndian.Uint32(resp), "the response starts with the request's correlation id")
	var av kmsg.ApiVersionsResponse
	require.NoError(t, av.ReadFrom(resp[4:]))
	assert.Zero(t, av.ErrorCode)
	assert.NotEmpty(t, av.ApiKeys)
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
