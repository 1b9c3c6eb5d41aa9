package broker_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	bclient "klab.dev/klab/broker/client"
)

// DeleteRecords and DescribeLogDirs on one broker, through kadm, as
// kafka-delete-records.sh and kafka-log-dirs.sh use them.

// smallSegments makes a topic roll a segment every few records, so that
// DeleteRecords has whole segments to delete and a segment to start in.
var smallSegments = map[string]*string{"segment.bytes": kadm.StringPtr("1024")}

// produceNumbered produces n records to partition 0 of topic, each acked.
func produceNumbered(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%03d-%0100d", i, 0)}
		require.NoError(t, cl.ProduceSync(ctxT(t), r).FirstErr())
	}
}

// deleteBelow asks kadm to delete partition 0 of topic below offset.
func deleteBelow(t *testing.T, adm *kadm.Client, topic string, offset int64) kadm.DeleteRecordsResponse {
	t.Helper()
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: topic, Partition: 0, At: offset})
	resps, err := adm.DeleteRecords(ctxT(t), os)
	require.NoError(t, err)
	r, ok := resps.Lookup(topic, 0)
	require.True(t, ok, "an answer for %s-0", topic)
	return r
}

// logStartOf is ListOffsets' earliest for partition 0 of topic.
func logStartOf(t *testing.T, adm *kadm.Client, topic string) int64 {
	t.Helper()
	starts, err := adm.ListStartOffsets(ctxT(t), topic)
	require.NoError(t, err)
	o, ok := starts.Lookup(topic, 0)
	require.True(t, ok)
	require.NoError(t, o.Err)
	return o.Offset
}

// fetchErrorAt is the error code a consumer's Fetch of partition 0 of topic
// at offset gets.
func fetchErrorAt(t *testing.T, cl *kgo.Client, topic string, offset int64) error {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes = -1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	topics, err := kadm.NewClient(cl).ListTopics(ctxT(t), topic)
	require.NoError(t, err)
	// By name up to v12, by id from v13 (KIP-516): franz-go picks the
	// version, the newest the broker speaks.
	rt.Topic, rt.TopicID = topic, topics[topic].ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}

func TestDeleteRecordsMovesTheLogStart(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b, kgo.DisableIdempotentWrite())
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 1, 1, smallSegments, "orders")
	require.NoError(t, err)
	produceNumbered(t, cl, "orders", 40)
	before, err := adm.DescribeAllLogDirs(ctxT(t), nil)
	require.NoError(t, err)
	sizeBefore, _ := before[b.ID()].LookupPartition("orders", 0)

	r := deleteBelow(t, adm, "orders", 17)
	require.NoError(t, r.Err)
	assert.Equal(t, int64(17), r.LowWatermark)
	assert.Equal(t, int64(17), logStartOf(t, adm, "orders"), "ListOffsets earliest")
	assert.ErrorIs(t, fetchErrorAt(t, cl, "orders", 16), kerr.OffsetOutOfRange, "below the start")
	assert.NoError(t, fetchErrorAt(t, cl, "orders", 17))
	after, err := adm.DescribeAllLogDirs(ctxT(t), nil)
	require.NoError(t, err)
	sizeAfter, _ := after[b.ID()].LookupPartition("orders", 0)
	assert.Less(t, sizeAfter.Size, sizeBefore.Size, "whole segments below 17 are deleted")

	again := deleteBelow(t, adm, "orders", 3)
	require.NoError(t, again.Err, "below the start: nothing to do")
	assert.Equal(t, int64(17), again.LowWatermark)

	all := deleteBelow(t, adm, "orders", -1)
	require.NoError(t, all.Err)
	assert.Equal(t, int64(40), all.LowWatermark, "-1 is the high watermark")
	assert.Equal(t, int64(40), logStartOf(t, adm, "orders"))

	past := deleteBelow(t, adm, "orders", 41)
	assert.ErrorIs(t, past.Err, kerr.OffsetOutOfRange, "past the high watermark")
	assert.Equal(t, int64(40), logStartOf(t, adm, "orders"), "unchanged")
}

func TestDeleteRecordsRefusesWhatKafkaRefuses(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b, kgo.DisableIdempotentWrite())
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "orders")
	require.NoError(t, err)
	_, err = adm.CreateTopic(ctxT(t), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "compacted")
	require.NoError(t, err)
	produceNumbered(t, cl, "orders", 5)

	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 5000
	ask := func(topic string, partition int32, offset int64) {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = partition, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	ask("orders", 0, -2)
	ask("orders", 0, -1<<62)
	ask("orders", 7, 1)
	ask("orders", -1, 1)
	ask("nope", 0, 1)
	ask("compacted", 0, 0)
	ask("orders", 0, 2)
	want := []error{kerr.OffsetOutOfRange, kerr.OffsetOutOfRange, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition, kerr.UnknownTopicOrPartition, kerr.PolicyViolation, nil}
	for _, version := range []int16{0, 1, 2} {
		resp, err := requestVersion(t, b.Addr(), req, version)
		require.NoError(t, err, "v%d", version)
		dr := resp.(*kmsg.DeleteRecordsResponse)
		require.Len(t, dr.Topics, len(want))
		for i, w := range want {
			got := dr.Topics[i].Partitions[0]
			assert.Equal(t, w, kerr.ErrorForCode(got.ErrorCode), "v%d, partition %d", version, i)
			if w != nil {
				assert.Equal(t, int64(-1), got.LowWatermark, "v%d: no low watermark with an error", version)
			}
		}
	}
	assert.Equal(t, int64(2), logStartOf(t, adm, "orders"), "only the good request moved it")
}

// The new start survives a clean restart and a crash.
func TestDeleteRecordsSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	cl := client(t, b, kgo.DisableIdempotentWrite())
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 1, 1, smallSegments, "orders")
	require.NoError(t, err)
	produceNumbered(t, cl, "orders", 30)
	require.NoError(t, deleteBelow(t, adm, "orders", 13).Err)
	cl.Close()
	require.NoError(t, b.Close())

	b = start(t, dir)
	adm = kadm.NewClient(client(t, b))
	assert.Equal(t, int64(13), logStartOf(t, adm, "orders"), "after a clean restart")
	require.NoError(t, deleteBelow(t, adm, "orders", 21).Err)
	require.NoError(t, b.Crash())

	b = start(t, dir)
	cl = client(t, b)
	adm = kadm.NewClient(cl)
	assert.Equal(t, int64(21), logStartOf(t, adm, "orders"), "after a crash")
	assert.ErrorIs(t, fetchErrorAt(t, cl, "orders", 20), kerr.OffsetOutOfRange)
}

// An idempotent producer whose every record DeleteRecords deleted is
// still known to the partition, through a crash too: a retry of its last
// batch is a duplicate, written once, and its next batch is in sequence.
// A kgo producer goes on producing as if nothing happened.
func TestDeleteRecordsKeepsIdempotentProducers(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 1, 1, smallSegments, "orders")
	require.NoError(t, err)
	for i := range 10 {
		sp := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, int32(i*3), 3))
		require.Zero(t, sp.ErrorCode, "batch %d: %v", i, kerr.ErrorForCode(sp.ErrorCode))
	}
	require.NoError(t, deleteBelow(t, adm, "orders", -1).Err)
	require.Equal(t, int64(30), logStartOf(t, adm, "orders"), "every record of producer 9 is deleted")
	cl.Close()
	require.NoError(t, b.Crash())

	b = start(t, dir)
	cl = client(t, b, kgo.DefaultProduceTopic("orders"))
	adm = kadm.NewClient(cl)
	retry := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, 27, 3))
	require.Zero(t, retry.ErrorCode, "a retry of the last batch: %v", kerr.ErrorForCode(retry.ErrorCode))
	assert.Equal(t, int64(27), retry.BaseOffset, "answered with where it was first written")
	next := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, 30, 3))
	require.Zero(t, next.ErrorCode, "the next sequence: %v", kerr.ErrorForCode(next.ErrorCode))
	assert.Equal(t, int64(30), next.BaseOffset, "the retry was not written again")

	// A kgo producer across a DeleteRecords of everything it wrote.
	for i := range 5 {
		require.NoError(t, cl.ProduceSync(ctxT(t), kgo.StringRecord(fmt.Sprint("a", i))).FirstErr())
	}
	require.NoError(t, deleteBelow(t, adm, "orders", -1).Err)
	for i := range 5 {
		require.NoError(t, cl.ProduceSync(ctxT(t), kgo.StringRecord(fmt.Sprint("b", i))).FirstErr(), "after DeleteRecords")
	}
	ends, err := adm.ListEndOffsets(ctxT(t), "orders")
	require.NoError(t, err)
	end, _ := ends.Lookup("orders", 0)
	assert.Equal(t, int64(43), end.Offset, "every record once: 30, 3, then 5 and 5")
}

func TestDescribeLogDirsListsEveryReplica(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	cl := client(t, b, kgo.DisableIdempotentWrite())
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 2, 1, nil, "orders")
	require.NoError(t, err)
	_, err = adm.CreateTopic(ctxT(t), 1, 1, nil, "other")
	require.NoError(t, err)
	produceNumbered(t, cl, "orders", 3)

	all, err := adm.DescribeAllLogDirs(ctxT(t), nil)
	require.NoError(t, err)
	require.NoError(t, all[b.ID()].Error())
	dirs := all[b.ID()].Sorted()
	require.Len(t, dirs, 1, "one log dir")
	d := dirs[0]
	abs, err := filepath.Abs(dir)
	require.NoError(t, err)
	assert.Equal(t, abs, d.Dir)
	assert.Positive(t, d.TotalBytes, "v4: the filesystem's size")
	assert.Positive(t, d.UsableBytes)
	assert.LessOrEqual(t, d.UsableBytes, d.TotalBytes)
	var got []string
	var size int64
	d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
		got = append(got, fmt.Sprint(p.Topic, "-", p.Partition))
		assert.Zero(t, p.OffsetLag, "a leader has no lag")
		assert.False(t, p.IsFuture)
		if p.Topic == "orders" {
			size += p.Size
		}
	})
	assert.ElementsMatch(t, []string{"orders-0", "orders-1", "other-0"}, got)
	assert.Positive(t, size, "the records take room")

	some, err := adm.DescribeAllLogDirs(ctxT(t), kadm.TopicsSet{"orders": {1: {}}})
	require.NoError(t, err)
	got = nil
	some[b.ID()].EachPartition(func(p kadm.DescribedLogDirPartition) { got = append(got, fmt.Sprint(p.Topic, "-", p.Partition)) })
	assert.Equal(t, []string{"orders-1"}, got, "only what was asked for")

	// What the broker does not hold is left out, as Kafka leaves it out;
	// a partition named twice is answered once.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	for _, name := range []string{"orders", "nope", "orders"} {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = name, []int32{1, 7, -1, 1}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := requestVersion(t, b.Addr(), req, 4)
	require.NoError(t, err)
	topics := resp.(*kmsg.DescribeLogDirsResponse).Dirs[0].Topics
	require.Len(t, topics, 1)
	assert.Equal(t, "orders", topics[0].Topic)
	require.Len(t, topics[0].Partitions, 1)
	assert.Equal(t, int32(1), topics[0].Partitions[0].Partition)

	// Every version answers; before v4 the filesystem's size is not sent.
	for version := range int16(5) {
		resp, err := requestVersion(t, b.Addr(), kmsg.NewPtrDescribeLogDirsRequest(), version)
		require.NoError(t, err, "v%d", version)
		dr := resp.(*kmsg.DescribeLogDirsResponse)
		require.Len(t, dr.Dirs, 1, "v%d", version)
		assert.Len(t, dr.Dirs[0].Topics, 2, "v%d", version)
		if version < 4 {
			assert.Equal(t, int64(-1), dr.Dirs[0].TotalBytes, "v%d", version)
		}
	}
}

// requestVersion sends one request at the given version, whatever the newest
// both sides speak, and returns the answer.
func requestVersion(t *testing.T, addr string, req kmsg.Request, version int16) (kmsg.Response, error) {
	t.Helper()
	conn, err := bclient.Dial(ctxT(t), addr, "test")
	require.NoError(t, err)
	defer conn.Close()
	return conn.RequestAt(ctxT(t), req, version)
}
