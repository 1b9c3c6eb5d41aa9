// The tests of lesson 02, records and batches: what the log checks in a
// batch, how it gives batches their offsets, and how compaction keeps the
// latest record of every key.
package batches_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

func openLog(t *testing.T, dir string, cfg log.Config) *log.Log {
	t.Helper()
	l, err := log.Open(dir, cfg)
	require.NoError(t, err, "log.Open(%s)", dir)
	t.Cleanup(func() { l.Close() })
	return l
}

func appendBatch(t *testing.T, l *log.Log, b []byte) int64 {
	t.Helper()
	off, err := l.Append(b)
	require.NoError(t, err, "Append")
	return off
}

// readAll decodes every record of the log, reading on from each batch
// returned as a consumer does: one Read returns batches of one segment.
func readAll(t *testing.T, l *log.Log) []log.Record {
	t.Helper()
	var all []log.Record
	for offset := l.StartOffset(); offset < l.EndOffset(); {
		raw, err := l.Read(offset, 1<<30)
		require.NoError(t, err, "Read(%d)", offset)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err, "decoding what Read(%d) returned", offset)
		require.NotEmpty(t, recs, "Read(%d) below the log end offset %d returned no record", offset, l.EndOffset())
		for _, r := range recs {
			if r.Offset >= offset {
				all = append(all, r)
			}
		}
		offset = recs[len(recs)-1].Offset + 1
	}
	return all
}

// compactKeyed compacts l as of now and returns show of each keyed record
// left, in offset order.
func compactKeyed(t *testing.T, l *log.Log, now time.Time, show func(log.Record) string) []string {
	t.Helper()
	_, err := l.Compact(now)
	require.NoError(t, err)
	var out []string
	for _, r := range readAll(t, l) {
		if r.Key != nil {
			out = append(out, show(r))
		}
	}
	return out
}

// keyed makes a record with a key and a value; a nil value is a tombstone.
func keyed(key, value string, ts time.Time) log.Record {
	r := log.Record{Key: []byte(key), Timestamp: ts}
	if value != "" {
		r.Value = []byte(value)
	}
	return r
}

func TestTheLogAssignsBaseOffsets(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	ts := time.UnixMilli(1_700_000_000_000)
	first := []log.Record{
		{Timestamp: ts, Key: []byte("k1"), Value: []byte("v1"), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
		{Timestamp: ts.Add(time.Second), Key: []byte("k2"), Value: []byte("v2")},
	}
	b1 := log.EncodeBatch(first...)
	binary.BigEndian.PutUint64(b1, 999) // a producer's base offset means nothing to the log
	appendBatch(t, l, b1)
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: ts, Value: []byte("v3")}))

	got := readAll(t, l)
	want := []log.Record{
		{Offset: 0, Timestamp: ts, Key: []byte("k1"), Value: []byte("v1"), Headers: []kmsg.Header{{Key: "h", Value: []byte("x")}}},
		{Offset: 1, Timestamp: ts.Add(time.Second), Key: []byte("k2"), Value: []byte("v2")},
		{Offset: 2, Timestamp: ts, Value: []byte("v3")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records read back (-want +got):\n%s", diff)
	}
}

func TestAppendRejectsABatchWithABadCRC(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, log.Config{})
	appendBatch(t, l, log.EncodeBatch(keyed("k", "good", time.Now())))
	sizeBefore := l.Size()

	b := log.EncodeBatch(keyed("k", "value", time.Now()))
	b[len(b)-1] ^= 0xff // one bit of the value flipped on the way
	_, err := l.Append(b)
	require.Error(t, err, "a batch whose CRC-32C does not match must be refused")
	assert.True(t, errors.Is(err, kerr.CorruptMessage), "want CORRUPT_MESSAGE, got %v", err)
	assert.Equal(t, int64(1), l.EndOffset(), "a refused batch takes no offsets")
	assert.Equal(t, sizeBefore, l.Size(), "a refused batch writes nothing")
}

func TestAppendRejectsMalformedBatches(t *testing.T) {
	good := log.EncodeBatch(keyed("k", "v", time.Now()))
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	for _, tc := range []struct {
		name  string
		batch []byte
		want  error
	}{
		{"shorter than a header", good[:40], kerr.CorruptMessage},
		{"cut short", good[:len(good)-3], kerr.CorruptMessage},
		{"length field too large", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[8:], uint32(len(b)))
			return b
		}(), kerr.CorruptMessage},
		{"magic 1, an old message set", func() []byte { b := bytes.Clone(good); b[16] = 1; return b }(), kerr.InvalidRecord},
		{"more records than offsets", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[57:], 5)
			return recrc(b)
		}(), kerr.CorruptMessage},
		{"one record more than offsets", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[57:], 2) // 2 records, last offset delta 0
			return recrc(b)
		}(), kerr.CorruptMessage},
		{"a negative record count", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[57:], 0xffffffff)
			return recrc(b)
		}(), kerr.CorruptMessage},
		{"a negative last offset delta", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[23:], 0xffffffff)
			binary.BigEndian.PutUint32(b[57:], 0) // no records: 0 records do fit in 0 offsets
			return recrc(b)
		}(), kerr.CorruptMessage},
		{"a good CRC-32 (IEEE), as v0 and v1 messages had", func() []byte {
			b := bytes.Clone(good)
			binary.BigEndian.PutUint32(b[17:], crc32.ChecksumIEEE(b[21:]))
			return b
		}(), kerr.CorruptMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLog(t, t.TempDir(), log.Config{})
			_, err := l.Append(tc.batch)
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "want %v, got %v", tc.want, err)
			assert.Zero(t, l.EndOffset())
		})
	}
}

func TestRecoveryChecksTheCRCOfTheLastSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 1 << 20}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	var positions []int64 // where each batch starts in the file
	var size int64
	for i := range 20 {
		b := log.EncodeBatch(keyed(fmt.Sprint(i), "some value", time.Now()))
		positions = append(positions, size)
		size += int64(len(b))
		appendBatch(t, l, b)
	}
	require.NoError(t, l.Close())

	// Flip one byte inside batch 12's records: the file is whole, but the
	// batch is not what was written.
	path := filepath.Join(dir, fmt.Sprintf("%020d.log", 0))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[positions[12]+70] ^= 0x01
	require.NoError(t, os.WriteFile(path, data, 0o644))

	l = openLog(t, dir, cfg)
	assert.Equal(t, int64(12), l.EndOffset(), "recovery keeps the 12 batches before the corrupt one and nothing from it on")
	assert.Len(t, readAll(t, l), 12)
}

func TestCompactionKeepsTheLatestValueOfEveryKey(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir, log.Config{CleanupPolicy: "compact", SegmentBytes: 1024})
	now := time.Now()
	latest := map[string]int64{}
	for round := range 10 {
		for _, k := range []string{"apple", "banana", "cherry"} {
			off := appendBatch(t, l, log.EncodeBatch(keyed(k, fmt.Sprintf("%s-%d", k, round), now)))
			latest[k] = off
		}
	}
	// A record too big to share a segment rolls a new active segment, so
	// every keyed record above is in a sealed segment.
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 900)}))
	end := l.EndOffset()

	st, err := l.Compact(now)
	require.NoError(t, err)
	assert.Positive(t, st.RecordsRemoved)
	assert.Less(t, st.BytesAfter, st.BytesBefore)

	seen := map[string][]int64{}
	for _, r := range readAll(t, l) {
		if r.Key != nil {
			seen[string(r.Key)] = append(seen[string(r.Key)], r.Offset)
		}
	}
	for k, off := range latest {
		assert.Equal(t, []int64{off}, seen[k], "key %s: only its latest record remains, at its original offset", k)
	}
	assert.Equal(t, end, l.EndOffset(), "compaction never changes the log end offset")
	assert.Equal(t, int64(0), l.StartOffset(), "compaction never moves the log start offset")
	for offset := int64(0); offset < end; offset++ {
		_, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d) lands on the next record left when compaction removed this one", offset)
	}
}

func TestCompactionRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512, DeleteRetention: 24 * time.Hour})
	now := time.Now()
	appendBatch(t, l, log.EncodeBatch(keyed("old", "v", now.Add(-72*time.Hour))))
	appendBatch(t, l, log.EncodeBatch(keyed("old", "", now.Add(-48*time.Hour)))) // tombstone, two days old
	appendBatch(t, l, log.EncodeBatch(keyed("new", "v", now.Add(-time.Hour))))
	appendBatch(t, l, log.EncodeBatch(keyed("new", "", now.Add(-time.Minute)))) // tombstone, a minute old
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))

	keys := compactKeyed(t, l, now, func(r log.Record) string { return fmt.Sprintf("%s=%q", r.Key, r.Value) })
	assert.Equal(t, []string{`new=""`}, keys,
		"the two-day-old tombstone is gone with its key; the fresh tombstone stays so consumers can see the delete")
}

func TestCompactionRewritesCompressedBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512})
	now := time.Now()
	appendBatch(t, l, gzipBatch(t, now, keyed("a", "1", now), keyed("b", "1", now), keyed("a", "2", now)))
	appendBatch(t, l, log.EncodeBatch(keyed("b", "2", now)))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))

	got := compactKeyed(t, l, now, func(r log.Record) string { return fmt.Sprintf("%d:%s=%s", r.Offset, r.Key, r.Value) })
	assert.Equal(t, []string{"2:a=2", "3:b=2"}, got, "inside a gzip batch too, only each key's latest record stays")
}

// gzipBatch builds a batch whose records are gzip-compressed, as a producer
// with compression.type=gzip sends them.
func gzipBatch(t *testing.T, ts time.Time, recs ...log.Record) []byte {
	t.Helper()
	plain := log.EncodeBatch(recs...)
	var rb kmsg.RecordBatch
	require.NoError(t, rb.ReadFrom(plain))
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(rb.Records)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	rb.Records = buf.Bytes()
	rb.Attributes |= 1 // gzip
	rb.Length = int32(49 + len(rb.Records))
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func TestCompactionSurvivesAReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{CleanupPolicy: "compact", SegmentBytes: 512}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	now := time.Now()
	for i := range 20 {
		appendBatch(t, l, log.EncodeBatch(keyed(fmt.Sprint(i%3), fmt.Sprint(i), now)))
	}
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	_, err = l.Compact(now)
	require.NoError(t, err)
	want := readAll(t, l)
	require.NoError(t, l.Close())

	l = openLog(t, dir, cfg)
	assert.Equal(t, want, readAll(t, l), "a compacted log reads the same after reopening")
}

func TestACompactedLogIgnoresRetention(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512, RetentionBytes: 1})
	for range 10 {
		appendBatch(t, l, log.EncodeBatch(log.Record{Key: []byte("k"), Value: make([]byte, 300), Timestamp: time.Now()}))
	}
	deleted, err := l.EnforceRetention(time.Now())
	require.NoError(t, err)
	assert.Zero(t, deleted, "cleanup.policy=compact deletes by key, never by size or age")
}

func TestTheCleanerCompactsInTheBackground(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512})
	now := time.Now()
	for i := range 30 {
		appendBatch(t, l, log.EncodeBatch(keyed("same-key", fmt.Sprint(i), now)))
	}
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	before := l.Size()

	c := log.NewCleaner(10 * time.Millisecond)
	c.Add(l)
	c.Start()
	defer c.Stop()
	// A generous deadline: the cleaner ticks every 10 ms, but a loaded
	// machine may not run it for a while.
	require.Eventually(t, func() bool { return l.Size() < before }, 10*time.Second, 10*time.Millisecond,
		"the cleaner should compact the log within 10 s; it is still %d bytes", before)
}

func TestCompactionKeepsRecordsWithoutAKeyAndEmptyValues(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512})
	now := time.Now().Add(-72 * time.Hour) // old enough for any tombstone to go
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: []byte("no key")}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now}))                                    // no key, no value
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Key: []byte("k"), Value: []byte{}})) // empty, not null
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Key: []byte{}, Value: []byte("empty key")}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))

	_, err := l.Compact(time.Now())
	require.NoError(t, err)
	recs := readAll(t, l)
	require.Len(t, recs, 6, "compaction judges records by key: with no key, with an empty (not null) key, or with an empty (not null) value, a record stays")
	assert.Equal(t, []byte{}, recs[2].Value, "an empty value is a value, not a tombstone")
	assert.Equal(t, []byte{}, recs[3].Key, "an empty key is a key, and not the same as no key")
}

func TestReadAfterCompactionFindsTheNextRecordInTheNextSegment(t *testing.T) {
	// Compaction empties the second half of the first segment, so a read
	// there must go on to the second segment's first record, not skip into
	// it. Both segments hold several index entries.
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 2048, IndexIntervalBytes: 100})
	now := time.Now()
	n := int64(0) // records in the first segment
	for l.Segments() == 1 {
		n = appendBatch(t, l, log.EncodeBatch(keyed(fmt.Sprintf("k%d", n), "first", now))) + 1
	}
	n-- // the last append rolled the second segment
	for i := n / 2; i < n; i++ {
		appendBatch(t, l, log.EncodeBatch(keyed(fmt.Sprintf("k%d", i), "again", now)))
	}
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 2000)}))
	_, err := l.Compact(now)
	require.NoError(t, err)

	for offset := int64(0); offset < l.EndOffset(); offset++ {
		raw, err := l.Read(offset, 1)
		require.NoError(t, err)
		got, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		require.NotEmpty(t, got, "Read(%d)", offset)
		want := offset // the first record left at or after offset
		if offset >= n/2 && offset < n {
			want = n // compacted away; the second segment starts at n
		}
		assert.GreaterOrEqual(t, got[len(got)-1].Offset, offset, "Read(%d) returned a batch that ends before it", offset)
		assert.LessOrEqual(t, got[0].Offset, want, "Read(%d) skipped offset %d, the next record left", offset, want)
	}
}

func TestCheckBatchRefusesBytesOutsideItsLength(t *testing.T) {
	good := log.EncodeBatch(keyed("k", "v", time.Now()))
	require.NoError(t, log.CheckBatch(good), "a batch as a producer makes it")
	// The CRC of each is made good over all the bytes given, so that only
	// the length field can tell that they are not one batch.
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	err := log.CheckBatch(recrc(append(bytes.Clone(good), 0, 0, 0, 0)))
	assert.True(t, errors.Is(err, kerr.CorruptMessage), "four bytes more than the length field says: want CORRUPT_MESSAGE, got %v", err)
	err = log.CheckBatch(recrc(bytes.Clone(good[:len(good)-1])))
	assert.True(t, errors.Is(err, kerr.CorruptMessage), "one byte less than the length field says: want CORRUPT_MESSAGE, got %v", err)
}

func TestTheCRCLeavesOutWhatTheBrokerStamps(t *testing.T) {
	// The base offset and the partition leader epoch are written by the
	// broker after the producer computed the CRC: they are before the
	// attributes, outside what the CRC-32C covers.
	b := log.EncodeBatch(keyed("k", "v", time.Now()))
	binary.BigEndian.PutUint64(b[0:], 123456)
	binary.BigEndian.PutUint32(b[12:], 7)
	assert.NoError(t, log.CheckBatch(b), "a batch with its base offset and leader epoch stamped keeps a valid CRC")
	b[21] ^= 0x10 // the attributes are covered: this claims a compression codec
	assert.True(t, errors.Is(log.CheckBatch(b), kerr.CorruptMessage), "the attributes are covered by the CRC")
}

func TestABatchEmptiedByCompactionIsWellFormed(t *testing.T) {
	// Kafka's cleaner keeps the emptied last batch of a producer, to keep
	// its sequence numbers (KIP-98): a batch with no records that still
	// spans its offsets is one a broker may store and a consumer may fetch.
	b := log.EncodeBatch(keyed("a", "1", time.Now()), keyed("b", "2", time.Now()))
	binary.BigEndian.PutUint32(b[57:], 0)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	assert.NoError(t, log.CheckBatch(b), "0 records, last offset delta 1")
}

func TestABatchMaySpanMoreOffsetsThanItHasRecords(t *testing.T) {
	// Compaction leaves such batches: it removes records but keeps the
	// batch's last offset delta, so the batch still ends where it ended.
	l := openLog(t, t.TempDir(), log.Config{})
	now := time.UnixMilli(1_700_000_000_000)
	b := log.EncodeBatch(log.Record{Offset: 0, Timestamp: now, Key: []byte("a"), Value: []byte("1")},
		log.Record{Offset: 4, Timestamp: now, Key: []byte("b"), Value: []byte("2")})
	require.NoError(t, log.CheckBatch(b), "2 records spanning offsets 0 to 4")
	assert.Equal(t, int64(0), appendBatch(t, l, b))
	assert.Equal(t, int64(5), l.EndOffset(), "the batch takes 5 offsets for its 2 records")
	assert.Equal(t, int64(5), appendBatch(t, l, log.EncodeBatch(keyed("c", "3", now))))
	var offsets []int64
	for _, r := range readAll(t, l) {
		offsets = append(offsets, r.Offset)
	}
	assert.Equal(t, []int64{0, 4, 5}, offsets)
}

func TestCompactionKeepsATombstoneUntilDeleteRetentionHasPassed(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512, DeleteRetention: 24 * time.Hour})
	appendBatch(t, l, log.EncodeBatch(keyed("exactly", "", now.Add(-24*time.Hour))))                // tombstone, exactly delete.retention.ms old
	appendBatch(t, l, log.EncodeBatch(keyed("older", "", now.Add(-24*time.Hour-time.Millisecond)))) // one millisecond older
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))

	keys := compactKeyed(t, l, now, func(r log.Record) string { return string(r.Key) })
	assert.Equal(t, []string{"exactly"}, keys, "a tombstone goes once it is older than delete.retention.ms, not before")
}

func TestCompactionKeepsTheLatestValueForeverAndNeverUndeletes(t *testing.T) {
	// A compacted topic is a table's change log: the latest value of a key
	// is the table's row, however old it is; and once the latest record of
	// a key is a tombstone, no older value of it may come back.
	now := time.UnixMilli(1_700_000_000_000)
	l := openLog(t, t.TempDir(), log.Config{CleanupPolicy: "compact", SegmentBytes: 512, DeleteRetention: time.Hour})
	appendBatch(t, l, log.EncodeBatch(keyed("row", "ancient", now.Add(-365*24*time.Hour))))
	appendBatch(t, l, log.EncodeBatch(keyed("gone", "v1", now.Add(-2*time.Hour))))
	appendBatch(t, l, log.EncodeBatch(keyed("gone", "", now.Add(-time.Minute)))) // tombstone, recent
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))
	appendBatch(t, l, log.EncodeBatch(log.Record{Timestamp: now, Value: make([]byte, 600)}))

	got := compactKeyed(t, l, now, func(r log.Record) string { return fmt.Sprintf("%d:%s=%q", r.Offset, r.Key, r.Value) })
	assert.Equal(t, []string{`0:row="ancient"`, `2:gone=""`}, got,
		"the year-old latest value stays; the deleted key keeps only its tombstone")
}
