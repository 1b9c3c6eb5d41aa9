package metadata

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

// applyAll feeds records to f as committed log entries, from index 1, and
// returns what each Apply answered: nil, or why the record was refused.
func applyAll(t *testing.T, f *FSM, records ...Record) []error {
	t.Helper()
	var out []error
	for _, r := range records {
		data, err := Encode(r)
		require.NoError(t, err)
		res := f.Apply(&raft.Log{Index: f.Image().Offset + 1, Type: raft.LogCommand, Data: data})
		err, _ = res.(error)
		out = append(out, err)
	}
	return out
}

func block(broker int32, first int64) Record {
	return Record{AllocateProducerIDs: &ProducerIDBlock{Broker: broker, First: first, Size: 1000}}
}

// TestProducerIDBlocksNeverOverlap: a block applies only if it starts at
// the next unallocated id. Two controllers that both read next=1000 and
// proposed a block from there: the first in the log takes 1000..1999, the
// second is refused, and the image moves on as if it had not been there.
func TestProducerIDBlocksNeverOverlap(t *testing.T) {
	f := NewFSM()
	errs := applyAll(t, f, block(1, 0), block(2, 1000), block(3, 1000))
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], ErrStaleProducerIDs)
	assert.ErrorIs(t, errs[2], kerr.InvalidUpdateVersion, "a stale block carries a Kafka error code")
	assert.Equal(t, int64(2000), f.Image().NextProducerID, "the refused block took nothing")
	assert.Equal(t, uint64(3), f.Image().Offset, "a refused record still moves the offset")

	errs = applyAll(t, f, block(3, 500), block(3, 3000), block(3, 2000))
	assert.ErrorIs(t, errs[0], ErrStaleProducerIDs, "a block inside one already given")
	assert.ErrorIs(t, errs[1], ErrStaleProducerIDs, "a block past the next id would leave a gap")
	assert.NoError(t, errs[2])
	assert.Equal(t, int64(3000), f.Image().NextProducerID)

	empty := applyAll(t, f, Record{AllocateProducerIDs: &ProducerIDBlock{Broker: 1, First: 3000, Size: 0}})
	assert.ErrorIs(t, empty[0], kerr.InvalidRequest)
	assert.Equal(t, int64(3000), f.Image().NextProducerID)
}

// TestProducerIDsApplyToAClone: applying a block leaves the image it was
// applied to as it was (readers may hold it), and a clone keeps the next id.
func TestProducerIDsApplyToAClone(t *testing.T) {
	before := Empty()
	after, err := before.apply(block(1, 0))
	require.NoError(t, err)
	assert.Equal(t, int64(0), before.NextProducerID)
	assert.Equal(t, int64(1000), after.NextProducerID)
	assert.Equal(t, int64(1000), after.clone().NextProducerID)
}

// memSink is a raft.SnapshotSink that keeps the snapshot in memory, and
// the io.ReadCloser that Restore reads it back from.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// TestSnapshotKeepsTheNextProducerID: a broker that restores the image
// from a raft snapshot (after a restart, or when it is too far behind for
// the log) must not hand out again the ids allocated before it.
func TestSnapshotKeepsTheNextProducerID(t *testing.T) {
	f := NewFSM()
	applyAll(t, f, Record{InitCluster: "c1"}, block(1, 0), block(2, 1000))

	snap, err := f.Snapshot()
	require.NoError(t, err)
	var sink memSink
	require.NoError(t, snap.Persist(&sink))
	assert.Contains(t, sink.String(), `"nextProducerId":2000`)

	restored := NewFSM()
	require.NoError(t, restored.Restore(&sink))
	assert.Equal(t, int64(2000), restored.Image().NextProducerID)
	errs := applyAll(t, restored, block(3, 1000), block(3, 2000))
	assert.ErrorIs(t, errs[0], ErrStaleProducerIDs, "the restored image knows 1000..1999 is taken")
	assert.NoError(t, errs[1])
}
