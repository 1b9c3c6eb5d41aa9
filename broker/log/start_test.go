package log_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
)

// appendValues appends n single-record batches.
func appendValues(t *testing.T, l *log.Log, n int) {
	t.Helper()
	for range n {
		_, err := l.Append(log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte("0123456789")}))
		require.NoError(t, err)
	}
}

// AdvanceStart (DeleteRecords) moves the start into a segment: reads below
// it are out of range, the segments wholly below it are deleted, and it
// never moves back or past the log end.
func TestAdvanceStartHidesRecordsAndDeletesWholeSegments(t *testing.T) {
	l := open(t, t.TempDir(), log.Config{SegmentBytes: 300})
	appendValues(t, l, 30)
	before := l.Segments()
	require.Greater(t, before, 3)

	require.NoError(t, l.AdvanceStart(17))
	assert.Equal(t, int64(17), l.StartOffset())
	assert.Less(t, l.Segments(), before, "the segments below 17 are gone")
	_, err := l.Read(16, 1<<20)
	var oor *log.OffsetOutOfRangeError
	require.ErrorAs(t, err, &oor)
	assert.Equal(t, int64(17), oor.Start)
	got, err := l.Read(17, 1<<20)
	require.NoError(t, err)
	assert.NotEmpty(t, got)
	off, _, err := l.OffsetForTimestamp(0)
	require.NoError(t, err)
	assert.Equal(t, int64(17), off, "a timestamp search never answers below the start")

	require.NoError(t, l.AdvanceStart(5), "back: nothing to do")
	assert.Equal(t, int64(17), l.StartOffset())
	assert.ErrorIs(t, l.AdvanceStart(31), kerr.OffsetOutOfRange, "past the log end")

	require.NoError(t, l.AdvanceStart(30), "up to the log end: every record gone")
	assert.Equal(t, int64(30), l.StartOffset())
	assert.Equal(t, 1, l.Segments(), "the active segment stays")
	got, err = l.Read(30, 1<<20)
	require.NoError(t, err)
	assert.Empty(t, got)
}

// The start survives a clean restart and a crash; a crash that loses the
// records up to it starts the log over there.
func TestTheStartSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 300}
	l := open(t, dir, cfg)
	appendValues(t, l, 30)
	require.NoError(t, l.AdvanceStart(17))
	require.NoError(t, l.Close())

	l = open(t, dir, cfg)
	assert.Equal(t, int64(17), l.StartOffset(), "after a clean shutdown")
	require.NoError(t, l.AdvanceStart(18))
	require.NoError(t, l.Abandon())

	l = open(t, dir, cfg)
	assert.Equal(t, int64(18), l.StartOffset(), "after a crash")
	assert.Equal(t, int64(30), l.EndOffset())
	_, err := l.Read(17, 1<<20)
	assert.ErrorIs(t, err, kerr.OffsetOutOfRange)
}

// A follower cut back below its start keeps start <= end, and keeps that
// across a restart too.
func TestTruncatingBelowTheStartLowersIt(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 300}
	l := open(t, dir, cfg)
	appendValues(t, l, 30)
	require.NoError(t, l.AdvanceStart(25))
	require.NoError(t, l.TruncateTo(22))
	assert.LessOrEqual(t, l.StartOffset(), l.EndOffset())
	assert.Equal(t, int64(22), l.StartOffset())
	require.NoError(t, l.Close())
	l = open(t, dir, cfg)
	assert.Equal(t, int64(22), l.StartOffset())
	assert.Equal(t, int64(22), l.EndOffset())
}

// DeleteRecords keeps the producer state as retention does (KAFKA-7190):
// a producer whose every batch it deleted is still known, after a crash
// too, so its retry is still a duplicate and its next batch still in
// sequence.
func TestAdvanceStartKeepsProducersWhoseRecordsItDeleted(t *testing.T) {
	dir := t.TempDir()
	cfg := log.Config{SegmentBytes: 300}
	l := open(t, dir, cfg)
	for i := range 5 {
		_, err := l.AppendLeader(idempotentBatch(7, 0, int32(i), 1), 0)
		require.NoError(t, err)
	}
	appendValues(t, l, 20)
	require.NoError(t, l.AdvanceStart(l.EndOffset()))
	require.Greater(t, l.StartOffset(), int64(4), "producer 7's records are gone")
	require.NoError(t, l.Abandon()) // a crash

	l = open(t, dir, cfg)
	producers := l.Producers()
	require.Len(t, producers, 1)
	assert.Equal(t, int32(4), producers[0].Last().LastSequence)
	end := l.EndOffset()
	first, err := l.AppendLeader(idempotentBatch(7, 0, 4, 1), 0)
	require.NoError(t, err, "a retry of the last batch")
	assert.Equal(t, int64(4), first, "answered with where it was first written")
	assert.Equal(t, end, l.EndOffset(), "and not written again")
	_, err = l.AppendLeader(idempotentBatch(7, 0, 9, 1), 0)
	assert.True(t, errors.Is(err, kerr.OutOfOrderSequenceNumber), "5 is next: %v", err)
	first, err = l.AppendLeader(idempotentBatch(7, 0, 5, 1), 0)
	require.NoError(t, err)
	assert.Equal(t, end, first)
}
