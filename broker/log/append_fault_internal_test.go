package log

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An append that fails to write, halfway through its batches or halfway
// through one batch, writes none of them, and the log goes on as if it had
// not been tried: in memory, on disk and after a restart. The failures are
// made by writeAt, the one seam the package has for it.

// failWritesAfter makes every segment write after the first ok fail with
// ENOSPC, having written half its bytes first, as a disk that fills up in
// the middle of a write does. heal ends the failures. The tests that use it
// do not run in parallel: writeAt is the package's.
func failWritesAfter(t *testing.T, ok int) (heal func()) {
	t.Helper()
	n := 0
	writeAt = func(f *os.File, b []byte, off int64) (int, error) {
		if n++; n <= ok {
			return f.WriteAt(b, off)
		}
		written, _ := f.WriteAt(b[:len(b)/2], off)
		return written, syscall.ENOSPC
	}
	heal = func() { writeAt = (*os.File).WriteAt }
	t.Cleanup(heal)
	return heal
}

// record is a batch of one record, value v, with base offset 0.
func record(v string) []byte {
	return EncodeBatch(Record{Timestamp: time.Now(), Value: []byte(v)})
}

// concat puts batches end to end, as a Produce request carries them.
func concat(batches ...[]byte) []byte {
	var out []byte
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// valuesFrom reads every record of l, with its offset.
func valuesFrom(t *testing.T, l *Log) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for off := l.StartOffset(); off < l.EndOffset(); {
		raw, err := l.Read(off, 1<<20)
		require.NoError(t, err)
		recs, err := DecodeRecords(raw)
		require.NoError(t, err)
		for _, r := range recs {
			out[r.Offset] = string(r.Value)
		}
		off = NextOffset(raw)
	}
	return out
}

// onDisk is the total size of the log's segment files and the names of
// its segment and snapshot files.
func onDisk(t *testing.T, dir string) (size int64, names []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".log") {
			info, err := e.Info()
			require.NoError(t, err)
			size += info.Size()
		}
		if strings.HasSuffix(name, ".log") || strings.HasSuffix(name, snapshotSuffix) {
			names = append(names, name)
		}
	}
	return size, names
}

func TestAFailedAppendWritesNoneOfItsBatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		// segmentBytes small enough makes the append roll a segment
		// before the write that fails.
		segmentBytes int64
		// ok is how many of the three batches are written before the
		// write that fails.
		ok int
	}{
		{"the first batch fails halfway", 0, 0},
		{"the second batch fails halfway", 0, 1},
		{"the third batch fails halfway, after a roll", 150, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := Open(dir, Config{SegmentBytes: tc.segmentBytes})
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
			_, err = l.Append(record("before"))
			require.NoError(t, err)
			end, size, segments := l.EndOffset(), l.Size(), l.Segments()
			diskSize, files := onDisk(t, dir)
			require.Equal(t, size, diskSize)

			heal := failWritesAfter(t, tc.ok)
			_, err = l.Append(concat(record("a"), record("b"), record("c")))
			require.ErrorIs(t, err, syscall.ENOSPC)
			assert.Equal(t, end, l.EndOffset(), "no offset was given out")
			assert.Equal(t, size, l.Size())
			assert.Equal(t, segments, l.Segments(), "the segment the append rolled to is gone")
			diskSize, after := onDisk(t, dir)
			assert.Equal(t, size, diskSize, "the half-written batch is cut off the file")
			assert.Equal(t, files, after, "no segment or snapshot file is left of the append")
			assert.Equal(t, map[int64]string{0: "before"}, valuesFrom(t, l))

			heal()
			first, err := l.Append(concat(record("x"), record("y")))
			require.NoError(t, err, "the log stays usable")
			assert.Equal(t, end, first, "the next append takes the offsets the failed one did not")
			want := map[int64]string{0: "before", 1: "x", 2: "y"}
			assert.Equal(t, want, valuesFrom(t, l))
			diskSize, _ = onDisk(t, dir)
			assert.Equal(t, l.Size(), diskSize)

			// A restart finds nothing torn, and the same records.
			require.NoError(t, l.Close())
			l, err = Open(dir, Config{SegmentBytes: tc.segmentBytes})
			require.NoError(t, err)
			assert.Zero(t, l.Recovered().TruncatedBytes)
			assert.Equal(t, int64(3), l.EndOffset())
			assert.Equal(t, want, valuesFrom(t, l))
		})
	}
}

// A follower's append of several idempotent batches that fails after the
// first forgets what the first taught it of the producer, and a new
// leader epoch the append began.
func TestAFailedReplicaAppendForgetsItsProducersAndEpochs(t *testing.T) {
	l, err := Open(t.TempDir(), Config{})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	now := time.Now()
	batch := func(offset int64, epoch int32, seq int32) []byte {
		b := EncodeIdempotentBatch(7, 0, seq, Record{Timestamp: now, Value: []byte("v")})
		setBaseOffset(b, offset)
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
		return b
	}
	require.NoError(t, l.AppendReplica(batch(0, 1, 0)))
	producers, epochs := l.Producers(), l.Epochs()

	heal := failWritesAfter(t, 1)
	err = l.AppendReplica(concat(batch(1, 2, 1), batch(2, 2, 2)))
	require.ErrorIs(t, err, syscall.ENOSPC)
	assert.Equal(t, int64(1), l.EndOffset())
	assert.Equal(t, producers, l.Producers(), "the producer's state is as before the append")
	assert.Equal(t, epochs, l.Epochs(), "epoch 2, which the append began, is forgotten")

	heal()
	require.NoError(t, l.AppendReplica(concat(batch(1, 2, 1), batch(2, 2, 2))))
	require.Len(t, l.Producers(), 1)
	assert.Equal(t, int32(2), l.Producers()[0].Last().LastSequence)
	assert.Equal(t, []EpochStart{{1, 0}, {2, 1}}, l.Epochs())
}

// A roll writes a producer snapshot at the new segment's base; if the
// append is undone, that snapshot goes too, since it would describe
// batches the log does not have.
func TestAFailedAppendDeletesTheSnapshotOfItsRoll(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Config{SegmentBytes: 150})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	_, err = l.Append(record("before"))
	require.NoError(t, err)

	failWritesAfter(t, 1) // "a" is written; "b" rolls, then fails
	_, err = l.Append(concat(record("a"), record("b")))
	require.ErrorIs(t, err, syscall.ENOSPC)
	_, statErr := os.Stat(filepath.Join(dir, "00000000000000000002"+snapshotSuffix))
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}
