// The tests of lesson 01, the commit log. They are the lesson's
// specification: each one names the behaviour it checks, and fails with a
// message that says what the log did instead.
package commitlog_test

import (
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
	// A small index interval puts several index entries in the segment, so
	// the lookup has something to search.
	l := openLog(t, log.Config{IndexIntervalBytes: 256})
	for range 40 {
		appendBatch(t, l, batch(3, 50, time.Now()))
	}
	for offset := int64(0); offset < l.EndOffset(); offset++ {
		raw, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d)", offset)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err, "decoding what Read(%d) returned", offset)
		require.Len(t, recs, 3, "Read(%d, 1 byte) returns exactly one whole batch", offset)
		assert.LessOrEqual(t, recs[0].Offset, offset, "Read(%d): the batch starts at or before the offset", offset)
		assert.GreaterOrEqual(t, recs[2].Offset, offset, "Read(%d): the batch ends at or after the offset", offset)
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
		_, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d) after reopening", offset)
	}
	assert.Equal(t, int64(60), appendBatch(t, l, batch(1, 10, time.Now())), "appends continue where the log ended")
}

func TestRecoveryCutsATornTail(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 8192}
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	for range 30 {
		appendBatch(t, l, batch(1, 500, time.Now()))
	}
	end := l.EndOffset()
	require.NoError(t, l.Close())

	// A crash in the middle of a write leaves half a batch at the end.
	files := segmentFiles(t, dir, ".log")
	last := filepath.Join(dir, files[len(files)-1])
	torn := batch(1, 500, time.Now())
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.Write(torn[:len(torn)/2])
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l = reopen(t, dir, cfg)
	assert.Equal(t, end, l.EndOffset(), "recovery keeps every whole batch and drops the torn one")
	assert.Equal(t, int64(len(torn)/2), l.Recovered().TruncatedBytes, "recovery cuts exactly the torn bytes")
	for offset := int64(0); offset < end; offset++ {
		_, err := l.Read(offset, 1)
		require.NoError(t, err, "Read(%d) after recovery", offset)
	}
	assert.Equal(t, end, appendBatch(t, l, batch(1, 10, time.Now())), "the next append takes the torn batch's place")
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
