package log

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// While a compaction pass holds cleanMu, AdvanceStart moves the start at
// once but leaves the segments below it; the next retention pass deletes
// them.
func TestAdvanceStartDuringACompactionLeavesSegmentsToRetention(t *testing.T) {
	l, err := Open(t.TempDir(), Config{SegmentBytes: 300})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	for range 30 {
		_, err := l.Append(EncodeBatch(Record{Timestamp: time.Now(), Value: []byte("0123456789")}))
		require.NoError(t, err)
	}
	before := l.Segments()

	l.cleanMu.Lock() // a compaction pass under way
	require.NoError(t, l.AdvanceStart(20))
	assert.Equal(t, int64(20), l.StartOffset(), "readers see the new start at once")
	assert.Equal(t, before, l.Segments(), "the segments wait for the pass to end")
	l.cleanMu.Unlock()

	n, err := l.EnforceRetention(time.Now())
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.Equal(t, before-n, l.Segments())
	assert.Equal(t, int64(20), l.StartOffset())
}
