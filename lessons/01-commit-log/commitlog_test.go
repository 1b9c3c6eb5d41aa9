// The tests of lesson 01, the commit log. They are the lesson's
// specification: each one names the behaviour it checks, and fails with a
// message that says what the log did instead.
package commitlog_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
)

// openLog opens a log in a fresh directory and closes it when the test ends.
func openLog(t *testing.T, cfg log.Config) *log.Log {
	t.Helper()
	return reopen(t, t.TempDir(), cfg)
}

func reopen(t *testing.T, dir string, cfg log.Config) *log.Log {
	t.Helper()
	l, err := log.Open(dir, cfg)
	require.NoError(t, err, "log.Open(%s)", dir)
	t.Cleanup(func() { l.Close() })
	return l
}

// batch makes a batch of n records of valueSize bytes each, stamped ts.
func batch(n, valueSize int, ts time.Time) []byte {
	recs := make([]log.Record, n)
	for i := range recs {
		v := make([]byte, valueSize)
		copy(v, fmt.Sprintf("record %d", i))
		recs[i] = log.Record{Timestamp: ts, Value: v}
	}
	return log.EncodeBatch(recs...)
}

func appendBatch(t *testing.T, l *log.Log, b []byte) int64 {
	t.Helper()
	off, err := l.Append(b)
	require.NoError(t, err, "Append")
	return off
}

// segmentFiles lists the names of the files with ext in dir.
func segmentFiles(t *testing.T, dir, ext string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+ext))
	require.NoError(t, err)
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

func TestAppendReturnsConsecutiveOffsets(t *testing.T) {
	l := openLog(t, log.Config{})
	now := time.Now()
	assert.Equal(t, int64(0), appendBatch(t, l, batch(1, 10, now)), "the first batch starts at offset 0")
	assert.Equal(t, int64(1), appendBatch(t, l, batch(2, 10, now)), "the second batch starts after the first's one record")
	assert.Equal(t, int64(3), appendBatch(t, l, batch(5, 10, now)), "the third batch starts after 1+2 records")
	assert.Equal(t, int64(0), l.StartOffset(), "log start offset")
	assert.Equal(t, int64(8), l.EndOffset(), "log end offset: the offset the next record gets")
}

func TestReadFindsTheBatchHoldingEachOffset(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  log.Config
	}{
		// A small index interval puts several index entries in the segment,
		// so the lookup has something to search.
		{"one segment, an index entry every few batches", log.Config{IndexIntervalBytes: 256}},
		// An interval of one byte indexes every batch, the first one too.
		{"several segments, every batch indexed", log.Config{IndexIntervalBytes: 1, SegmentBytes: 2048}},
		{"one-record batches, every one indexed", log.Config{IndexIntervalBytes: 1, SegmentBytes: 2048}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			records := 3
			if tc.name == "one-record batches, every one indexed" {
				records = 1
			}
			l := openLog(t, tc.cfg)
			for range 40 {
				appendBatch(t, l, batch(records, 50, time.Now()))
			}
			for offset := int64(0); offset < l.EndOffset(); offset++ {
				raw, err := l.Read(offset, 1)
				require.NoError(t, err, "Read(%d)", offset)
				recs, err := log.DecodeRecords(raw)
				require.NoError(t, err, "decoding what Read(%d) returned", offset)
				require.Len(t, recs, records, "Read(%d, 1 byte) returns exactly one whole batch", offset)
				assert.LessOrEqual(t, recs[0].Offset, offset, "Read(%d): the batch starts at or before the offset", offset)
				assert.GreaterOrEqual(t, recs[records-1].Offset, offset, "Read(%d): the batch ends at or after the offset", offset)
			}
		})
	}
}

func TestReadReturnsBatchesUpToMaxBytes(t *testing.T) {
	l := openLog(t, log.Config{})
	b := batch(1, 100, time.Now())
	size := int64(len(b))
	for range 10 {
		appendBatch(t, l, batch(1, 100, time.Now()))
	}
	raw, err := l.Read(2, 3*size+size/2)
	require.NoError(t, err)
	assert.Len(t, raw, int(3*size), "3.5 batches' worth of bytes returns 3 whole batches")
	raw, err = l.Read(0, 1<<20)
	require.NoError(t, err)
	assert.Len(t, raw, int(10*size), "a large maxBytes returns every batch")
}

func TestReadAtTheEndOffsetReturnsNothing(t *testing.T) {
	l := openLog(t, log.Config{})
	appendBatch(t, l, batch(2, 10, time.Now()))
	raw, err := l.Read(l.EndOffset(), 1<<20)
	require.NoError(t, err, "reading at the log end offset is how a consumer waits for new data; it is not an error")
	assert.Empty(t, raw)
}

func TestReadOutsideTheLogIsOffsetOutOfRange(t *testing.T) {
	l := openLog(t, log.Config{})
	appendBatch(t, l, batch(2, 10, time.Now()))
	for _, offset := range []int64{-1, 3, 1000} {
		_, err := l.Read(offset, 1<<20)
		require.Error(t, err, "Read(%d) on a log of offsets 0 and 1", offset)
		assert.True(t, errors.Is(err, kerr.OffsetOutOfRange), "Read(%d): want OFFSET_OUT_OF_RANGE, got %v", offset, err)
		assert.Contains(t, err.Error(), "log end offset 2", "the error says which offsets the log holds")
	}
}

func TestSegmentsRollAtSegmentBytes(t *testing.T) {
	dir := t.TempDir()
	const segmentBytes = 4096
	l := reopen(t, dir, log.Config{SegmentBytes: segmentBytes})
	var bases []int64
	for range 20 {
		bases = append(bases, appendBatch(t, l, batch(1, 1000, time.Now())))
	}
	files := segmentFiles(t, dir, ".log")
	require.Greater(t, len(files), 1, "20 KiB of batches with segment.bytes=4096 needs several segments, got files %v", files)
	assert.Equal(t, len(files), l.Segments())
	for _, name := range files {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.LessOrEqual(t, st.Size(), int64(segmentBytes), "segment %s is larger than segment.bytes", name)
		var base int64
		_, err = fmt.Sscanf(name, "%020d.log", &base)
		require.NoError(t, err, "segment files are named by their base offset, 20 digits: %s", name)
		assert.Contains(t, bases, base, "segment %s must start at a batch's base offset", name)
	}
	assert.Len(t, segmentFiles(t, dir, ".index"), len(files), "every segment has an offset index")
}

func TestTheOffsetIndexIsSparse(t *testing.T) {
	dir := t.TempDir()
	const interval = 4096
	l := reopen(t, dir, log.Config{IndexIntervalBytes: interval})
	for range 400 {
		appendBatch(t, l, batch(1, 1000, time.Now()))
	}
	size := l.Size()
	// The active segment's index is written when the segment is sealed:
	// by a roll, or here by Close.
	require.NoError(t, l.Close())
	st, err := os.Stat(filepath.Join(dir, fmt.Sprintf("%020d.index", 0)))
	require.NoError(t, err)
	entries := st.Size() / 8
	// One entry per index.interval.bytes of batches, give or take one batch.
	perEntry := size / max(entries, 1)
	assert.InDelta(t, interval, perEntry, 1100, "want one 8-byte index entry per ~%d bytes of log, got %d entries for %d bytes", interval, entries, size)
}

func TestReopenKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 2048, IndexIntervalBytes: 512}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 30 {
		appendBatch(t, l, batch(2, 200, time.Now()))
	}
	want, err := l.Read(0, 1<<30)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l = reopen(t, dir, cfg)
	assert.Equal(t, int64(60), l.EndOffset(), "log end offset after reopening")
	got, err := l.Read(0, 1<<30)
	require.NoError(t, err)
	assert.Equal(t, want[:len(got)], got, "the first segment reads back the same after reopening")
	for offset := int64(0); offset < 60; offset++ {
		raw, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d) after reopening", offset)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		require.Len(t, recs, 2, "Read(%d, 1 byte) after reopening returns one whole batch", offset)
		assert.True(t, recs[0].Offset <= offset && offset <= recs[1].Offset, "Read(%d) after reopening returned the batch of offsets %d to %d", offset, recs[0].Offset, recs[1].Offset)
	}
	assert.Equal(t, int64(60), appendBatch(t, l, batch(1, 10, time.Now())), "appends continue where the log ended")
}

func TestRecoveryCutsATornTail(t *testing.T) {
	torn := batch(1, 500, time.Now())
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"half a batch", torn[:len(torn)/2]},
		{"one byte", torn[:1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := log.Config{SegmentBytes: 8192}
			l, err := log.Open(dir, cfg)
			require.NoError(t, err)
			for range 30 {
				appendBatch(t, l, batch(1, 500, time.Now()))
			}
			end := l.EndOffset()
			require.NoError(t, l.Close())

			// A crash in the middle of a write leaves part of a batch at the end.
			files := segmentFiles(t, dir, ".log")
			last := filepath.Join(dir, files[len(files)-1])
			good := fileSize(t, last)
			f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.Write(tc.tail)
			require.NoError(t, err)
			require.NoError(t, f.Close())

			l = reopen(t, dir, cfg)
			assert.Equal(t, end, l.EndOffset(), "recovery keeps every whole batch and drops the torn one")
			assert.Equal(t, int64(len(tc.tail)), l.Recovered().TruncatedBytes, "recovery cuts exactly the torn bytes")
			assert.Equal(t, good, fileSize(t, last), "the torn bytes are cut from the file")
			for offset := int64(0); offset < end; offset++ {
				_, err := l.Read(offset, 1)
				require.NoError(t, err, "Read(%d) after recovery", offset)
			}
			assert.Equal(t, end, appendBatch(t, l, batch(1, 10, time.Now())), "the next append takes the torn batch's place")
			raw, err := l.Read(end, 1)
			require.NoError(t, err, "Read(%d), the batch appended after recovery", end)
			recs, err := log.DecodeRecords(raw)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			assert.Equal(t, end, recs[0].Offset, "the batch appended after recovery reads back")
			assert.Equal(t, fileSize(t, last), good+int64(len(batch(1, 10, time.Now()))), "it follows the last whole batch in the file, with no hole")
		})
	}
}

func TestRecoveryScansOnlyTheLastSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 4096}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 100 {
		appendBatch(t, l, batch(1, 500, time.Now()))
	}
	require.NoError(t, l.Close())
	files := segmentFiles(t, dir, ".log")
	st, err := os.Stat(filepath.Join(dir, files[len(files)-1]))
	require.NoError(t, err)

	l = reopen(t, dir, cfg)
	r := l.Recovered()
	assert.Equal(t, len(files), r.Segments)
	assert.Equal(t, st.Size(), r.ScannedBytes, "recovery reads the last segment, and only it, of %d", len(files))
	assert.Zero(t, r.TruncatedBytes, "a cleanly closed log loses nothing")
}

func TestRetentionBytesDeletesTheOldestSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 4096, RetentionBytes: 8192}
	l := reopen(t, dir, cfg)
	for range 40 {
		appendBatch(t, l, batch(1, 1000, time.Now()))
	}
	before := l.Segments()
	deleted, err := l.EnforceRetention(time.Now())
	require.NoError(t, err)
	assert.Positive(t, deleted, "a 40 KiB log with retention.bytes=8192 must lose segments")
	assert.Equal(t, before-deleted, l.Segments())
	assert.Equal(t, l.Segments(), len(segmentFiles(t, dir, ".log")), "deleted segments' files are gone")
	assert.LessOrEqual(t, l.Size(), int64(8192+4096), "at most retention.bytes plus one segment remain")
	assert.Positive(t, l.StartOffset(), "the log start offset moved forward")
	_, err = l.Read(l.StartOffset()-1, 1)
	assert.True(t, errors.Is(err, kerr.OffsetOutOfRange), "deleted offsets are out of range, got %v", err)
	_, err = l.Read(l.StartOffset(), 1)
	assert.NoError(t, err, "the new log start offset is readable")
}

func TestRetentionMsDeletesSegmentsWhoseNewestRecordIsOld(t *testing.T) {
	cfg := log.Config{SegmentBytes: 4096, Retention: time.Hour}
	l := openLog(t, cfg)
	now := time.Now()
	for range 12 { // three segments of old records
		appendBatch(t, l, batch(1, 1000, now.Add(-2*time.Hour)))
	}
	firstNew := appendBatch(t, l, batch(1, 1000, now.Add(-time.Minute)))
	for range 12 {
		appendBatch(t, l, batch(1, 1000, now.Add(-time.Minute)))
	}
	deleted, err := l.EnforceRetention(now)
	require.NoError(t, err)
	assert.Positive(t, deleted)
	assert.Equal(t, firstNew, l.StartOffset(), "every segment of two-hour-old records goes, none of the recent ones")
}

func TestRetentionKeepsTheActiveSegment(t *testing.T) {
	l := openLog(t, log.Config{Retention: time.Millisecond, RetentionBytes: 1})
	appendBatch(t, l, batch(1, 100, time.Now().Add(-time.Hour)))
	_, err := l.EnforceRetention(time.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, l.Segments(), "the active segment is never deleted")
	assert.Equal(t, int64(1), l.EndOffset())
}

func TestConcurrentReadersSeeWholeBatches(t *testing.T) {
	l := openLog(t, log.Config{SegmentBytes: 16 << 10, IndexIntervalBytes: 1024})
	const writes = 500
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for offset := int64(0); offset < writes; {
				raw, err := l.Read(offset, 4096)
				if err != nil {
					errs <- err
					return
				}
				recs, err := log.DecodeRecords(raw)
				if err != nil {
					errs <- fmt.Errorf("offset %d: %w", offset, err)
					return
				}
				if len(recs) > 0 {
					offset = recs[len(recs)-1].Offset + 1
				}
			}
		}()
	}
	for range writes {
		appendBatch(t, l, batch(1, 300, time.Now()))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// indexEntry is one entry of a .index file: the offset relative to the
// segment's base offset, and the byte position of its batch in the segment.
type indexEntry struct{ rel, position uint32 }

// readIndexFile decodes a .index file, 8 bytes an entry, big-endian, as
// Kafka writes it (and as `od -t u4 --endian=big` shows it).
func readIndexFile(t *testing.T, path string) []indexEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Zero(t, len(b)%8, "%s holds whole 8-byte entries", path)
	var out []indexEntry
	for i := 0; i < len(b); i += 8 {
		out = append(out, indexEntry{binary.BigEndian.Uint32(b[i:]), binary.BigEndian.Uint32(b[i+4:])})
	}
	return out
}

// segmentBase parses a segment file's name, its base offset in 20 digits.
func segmentBase(t *testing.T, name string) int64 {
	t.Helper()
	var base int64
	_, err := fmt.Sscanf(name, "%020d", &base)
	require.NoError(t, err, "segment file name %s", name)
	return base
}

// fileSize is the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

// damage overwrites the bytes of the file at path at position with b, as a
// failing disk or a stray write would.
func damage(t *testing.T, path string, position int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteAt(b, position)
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func TestReadScansFromTheIndexEntryNotFromTheSegmentStart(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 8192, IndexIntervalBytes: 512}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 60 {
		appendBatch(t, l, batch(3, 100, time.Now()))
	}
	require.NoError(t, l.Close())
	require.Greater(t, len(segmentFiles(t, dir, ".log")), 1, "the test needs a sealed first segment")

	// The first segment is sealed: Open trusts it and its index. Zero every
	// byte before the batch an index entry names. A read of that batch's
	// offsets starts at the entry's position and never touches the damage;
	// a read that starts earlier walks into it.
	entries := readIndexFile(t, filepath.Join(dir, fmt.Sprintf("%020d.index", 0)))
	require.GreaterOrEqual(t, len(entries), 4, "index.interval.bytes=512 gives the sealed segment several index entries")
	for _, k := range []int{0, 2} {
		e := entries[k]
		require.Positive(t, e.position, "index entry %d names a batch after the first", k)
		damage(t, filepath.Join(dir, fmt.Sprintf("%020d.log", 0)), 0, make([]byte, e.position))

		l = reopen(t, dir, cfg)
		for offset := int64(e.rel); offset < int64(e.rel)+3; offset++ {
			raw, err := l.Read(offset, 1)
			require.NoError(t, err, "Read(%d): index entry %d, (%d, byte %d), says where to start; the damaged bytes before it are not needed", offset, k, e.rel, e.position)
			recs, err := log.DecodeRecords(raw)
			require.NoError(t, err)
			require.NotEmpty(t, recs)
			assert.Equal(t, int64(e.rel), recs[0].Offset, "Read(%d) returns the batch index entry %d names", offset, k)
		}
		_, err = l.Read(0, 1)
		assert.True(t, errors.Is(err, kerr.CorruptMessage), "Read(0) needs the damaged bytes and must say so (CORRUPT_MESSAGE), got %v", err)
		require.NoError(t, l.Close())
	}
}

func TestRollingSealsTheSegment(t *testing.T) {
	dir := t.TempDir()
	const interval = 1024
	l := reopen(t, dir, log.Config{SegmentBytes: 8192, IndexIntervalBytes: interval})
	t0 := time.UnixMilli(1_700_000_000_000)
	for i := range 40 { // offset i has timestamp t0 + i ms
		appendBatch(t, l, batch(1, 500, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	files := segmentFiles(t, dir, ".log")
	require.Greater(t, len(files), 2, "40 batches of ~570 bytes with segment.bytes=8192 roll several times")
	// While the log is still open, every rolled segment has been sealed:
	// its indexes are on disk, the time index ending with its newest timestamp.
	for i, name := range files[:len(files)-1] {
		base := segmentBase(t, name)
		next := segmentBase(t, files[i+1])
		size := fileSize(t, filepath.Join(dir, name))
		entries := readIndexFile(t, filepath.Join(dir, fmt.Sprintf("%020d.index", base)))
		assert.Len(t, entries, int(size/interval), "sealed segment %s (%d bytes): one index entry on disk per %d bytes", name, size, interval)
		ti, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%020d.timeindex", base)))
		require.NoError(t, err)
		require.True(t, len(ti) >= 12 && len(ti)%12 == 0, "sealed segment %s: its .timeindex holds whole 12-byte entries, %d bytes", name, len(ti))
		newest := int64(binary.BigEndian.Uint64(ti[len(ti)-12:]))
		assert.Equal(t, t0.UnixMilli()+next-1, newest, "sealed segment %s: the last time-index entry is its newest timestamp, that of offset %d", name, next-1)
	}
}

func TestSegmentsFillUpToSegmentBytesExactly(t *testing.T) {
	dir := t.TempDir()
	size := int64(len(batch(1, 200, time.Now())))
	l := reopen(t, dir, log.Config{SegmentBytes: 4 * size})
	for range 10 {
		appendBatch(t, l, batch(1, 200, time.Now()))
	}
	files := segmentFiles(t, dir, ".log")
	require.Len(t, files, 3, "10 batches, exactly 4 to a segment: segments of 4, 4 and 2")
	for i, want := range []int64{4 * size, 4 * size, 2 * size} {
		assert.Equal(t, want, fileSize(t, filepath.Join(dir, files[i])), "segment %s: a batch that exactly fills segment.bytes still fits", files[i])
		assert.Equal(t, int64(4*i), segmentBase(t, files[i]), "segment %d starts at the offset of its first batch", i)
	}
}

func TestABatchLargerThanSegmentBytesGetsASegmentOfItsOwn(t *testing.T) {
	dir := t.TempDir()
	l := reopen(t, dir, log.Config{SegmentBytes: 512})
	appendBatch(t, l, batch(1, 1000, time.Now()))
	assert.Equal(t, []string{fmt.Sprintf("%020d.log", 0)}, segmentFiles(t, dir, ".log"),
		"an empty segment takes any batch: rolling it would leave an empty segment behind")
	appendBatch(t, l, batch(1, 1000, time.Now()))
	assert.Equal(t, []string{fmt.Sprintf("%020d.log", 0), fmt.Sprintf("%020d.log", 1)}, segmentFiles(t, dir, ".log"))
	assert.Equal(t, 2, l.Segments())
	for offset := int64(0); offset < 2; offset++ {
		raw, err := l.Read(offset, 1)
		require.NoError(t, err)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		assert.Equal(t, offset, recs[0].Offset)
	}
}

// spanning makes a batch of two records whose offsets are delta apart: a
// batch may span more offsets than it holds records (compaction leaves such
// batches), up to 2^31-1 of them.
func spanning(delta int64) []byte {
	now := time.Now()
	return log.EncodeBatch(log.Record{Offset: 0, Timestamp: now, Value: []byte("first")},
		log.Record{Offset: delta, Timestamp: now, Value: []byte("last")})
}

func TestSegmentsRollBeforeRelativeOffsetsOverflow32Bits(t *testing.T) {
	dir := t.TempDir()
	l := reopen(t, dir, log.Config{})
	const span = 1<<31 - 1
	assert.Equal(t, int64(0), appendBatch(t, l, spanning(span)), "offsets 0 to 2^31-1")
	assert.Equal(t, int64(1<<31), appendBatch(t, l, spanning(span)), "offsets 2^31 to 2^32-1")
	require.Equal(t, 1, l.Segments(), "offset 2^32-1 is 2^32-1 past the segment's base: it still fits the index's uint32")
	assert.Equal(t, int64(1<<32), appendBatch(t, l, batch(1, 10, time.Now())))
	require.Equal(t, 2, l.Segments(), "offset 2^32 is 2^32 past the base: it no longer fits a uint32, so the log rolls first")
	assert.Equal(t, []string{fmt.Sprintf("%020d.log", 0), fmt.Sprintf("%020d.log", int64(1<<32))}, segmentFiles(t, dir, ".log"))
	for range 3 {
		appendBatch(t, l, batch(1, 10, time.Now()))
	}
	assert.Equal(t, 2, l.Segments(), "offsets close to the new segment's base offset fit: no roll")
	for _, offset := range []int64{0, 1 << 30, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<32 + 3} {
		raw, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d)", offset)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		assert.LessOrEqual(t, recs[0].Offset, offset, "Read(%d) returns the batch that holds it", offset)
		assert.GreaterOrEqual(t, recs[len(recs)-1].Offset, offset, "Read(%d) returns the batch that holds it", offset)
	}
}

// closedLog writes n batches of one record into a log with one segment,
// closes it, and returns the segment's path and where each batch starts.
func closedLog(t *testing.T, dir string, n int) (string, []int64) {
	t.Helper()
	l, err := log.Open(dir, log.Config{})
	require.NoError(t, err)
	var positions []int64
	for range n {
		positions = append(positions, l.Size())
		appendBatch(t, l, batch(1, 100, time.Now()))
	}
	require.NoError(t, l.Close())
	return filepath.Join(dir, fmt.Sprintf("%020d.log", 0)), positions
}

func TestRecoveryCutsACorruptBatchAndEverythingAfterIt(t *testing.T) {
	dir := t.TempDir()
	path, positions := closedLog(t, dir, 10)
	size := fileSize(t, path)
	// One bit of batch 6's last record flipped: the file is whole, but the
	// batch is not what was written, and its CRC-32C says so.
	damage(t, path, positions[7]-1, []byte{'!'})

	l := reopen(t, dir, log.Config{})
	assert.Equal(t, int64(6), l.EndOffset(), "recovery keeps the 6 batches before the corrupt one and nothing from it on")
	assert.Equal(t, size-positions[6], l.Recovered().TruncatedBytes, "recovery cuts from the corrupt batch to the end")
	assert.Equal(t, positions[6], fileSize(t, path), "the segment file is cut there too")
	assert.Equal(t, int64(6), appendBatch(t, l, batch(1, 10, time.Now())), "the next append gets the corrupt batch's offset")
}

func TestRecoveryCutsABatchWhoseOffsetsDoNotFollowOn(t *testing.T) {
	// The base offset is outside the CRC (the log stamps it), so a batch
	// with a wrong base offset passes its CRC check: recovery must check the
	// offsets themselves. In the active segment they follow on exactly.
	for _, tc := range []struct {
		name string
		base int64
	}{
		{"a gap: batch 6 says offset 9", 9},
		{"a repeat: batch 6 says offset 5", 5},
		{"going back: batch 6 says offset 0", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, positions := closedLog(t, dir, 10)
			size := fileSize(t, path)
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(tc.base))
			damage(t, path, positions[6], b[:])

			l := reopen(t, dir, log.Config{})
			assert.Equal(t, int64(6), l.EndOffset(), "recovery keeps the batches whose offsets follow on, 0 to 5")
			assert.Equal(t, size-positions[6], l.Recovered().TruncatedBytes, "recovery cuts from the batch whose offset does not follow on")
			_, err := l.Read(7, 1)
			assert.True(t, errors.Is(err, kerr.OffsetOutOfRange), "offset 7 is past the log end offset now, got %v", err)
		})
	}
}

func TestRecoveryRebuildsAMissingIndexOfASealedSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 4096, IndexIntervalBytes: 512}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 30 {
		appendBatch(t, l, batch(2, 200, time.Now()))
	}
	want, err := l.Read(0, 1<<30)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	index := filepath.Join(dir, fmt.Sprintf("%020d.index", 0))
	entries := readIndexFile(t, index)
	require.NoError(t, os.Remove(index))
	require.NoError(t, os.Remove(filepath.Join(dir, fmt.Sprintf("%020d.timeindex", 0))))

	l = reopen(t, dir, cfg)
	got, err := l.Read(0, 1<<30)
	require.NoError(t, err)
	assert.Equal(t, want, got, "the sealed segment reads the same with its index rebuilt")
	for offset := int64(0); offset < l.EndOffset(); offset++ {
		_, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d)", offset)
	}
	require.NoError(t, l.Close())
	assert.Equal(t, entries, readIndexFile(t, index), "the rebuilt index is the index the segment had")
}

func TestRetentionBytesKeepsAtLeastRetentionBytes(t *testing.T) {
	size := int64(len(batch(1, 200, time.Now())))
	// 18 batches, 4 to a segment: segments of 4, 4, 4, 4 and 2 batches.
	for _, tc := range []struct {
		retentionBytes int64
		deleted        int
		why            string
	}{
		{6 * size, 3, "the last two segments hold exactly retention.bytes: everything before them goes"},
		{6*size + 1, 2, "deleting the third segment would leave one byte less than retention.bytes"},
		{6*size - 1, 3, "deleting the fourth segment would leave less than retention.bytes"},
		{1, 4, "every segment but the active one goes: the active segment alone is more than one byte"},
	} {
		t.Run(fmt.Sprintf("retention.bytes=%d", tc.retentionBytes), func(t *testing.T) {
			l := openLog(t, log.Config{SegmentBytes: 4 * size, RetentionBytes: tc.retentionBytes})
			for range 18 {
				appendBatch(t, l, batch(1, 200, time.Now()))
			}
			require.Equal(t, 5, l.Segments())
			deleted, err := l.EnforceRetention(time.Now())
			require.NoError(t, err)
			assert.Equal(t, tc.deleted, deleted, tc.why)
			assert.Equal(t, int64(4*tc.deleted), l.StartOffset(), "the log start offset is the first remaining segment's base offset")
			assert.GreaterOrEqual(t, l.Size(), tc.retentionBytes, "retention.bytes is a floor for what stays, as well as a limit")
			deleted, err = l.EnforceRetention(time.Now())
			require.NoError(t, err)
			assert.Zero(t, deleted, "a second pass has nothing left to delete")
		})
	}
}

func TestRetentionMsGoesByEachSegmentsNewestRecord(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	size := int64(len(batch(1, 200, now)))
	l := openLog(t, log.Config{SegmentBytes: 4 * size, Retention: time.Hour})
	at := func(ago time.Duration) { appendBatch(t, l, batch(1, 200, now.Add(-ago))) }
	// Segment 0: its newest record is one millisecond past retention.ms.
	at(5 * time.Hour)
	at(4 * time.Hour)
	at(3 * time.Hour)
	at(time.Hour + time.Millisecond)
	// Segment 1: old records, but its newest is exactly retention.ms old.
	at(5 * time.Hour)
	at(4 * time.Hour)
	at(3 * time.Hour)
	at(time.Hour)
	// Segment 2: all old, but after a segment that stays.
	for range 4 {
		at(9 * time.Hour)
	}
	at(0) // the active segment
	require.Equal(t, 4, l.Segments())
	deleted, err := l.EnforceRetention(now)
	require.NoError(t, err)
	assert.Equal(t, 1, deleted, "only segment 0 goes: segment 1's newest record is not older than retention.ms, and deletion stops at the first segment that stays")
	assert.Equal(t, int64(4), l.StartOffset())
}

func TestRetentionAfterReopenReadsTheTimeIndex(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	size := int64(len(batch(1, 200, now)))
	cfg := log.Config{SegmentBytes: 4 * size, Retention: time.Hour}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 4 { // segment 0: two hours old
		appendBatch(t, l, batch(1, 200, now.Add(-2*time.Hour)))
	}
	for range 5 { // segment 1 and the active segment: recent
		appendBatch(t, l, batch(1, 200, now.Add(-time.Minute)))
	}
	require.NoError(t, l.Close())

	// After a restart the sealed segments' newest timestamps come from
	// their .timeindex files, not from the files' modification times,
	// which are recent: the segments were all written a moment ago.
	l = reopen(t, dir, cfg)
	deleted, err := l.EnforceRetention(now)
	require.NoError(t, err)
	assert.Equal(t, 1, deleted, "after reopening, the two-hour-old segment goes and the recent one stays")
	assert.Equal(t, int64(4), l.StartOffset())
}

func TestRetentionWithNoLimitsKeepsEverything(t *testing.T) {
	// A negative retention.ms or retention.bytes is no limit: -1 keeps
	// records forever, as Kafka's retention.ms=-1 does.
	size := int64(len(batch(1, 200, time.Now())))
	l := openLog(t, log.Config{SegmentBytes: 4 * size, Retention: -1, RetentionBytes: -1})
	for range 18 {
		appendBatch(t, l, batch(1, 200, time.Now().Add(-10*365*24*time.Hour)))
	}
	deleted, err := l.EnforceRetention(time.Now())
	require.NoError(t, err)
	assert.Zero(t, deleted, "records ten years old stay when retention.ms and retention.bytes are -1")
	assert.Equal(t, int64(0), l.StartOffset())
}
