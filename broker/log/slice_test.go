package log_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/log"
)

// sliceBytes reads a Slice whole, and closes it.
func sliceBytes(t *testing.T, s log.Slice) []byte {
	t.Helper()
	defer s.Close()
	if s.Len() == 0 {
		return nil
	}
	b := make([]byte, s.Len())
	_, err := s.ReadAt(b, 0)
	require.NoError(t, err)
	return b
}

// TestSliceIsWhatReadReads: a Slice names exactly the bytes Read returns,
// for every offset and size: whole batches, at least the first, across
// segments and around index entries, found without reading the records.
// SliceBelow is ReadBelow likewise.
func TestSliceIsWhatReadReads(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{SegmentBytes: 2000, IndexIntervalBytes: 150})
	require.NoError(t, err)
	defer l.Close()
	for i := range 60 {
		// Batches of one to five records of different sizes.
		values := make([]string, 1+i%5)
		for j := range values {
			values[j] = strings.Repeat("v", 1+(i*7+j*13)%40)
		}
		_, err := l.Append(batchOf(values...))
		require.NoError(t, err)
	}
	end := l.EndOffset()
	require.Greater(t, l.Segments(), 3, "several segments")
	for offset := l.StartOffset(); offset <= end; offset++ {
		sizes := []int64{0, 1, 61, 100, 150, 151, 299, 300, 700, 1999, 2000, 5000, 1 << 20}
		// And exactly the first n batches, a byte less, a byte more.
		all, err := l.Read(offset, 1<<20)
		require.NoError(t, err)
		for n := int64(0); n+12 <= int64(len(all)); {
			n += 12 + int64(binary.BigEndian.Uint32(all[n+8:]))
			sizes = append(sizes, n-1, n, n+1)
		}
		for _, maxBytes := range sizes {
			want, err := l.Read(offset, maxBytes)
			require.NoError(t, err)
			s, err := l.Slice(offset, maxBytes)
			require.NoError(t, err)
			require.True(t, bytes.Equal(want, sliceBytes(t, s)), "offset %d, max %d", offset, maxBytes)
			for _, limit := range []int64{offset, offset + 1, offset + 7, end - 3, end} {
				want, err := l.ReadBelow(offset, maxBytes, limit)
				require.NoError(t, err)
				s, err := l.SliceBelow(offset, maxBytes, limit)
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, sliceBytes(t, s)), "offset %d, max %d, below %d", offset, maxBytes, limit)
			}
		}
	}
	_, err = l.Slice(end+1, 100)
	require.ErrorContains(t, err, "OFFSET_OUT_OF_RANGE")
	_, err = l.SliceBelow(end+1, 100, end)
	require.ErrorContains(t, err, "OFFSET_OUT_OF_RANGE")
}

// TestASliceOutlivesItsSegment: the response naming a Slice is written
// after the log's lock is let go; retention may delete the segment, or
// the log close, meanwhile. The Slice still reads the bytes it named.
func TestASliceOutlivesItsSegment(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{SegmentBytes: 200})
	require.NoError(t, err)
	for i := range 10 {
		_, err := l.Append(batchOf(fmt.Sprintf("value %d %s", i, strings.Repeat("x", 80))))
		require.NoError(t, err)
	}
	want, err := l.Read(0, 1<<20)
	require.NoError(t, err)
	s, err := l.Slice(0, 1<<20)
	require.NoError(t, err)
	copied := s
	require.NoError(t, l.AdvanceStart(5)) // the first segments go
	require.NoError(t, l.ResetTo(0))      // and the rest
	require.NoError(t, l.Close())
	require.Equal(t, want, sliceBytes(t, s))

	// The last hold let go, the file is closed; a second Close, of the
	// Slice or of a copy, does not let go again.
	f, _, _ := copied.File()
	_, err = f.ReadAt(make([]byte, 1), 0)
	require.ErrorIs(t, err, os.ErrClosed)
	require.NoError(t, copied.Close())
}

// TestASegmentStaysOpenWhileSlicesHoldIt: the log closes a segment's file
// only once every Slice of it is closed, and then does close it.
func TestASegmentStaysOpenWhileSlicesHoldIt(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{})
	require.NoError(t, err)
	_, err = l.Append(batchOf("a", "b"))
	require.NoError(t, err)
	first, err := l.Slice(0, 100)
	require.NoError(t, err)
	second, err := l.Slice(1, 100)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, first.Close())
	require.NoError(t, first.Close()) // twice: nothing more
	f, _, _ := second.File()
	_, err = f.ReadAt(make([]byte, 1), 0)
	require.NoError(t, err, "still held by the second")
	require.NoError(t, second.Close())
	_, err = f.ReadAt(make([]byte, 1), 0)
	require.ErrorIs(t, err, os.ErrClosed)
}

// TestASegmentClosedTwiceLetsGoOnce: a segment whose files cannot all be
// deleted stays in the log, closed; closing the log closes it again. The
// second close must not take the file from a Slice still holding it.
func TestASegmentClosedTwiceLetsGoOnce(t *testing.T) {
	dir := t.TempDir()
	l, err := log.Open(dir, log.Config{SegmentBytes: 200})
	require.NoError(t, err)
	for i := range 10 {
		_, err := l.Append(batchOf(fmt.Sprintf("value %d %s", i, strings.Repeat("x", 80))))
		require.NoError(t, err)
	}
	s, err := l.Slice(0, 1<<20)
	require.NoError(t, err)
	defer s.Close()
	// A directory, not empty, where the first segment's time index was:
	// deleting the segment fails half-way.
	timeIndex := filepath.Join(dir, fmt.Sprintf("%020d.timeindex", 0))
	require.NoError(t, os.Remove(timeIndex))
	require.NoError(t, os.MkdirAll(filepath.Join(timeIndex, "x"), 0o755))
	require.Error(t, l.AdvanceStart(5))
	l.Close()
	_, err = s.ReadAt(make([]byte, s.Len()), 0)
	require.NoError(t, err, "the Slice still reads its file")
}
