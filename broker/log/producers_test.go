package log_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
)

// The producer state's plumbing around lesson 09's rules (the rules
// themselves are lessons/09-idempotent-producer's tests): what is refused
// before the rules are asked, and the snapshot files.

func open(t *testing.T, dir string, cfg log.Config) *log.Log {
	t.Helper()
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

func idempotentBatch(producerID int64, epoch int16, seq int32, n int) []byte {
	now := time.Now()
	records := make([]log.Record, n)
	for i := range records {
		records[i] = log.Record{Timestamp: now, Value: []byte("v")}
	}
	return log.EncodeIdempotentBatch(producerID, epoch, seq, records...)
}

// As Kafka's LogValidator: a negative base sequence is INVALID_RECORD, a
// negative epoch is older than any, and an idempotent producer's records
// come one batch a request.
func TestMalformedIdempotentBatchesAreRefused(t *testing.T) {
	l := open(t, t.TempDir(), log.Config{})
	_, err := l.Append(log.EncodeBatch(log.Record{Value: []byte("x")}))
	require.NoError(t, err)
	_, err = l.AppendLeader(idempotentBatch(1, 0, -1, 3), 0)
	assert.ErrorIs(t, err, kerr.InvalidRecord)
	_, err = l.AppendLeader(idempotentBatch(1, -3, 5, 1), 0)
	assert.ErrorIs(t, err, kerr.InvalidProducerEpoch)
	two := append(idempotentBatch(1, 0, 0, 1), idempotentBatch(1, 0, 1, 1)...)
	_, err = l.AppendLeader(two, 0)
	assert.ErrorIs(t, err, kerr.InvalidRecord)
	assert.Equal(t, int64(1), l.EndOffset(), "nothing written")
	assert.Empty(t, l.Producers())
}

// A snapshot that fails its CRC is ignored, deleted, and an older one
// used, with the batches after it replayed: the state comes out the same.
func TestADamagedSnapshotFallsBackToAnOlderOne(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 300}
	l := open(t, dir, cfg)
	for i := range 20 {
		_, err := l.AppendLeader(idempotentBatch(7, 0, int32(i*2), 2), 0)
		require.NoError(t, err)
	}
	want := l.Producers()
	require.NoError(t, l.Close())
	snapshots, err := filepath.Glob(filepath.Join(dir, "*.snapshot"))
	require.NoError(t, err)
	require.Greater(t, len(snapshots), 2, "a snapshot at each roll and one at close")
	newest := snapshots[len(snapshots)-1]
	data, err := os.ReadFile(newest)
	require.NoError(t, err)
	data[len(data)-1] ^= 0xff
	require.NoError(t, os.WriteFile(newest, data, 0o644))

	reopened := open(t, dir, cfg)
	assert.Equal(t, want, reopened.Producers())
	r := reopened.Recovered()
	assert.Less(t, r.ProducerSnapshot, int64(40), "an older snapshot than the damaged one at the log end")
	assert.Positive(t, r.ProducerBatchesReplayed)
	assert.NoFileExists(t, newest, "the damaged snapshot is deleted")
}

// Retention deletes a producer's every record; the partition still knows
// it after a crash and a restart (KAFKA-7190): the snapshots keep it.
func TestRetentionKeepsProducersWhoseRecordsItDeleted(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 300, Retention: time.Hour}
	l := open(t, dir, cfg)
	for i := range 5 {
		_, err := l.AppendLeader(idempotentBatch(7, 0, int32(i), 1), 0)
		require.NoError(t, err)
	}
	for range 20 {
		_, err := l.Append(log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte("other")}))
		require.NoError(t, err)
	}
	_, err := l.EnforceRetention(time.Now().Add(2 * time.Hour))
	require.NoError(t, err)
	require.Greater(t, l.StartOffset(), int64(4), "producer 7's records are gone")
	require.NoError(t, l.Abandon()) // a crash

	reopened := open(t, dir, cfg)
	producers := reopened.Producers()
	require.Len(t, producers, 1)
	assert.Equal(t, int64(7), producers[0].ID)
	assert.Equal(t, int32(4), producers[0].Last().LastSequence)
	_, err = reopened.AppendLeader(idempotentBatch(7, 0, 9, 1), 0)
	assert.ErrorIs(t, err, kerr.OutOfOrderSequenceNumber, "it still continues its sequence: 5 is next")
}
