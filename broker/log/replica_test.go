package log_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/log"
)

func batchOf(values ...string) []byte {
	recs := make([]log.Record, len(values))
	for i, v := range values {
		recs[i] = log.Record{Offset: int64(i), Value: []byte(v)}
	}
	return log.EncodeBatch(recs...)
}

// values reads every record of l from offset 0.
func values(t *testing.T, l *log.Log) []string {
	t.Helper()
	var out []string
	for off := l.StartOffset(); off < l.EndOffset(); {
		raw, err := l.Read(off, 1<<20)
		require.NoError(t, err)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		for _, r := range recs {
			if r.Offset >= off {
				out = append(out, string(r.Value))
			}
		}
		off = log.NextOffset(raw)
	}
	return out
}

func TestLeaderEpochsAreStampedAndAnswered(t *testing.T) {
	dir := t.TempDir()
	l, err := log.Open(dir, log.Config{SegmentBytes: 200})
	require.NoError(t, err)
	_, err = l.AppendLeader(batchOf("a", "b"), 1) // offsets 0-1, epoch 1
	require.NoError(t, err)
	_, err = l.AppendLeader(batchOf("c"), 1) // 2
	require.NoError(t, err)
	_, err = l.AppendLeader(batchOf("d", "e"), 3) // 3-4, epoch 3
	require.NoError(t, err)
	require.Equal(t, []log.EpochStart{{1, 0}, {3, 3}}, l.Epochs())

	for _, c := range []struct {
		ask, epoch int32
		end        int64
	}{{0, -1, -1}, {1, 1, 3}, {2, 1, 3}, {3, 3, 5}, {7, 3, 5}} {
		epoch, end := l.EndOffsetForEpoch(c.ask)
		require.Equal(t, c.epoch, epoch, "epoch for %d", c.ask)
		require.Equal(t, c.end, end, "end offset for %d", c.ask)
	}
	require.NoError(t, l.Close())

	l, err = log.Open(dir, log.Config{SegmentBytes: 200})
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, int32(3), l.LatestEpoch(), "the cache survives a restart")
}

func TestTruncateToCutsWholeBatchesAcrossSegments(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{SegmentBytes: 150})
	require.NoError(t, err)
	defer l.Close()
	for i, v := range []string{"a", "b", "c", "d", "e", "f"} {
		_, err := l.AppendLeader(batchOf(v), int32(i/2)) // epochs 0,0,1,1,2,2
		require.NoError(t, err)
	}
	require.Greater(t, l.Segments(), 2)

	require.NoError(t, l.TruncateTo(3))
	require.Equal(t, int64(3), l.EndOffset())
	require.Equal(t, []string{"a", "b", "c"}, values(t, l))
	require.Equal(t, []log.EpochStart{{0, 0}, {1, 2}}, l.Epochs())

	// The log goes on from where it was cut.
	_, err = l.AppendLeader(batchOf("x"), 5)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c", "x"}, values(t, l))

	require.NoError(t, l.TruncateTo(0))
	require.Equal(t, int64(0), l.EndOffset())
	require.Empty(t, l.Epochs())
}

func TestAppendReplicaKeepsTheLeadersOffsetsAndEpochs(t *testing.T) {
	leader, err := log.Open(t.TempDir(), log.Config{})
	require.NoError(t, err)
	defer leader.Close()
	follower, err := log.Open(t.TempDir(), log.Config{})
	require.NoError(t, err)
	defer follower.Close()
	_, err = leader.AppendLeader(batchOf("a", "b"), 4)
	require.NoError(t, err)
	_, err = leader.AppendLeader(batchOf("c"), 6)
	require.NoError(t, err)

	raw, err := leader.Read(0, 1<<20)
	require.NoError(t, err)
	require.NoError(t, follower.AppendReplica(raw))
	require.Equal(t, int64(3), follower.EndOffset())
	require.Equal(t, leader.Epochs(), follower.Epochs())
	require.Equal(t, []string{"a", "b", "c"}, values(t, follower))

	require.Error(t, follower.AppendReplica(raw), "batches the follower already has")
}

func TestReadBelowStopsAtTheHighWatermark(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{})
	require.NoError(t, err)
	defer l.Close()
	for _, v := range []string{"a", "b", "c"} {
		_, err := l.AppendLeader(batchOf(v), 0)
		require.NoError(t, err)
	}
	raw, err := l.ReadBelow(0, 1<<20, 2)
	require.NoError(t, err)
	recs, err := log.DecodeRecords(raw)
	require.NoError(t, err)
	require.Len(t, recs, 2)

	raw, err = l.ReadBelow(2, 1<<20, 2)
	require.NoError(t, err)
	require.Empty(t, raw, "at the high watermark: nothing yet, no error")
	_, err = l.ReadBelow(4, 1<<20, 2)
	require.Error(t, err, "past the log end")
}
