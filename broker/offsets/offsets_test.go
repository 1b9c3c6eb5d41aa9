package offsets_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/offsets"
)

// Groups land on the partition a Kafka broker would put them on: Java's
// String.hashCode, made non-negative with Kafka's abs.
func TestPartitionForIsJavasHash(t *testing.T) {
	// "hello".hashCode() is 99162322, "Aa" and "BB" collide at 2112, and
	// "polygenelubricants".hashCode() is Integer.MIN_VALUE, which Kafka's
	// abs maps to 0 (Math.abs would leave it negative).
	assert.Equal(t, int32(99162322%50), offsets.PartitionFor("hello", 50))
	assert.Equal(t, int32(2112%50), offsets.PartitionFor("Aa", 50))
	assert.Equal(t, offsets.PartitionFor("Aa", 50), offsets.PartitionFor("BB", 50))
	assert.Equal(t, int32(0), offsets.PartitionFor("polygenelubricants", 50))
	// A negative hash: "consumer-group-1" hashes below zero in Java.
	for _, g := range []string{"consumer-group-1", "billing", "éé", "😀"} {
		p := offsets.PartitionFor(g, 50)
		assert.True(t, p >= 0 && p < 50, "%s: %d", g, p)
	}
	// Non-BMP characters count as two UTF-16 code units: 😀 is \uD83D\uDE00,
	// 55357*31 + 56832 = 1772899.
	assert.Equal(t, int32(1772899%50), offsets.PartitionFor("😀", 50))
}

// A commit record is Kafka's: key version 1 (group, topic, partition),
// value version 3 (offset, leader epoch, metadata, commit time), readable
// by kmsg as Kafka's tools read it.
func TestCommitRecordsAreKafkasFormat(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	r := offsets.CommitRecord("g", offsets.TopicPartition{Topic: "orders", Partition: 3}, offsets.Commit{Offset: 42, LeaderEpoch: 7, Metadata: "m", Time: at})
	var key kmsg.OffsetCommitKey
	require.NoError(t, key.ReadFrom(r.Key))
	assert.Equal(t, kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "orders", Partition: 3}, key)
	var value kmsg.OffsetCommitValue
	require.NoError(t, value.ReadFrom(r.Value))
	assert.Equal(t, int16(3), value.Version)
	assert.Equal(t, int64(42), value.Offset)
	assert.Equal(t, int32(7), value.LeaderEpoch)
	assert.Equal(t, "m", value.Metadata)
	assert.Equal(t, at.UnixMilli(), value.CommitTimestamp)
}

// Replaying the records gives the latest commit of each key; a tombstone
// deletes; a record older than what the store has (an acknowledgement that
// raced another) changes nothing; group metadata records are skipped.
func TestStoreKeepsTheLatestCommitInLogOrder(t *testing.T) {
	s := offsets.NewStore()
	tp := offsets.TopicPartition{Topic: "t", Partition: 0}
	at := func(r log.Record, offset int64) log.Record { r.Offset = offset; return r }
	now := time.Now()
	require.NoError(t, s.Apply(at(offsets.CommitRecord("g", tp, offsets.Commit{Offset: 10, Time: now}), 0)))
	require.NoError(t, s.Apply(at(offsets.CommitRecord("g", tp, offsets.Commit{Offset: 20, Time: now}), 2)))
	require.NoError(t, s.Apply(at(offsets.CommitRecord("g", tp, offsets.Commit{Offset: 15, Time: now}), 1)))
	assert.Equal(t, int64(20), s.Committed("g")[tp].Offset, "the record at offset 1 came after the one at 2")

	require.NoError(t, s.Apply(at(offsets.GroupTombstone("g", now), 3)))
	assert.True(t, s.Has("g"))
	require.NoError(t, s.Apply(at(offsets.CommitTombstone("g", tp, now), 4)))
	assert.False(t, s.Has("g"))
	require.NoError(t, s.Apply(at(offsets.CommitRecord("g", tp, offsets.Commit{Offset: 30, Time: now}), 3)))
	assert.False(t, s.Has("g"), "a commit older than the tombstone does not bring it back")
	require.NoError(t, s.Apply(at(offsets.CommitRecord("g", tp, offsets.Commit{Offset: 40, Time: now}), 5)))
	assert.Equal(t, []string{"g"}, s.Groups())

	assert.Error(t, s.Apply(log.Record{Key: []byte{0}}), "a key too short for its version")
}

// Expired lists the commits older than the cutoff.
func TestExpiredListsOldCommits(t *testing.T) {
	s := offsets.NewStore()
	now := time.Now()
	old, fresh := offsets.TopicPartition{Topic: "t", Partition: 0}, offsets.TopicPartition{Topic: "t", Partition: 1}
	require.NoError(t, s.Apply(offsets.CommitRecord("g", old, offsets.Commit{Offset: 1, Time: now.Add(-time.Hour)})))
	r := offsets.CommitRecord("g", fresh, offsets.Commit{Offset: 1, Time: now})
	r.Offset = 1
	require.NoError(t, s.Apply(r))
	assert.Equal(t, []offsets.TopicPartition{old}, s.Expired("g", now.Add(-time.Minute)))
}
