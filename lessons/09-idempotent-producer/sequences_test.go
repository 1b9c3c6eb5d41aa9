// The tests of lesson 09, the idempotent producer: the partition's side.
// Each appends batches of an idempotent producer to a log, as a leader
// does with what Produce requests bring, and checks what the log wrote and
// answered. They are the specification of checkProducerBatch: a retry is
// answered with its first offset and written once, a gap is refused, an
// older epoch is fenced, a new epoch starts at 0, sequences wrap.
package idempotence_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
)

// leaderEpoch is the partition leader's epoch the appends are stamped with.
const leaderEpoch = 0

func openLog(t *testing.T, dir string, cfg log.Config) *log.Log {
	t.Helper()
	l, err := log.Open(dir, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	return l
}

// batch is a batch as an idempotent producer sends it: n records, the
// first with sequence seq; each record's value is its own sequence.
func batch(producerID int64, epoch int16, seq int32, n int) []byte {
	now := time.Now()
	records := make([]log.Record, n)
	for i := range records {
		value := strconv.Itoa(int(log.AddSequence(seq, int32(i))))
		records[i] = log.Record{Timestamp: now, Value: []byte(value)}
	}
	return log.EncodeIdempotentBatch(producerID, epoch, seq, records...)
}

// plainBatch is a batch of a producer that is not idempotent.
func plainBatch(value string) []byte {
	return log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte(value)})
}

// appendOK appends a batch that must be accepted and returns its first offset.
func appendOK(t *testing.T, l *log.Log, b []byte) int64 {
	t.Helper()
	offset, err := l.AppendLeader(b, leaderEpoch)
	require.NoError(t, err, "the batch must be accepted")
	return offset
}

// appendRefused appends a batch that must be refused with want, and checks
// that nothing was written.
func appendRefused(t *testing.T, l *log.Log, b []byte, want *kerr.Error) {
	t.Helper()
	end, state := l.EndOffset(), l.Producers()
	_, err := l.AppendLeader(b, leaderEpoch)
	require.Error(t, err, "the batch must be refused with %s", want.Message)
	require.ErrorIs(t, err, want)
	require.Equal(t, end, l.EndOffset(), "a refused batch writes nothing")
	require.Equal(t, state, l.Producers(), "a refused batch changes nothing the partition remembers")
}

// appendDuplicate appends a retry of a batch the log holds, which must be
// answered with first, the offset of the original, and change nothing.
func appendDuplicate(t *testing.T, l *log.Log, b []byte, first int64, msgAndArgs ...any) {
	t.Helper()
	end, state := l.EndOffset(), l.Producers()
	offset, err := l.AppendLeader(b, leaderEpoch)
	require.NoError(t, err, msgAndArgs...)
	require.Equal(t, first, offset, msgAndArgs...)
	require.Equal(t, end, l.EndOffset(), "a duplicate writes nothing")
	require.Equal(t, state, l.Producers(), "a duplicate changes nothing the partition remembers")
}

// values reads every record of the log, in order.
func logValues(t *testing.T, l *log.Log) []string {
	t.Helper()
	raw, err := l.Read(l.StartOffset(), 64<<20)
	require.NoError(t, err)
	records, err := log.DecodeRecords(raw)
	require.NoError(t, err)
	var out []string
	for _, r := range records {
		out = append(out, string(r.Value))
	}
	return out
}

func seqs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

func TestBatchesInSequenceAreAppended(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	assert.Equal(t, int64(0), appendOK(t, l, batch(1, 0, 0, 3)))
	assert.Equal(t, int64(3), appendOK(t, l, batch(1, 0, 3, 2)))
	assert.Equal(t, int64(5), appendOK(t, l, batch(1, 0, 5, 1)))
	assert.Equal(t, seqs(0, 5), logValues(t, l))
}

func TestRetryIsAnsweredWithItsFirstOffsetAndWrittenOnce(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, plainBatch("before"))
	appendOK(t, l, batch(1, 0, 0, 3))
	retry := batch(1, 0, 3, 2)
	assert.Equal(t, int64(4), appendOK(t, l, retry))
	offset, err := l.AppendLeader(batch(1, 0, 3, 2), leaderEpoch)
	require.NoError(t, err, "a retry of a batch in the log is a success")
	assert.Equal(t, int64(4), offset, "a retry is answered with the offset the batch got the first time")
	assert.Equal(t, int64(6), l.EndOffset(), "a retry writes nothing")
	assert.Equal(t, append([]string{"before"}, seqs(0, 4)...), logValues(t, l))
}

// Five batches in flight, all written, none answered (the leader's answer
// was lost): the producer retries all five, and each is recognised.
func TestRetriesOfFiveBatchesInFlightAreAllRecognised(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	var first []int64
	for i := range 5 {
		first = append(first, appendOK(t, l, batch(1, 0, int32(i*10), 10)))
	}
	for _, i := range []int{0, 1, 2, 3, 4, 2, 0} {
		offset, err := l.AppendLeader(batch(1, 0, int32(i*10), 10), leaderEpoch)
		require.NoError(t, err, "batch %d of 5 in flight, retried, is a duplicate: the last 5 batches are remembered", i+1)
		assert.Equal(t, first[i], offset, "batch %d of 5, retried", i+1)
	}
	assert.Equal(t, seqs(0, 49), logValues(t, l))
}

// Only the last five batches are remembered: a retry of an older one
// cannot be told from a batch out of order.
func TestRetryOfABatchOlderThanTheLastFiveIsOutOfOrder(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	for i := range 6 {
		appendOK(t, l, batch(1, 0, int32(i), 1))
	}
	appendRefused(t, l, batch(1, 0, 0, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(1, 0, 1, 1)) // still remembered: a duplicate
	assert.Equal(t, seqs(0, 5), logValues(t, l))
}

func TestGapIsOutOfOrder(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 3))
	appendRefused(t, l, batch(1, 0, 5, 1), kerr.OutOfOrderSequenceNumber)
	appendRefused(t, l, batch(1, 0, 4, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(1, 0, 3, 2)) // the missing batch first
	appendOK(t, l, batch(1, 0, 5, 1)) // then the one refused
	assert.Equal(t, seqs(0, 5), logValues(t, l))
}

// A batch that starts where a remembered one started but ends elsewhere is
// not that batch: it overlaps records already written.
func TestBatchOverlappingARememberedOneIsNotADuplicate(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 3))
	appendOK(t, l, batch(1, 0, 3, 3))
	appendRefused(t, l, batch(1, 0, 3, 5), kerr.OutOfOrderSequenceNumber)
	appendRefused(t, l, batch(1, 0, 0, 1), kerr.OutOfOrderSequenceNumber)
	appendRefused(t, l, batch(1, 0, 2, 4), kerr.OutOfOrderSequenceNumber)
	assert.Equal(t, seqs(0, 5), logValues(t, l))
}

// A producer's earlier session, still retrying, must not write after the
// new one started: its epoch is older, and it is fenced.
func TestOlderEpochIsFenced(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 2))
	appendOK(t, l, batch(1, 1, 0, 2))
	appendRefused(t, l, batch(1, 0, 2, 1), kerr.InvalidProducerEpoch) // would be next in epoch 0
	appendRefused(t, l, batch(1, 0, 0, 2), kerr.InvalidProducerEpoch) // a retry of epoch 0's batch
	appendOK(t, l, batch(1, 1, 2, 1))
	assert.Equal(t, []string{"0", "1", "0", "1", "2"}, logValues(t, l))
}

func TestNewEpochStartsAtSequenceZero(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 10))
	appendRefused(t, l, batch(1, 1, 10, 1), kerr.OutOfOrderSequenceNumber)
	appendRefused(t, l, batch(1, 1, 5, 1), kerr.OutOfOrderSequenceNumber)
	assert.Equal(t, int64(10), appendOK(t, l, batch(1, 1, 0, 1)))
	appendOK(t, l, batch(1, 1, 1, 1))
	// Epoch 0's batches are forgotten: their sequences mean nothing now.
	appendRefused(t, l, batch(1, 1, 10, 1), kerr.OutOfOrderSequenceNumber)
	assert.Equal(t, append(seqs(0, 9), "0", "1"), logValues(t, l))
}

// KIP-360: a partition that has no state for a producer (its records were
// deleted, or it expired) takes its next batch, whatever the sequence.
func TestUnknownProducerIsAcceptedAtAnySequence(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, plainBatch("someone else's"))
	assert.Equal(t, int64(1), appendOK(t, l, batch(7, 3, 42, 2)))
	appendRefused(t, l, batch(7, 3, 45, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(7, 3, 44, 1))
	assert.Equal(t, []string{"someone else's", "42", "43", "44"}, logValues(t, l))
}

// KAFKA-15591 (fixed in Kafka 4.5): in a partition that has never held a
// record, nothing can have been deleted, so a first batch that does not
// start at 0 overtook an earlier one that is being retried. Taking it
// would make that earlier one out of order forever: it would be lost.
func TestNeverWrittenPartitionTakesSequenceZeroFirst(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendRefused(t, l, batch(1, 0, 17, 5), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(1, 0, 0, 17))
	appendOK(t, l, batch(1, 0, 17, 5))
	assert.Equal(t, seqs(0, 21), logValues(t, l))
}

// Sequence numbers are int32 and wrap: after 2147483647 comes 0.
func TestSequencesWrapAtMaxInt32(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, plainBatch("start"))
	appendOK(t, l, batch(1, 0, math.MaxInt32-1, 3)) // sequences 2147483646, 2147483647, 0
	appendRefused(t, l, batch(1, 0, 2, 1), kerr.OutOfOrderSequenceNumber)
	offset, err := l.AppendLeader(batch(1, 0, math.MaxInt32-1, 3), leaderEpoch)
	require.NoError(t, err, "a retry of the batch that wrapped is a duplicate")
	assert.Equal(t, int64(1), offset)
	appendOK(t, l, batch(1, 0, 1, 1))
	assert.Equal(t, []string{"start", "2147483646", "2147483647", "0", "1"}, logValues(t, l))

	// A batch that ends on 2147483647 is followed by sequence 0, and the
	// next by 1: the newest batch is the last written, not the one with
	// the highest numbers.
	before := appendOK(t, l, batch(2, 0, math.MaxInt32-1, 2))
	appendRefused(t, l, batch(2, 0, math.MaxInt32, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(2, 0, 0, 1))
	appendOK(t, l, batch(2, 0, 1, 1))
	appendOK(t, l, batch(2, 0, 2, 1))
	appendDuplicate(t, l, batch(2, 0, math.MaxInt32-1, 2), before, "a retry of the batch before the wrap")
	appendOK(t, l, batch(2, 0, 3, 1))
}

// Retries of older batches change nothing: the batch after the newest is
// still the one expected.
func TestNextBatchAfterRetriesOfOlderBatches(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	for i := range 5 {
		appendOK(t, l, batch(1, 0, int32(i*10), 10))
	}
	for _, i := range []int{3, 1, 0} {
		appendDuplicate(t, l, batch(1, 0, int32(i*10), 10), int64(i*10), "batch %d, retried", i)
	}
	assert.Equal(t, int64(50), appendOK(t, l, batch(1, 0, 50, 1)))
}

// An epoch may jump ahead by more than one: a producer that bumped its
// epoch twice while writing elsewhere comes back with the newest.
func TestNewEpochMayJumpAhead(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 3))
	assert.Equal(t, int64(3), appendOK(t, l, batch(1, 3, 0, 1)))
	appendRefused(t, l, batch(1, 2, 0, 1), kerr.InvalidProducerEpoch)
	appendOK(t, l, batch(1, 3, 1, 1))
}

// A new session's batches are its own, even where their sequences are
// those of the old session's: none is taken for a retry of the old ones.
func TestNewEpochsBatchesAreWrittenWhateverTheOldEpochWrote(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 3))
	appendOK(t, l, batch(1, 0, 3, 3))
	assert.Equal(t, int64(6), appendOK(t, l, batch(1, 1, 0, 3)))
	assert.Equal(t, int64(9), appendOK(t, l, batch(1, 1, 3, 3)), "epoch 1's sequences 3..5 are new records")
	appendDuplicate(t, l, batch(1, 1, 0, 3), 6, "a retry of epoch 1's first batch")
	assert.Equal(t, int64(12), l.EndOffset())
}

// On a partition that has never held a record, a producer's first batch
// starts at 0 whatever its epoch: a bumped epoch has no history here.
func TestNeverWrittenPartitionAndABumpedEpoch(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendRefused(t, l, batch(1, 4, 3, 1), kerr.OutOfOrderSequenceNumber)
	assert.Equal(t, int64(0), appendOK(t, l, batch(1, 4, 0, 3)))
	appendOK(t, l, batch(1, 4, 3, 1))
}

func TestProducersHaveSequencesOfTheirOwn(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{})
	appendOK(t, l, batch(1, 0, 0, 2))
	appendOK(t, l, batch(2, 0, 0, 1))
	appendOK(t, l, batch(1, 0, 2, 1))
	appendRefused(t, l, batch(2, 0, 2, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, l, batch(2, 0, 1, 1))
	offset, err := l.AppendLeader(batch(2, 0, 0, 1), leaderEpoch)
	require.NoError(t, err)
	assert.Equal(t, int64(2), offset, "producer 2's first batch, retried")
	assert.Equal(t, []string{"0", "1", "0", "2", "1"}, logValues(t, l))
}

// A follower copies the leader's batches as they are, and builds the same
// producer state from them: once it leads, a retry the producer first sent
// to the old leader is recognised.
func TestFollowerRecognisesRetriesOnceItLeads(t *testing.T) {
	leader := openLog(t, t.TempDir(), log.Config{})
	follower := openLog(t, t.TempDir(), log.Config{})
	for i := range 5 {
		appendOK(t, leader, batch(1, 0, int32(i*2), 2))
	}
	raw, err := leader.Read(0, 1<<20)
	require.NoError(t, err)
	require.NoError(t, follower.AppendReplica(raw))

	for i := range 5 {
		offset, err := follower.AppendLeader(batch(1, 0, int32(i*2), 2), leaderEpoch+1)
		require.NoError(t, err, "batch %d, retried to the new leader", i+1)
		assert.Equal(t, int64(i*2), offset, "batch %d, retried to the new leader", i+1)
	}
	appendOK(t, follower, batch(1, 0, 10, 1))
	assert.Equal(t, seqs(0, 10), logValues(t, follower))
}

// crashCopy copies a log's files as they are now, without closing the log:
// what a restart after a crash finds.
func crashCopy(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), data, 0o644))
	}
	return to
}

// The producer state survives a crash: rebuilt from the snapshot written
// when the last segment was rolled, and the batches after it.
func TestRestartAfterACrashStillRecognisesRetries(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 1024}
	l := openLog(t, dir, cfg)
	var offsets []int64
	for i := range 40 {
		offsets = append(offsets, appendOK(t, l, batch(int64(1+i%3), 0, int32(i/3*4), 4)))
	}
	require.Greater(t, l.Segments(), 3, "the test needs several segments")

	restarted := openLog(t, crashCopy(t, dir), cfg)
	for i := 35; i < 40; i++ {
		offset, err := restarted.AppendLeader(batch(int64(1+i%3), 0, int32(i/3*4), 4), leaderEpoch)
		require.NoError(t, err, "batch %d, retried after the restart", i)
		assert.Equal(t, offsets[i], offset, "batch %d, retried after the restart", i)
	}
	assert.Equal(t, l.EndOffset(), restarted.EndOffset(), "the retries wrote nothing")
	appendRefused(t, restarted, batch(1, 0, 100, 1), kerr.OutOfOrderSequenceNumber)
	appendOK(t, restarted, batch(1, 0, 56, 1))

	r := restarted.Recovered()
	assert.GreaterOrEqual(t, r.ProducerSnapshot, int64(0), "the state comes from a snapshot, not from reading the whole log")
	assert.Less(t, r.ProducerBatchesReplayed, 40, "only the batches after the snapshot are read again")
}

// Retention deleting every batch of a producer does not make its next
// batch out of order (KIP-360): the partition still knows the producer,
// or, having forgotten it, takes it at any sequence. Redpanda fixed this
// for producers whose state was evicted in its PR #22687.
func TestNextBatchAfterRetentionDeletedAProducersBatches(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 512, Retention: time.Hour}
	l := openLog(t, dir, cfg)
	for i := range 10 {
		appendOK(t, l, batch(1, 0, int32(i*3), 3))
	}
	for i := range 10 {
		appendOK(t, l, plainBatch(fmt.Sprint("other ", i)))
	}
	deleted, err := l.EnforceRetention(time.Now().Add(2 * time.Hour))
	require.NoError(t, err)
	require.Positive(t, deleted)
	require.Greater(t, l.StartOffset(), int64(29), "retention must have deleted every batch of producer 1")

	appendOK(t, l, batch(1, 0, 30, 3))
	restarted := openLog(t, crashCopy(t, dir), cfg)
	appendOK(t, restarted, batch(1, 0, 33, 1))
}

// producer.id.expiration.ms: a producer idle for longer is forgotten, and
// comes back as an unknown producer, at any sequence.
func TestIdleProducerExpires(t *testing.T) {
	l := openLog(t, t.TempDir(), log.Config{ProducerIDExpiration: time.Hour})
	appendOK(t, l, batch(1, 0, 0, 2))
	appendOK(t, l, batch(2, 0, 0, 2))
	n, err := l.ExpireProducers(time.Now().Add(30 * time.Minute))
	require.NoError(t, err)
	assert.Zero(t, n, "nobody has been idle for an hour yet")
	n, err = l.ExpireProducers(time.Now().Add(2 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Empty(t, l.Producers())
	appendOK(t, l, batch(1, 0, 9, 1))
}
