package producer

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// records returns a batch of n records for partition 0 of "t".
func records(n int32) *batch {
	return &batch{tp: topicPartition{"t", 0}, count: n}
}

// assigned assigns b its sequence and returns its base sequence.
func assigned(t *testing.T, s *partitionSequences, b *batch, id producerID) int32 {
	t.Helper()
	require.NoError(t, s.assign(b, id))
	require.NotNil(t, b.stamp, "a drained batch has a stamp")
	assert.Equal(t, id, b.stamp.producer, "the batch carries the producer's id and epoch")
	return b.stamp.baseSequence
}

func TestEachBatchStartsWhereThePreviousEnded(t *testing.T) {
	var s partitionSequences
	id := producerID{id: 7, epoch: 0}
	a, b, c := records(3), records(1), records(5)
	assert.Equal(t, int32(0), assigned(t, &s, a, id), "a partition's first batch starts at 0")
	assert.Equal(t, int32(3), assigned(t, &s, b, id), "then by record count: 3 records took 0, 1, 2")
	assert.Equal(t, int32(4), assigned(t, &s, c, id))
	assert.Equal(t, int32(9), s.next)
	assert.Equal(t, []*batch{a, b, c}, s.unacked, "the batches await their answers in sequence order")
}

func TestSequencesWrapAtMaxInt32(t *testing.T) {
	id := producerID{id: 7, epoch: 0}
	s := partitionSequences{next: math.MaxInt32 - 1}
	assert.Equal(t, int32(math.MaxInt32-1), assigned(t, &s, records(3), id))
	assert.Equal(t, int32(1), s.next, "2147483646, 2147483647, 0: the next batch starts at 1")

	s = partitionSequences{next: math.MaxInt32 - 1}
	assigned(t, &s, records(2), id)
	assert.Equal(t, int32(0), s.next, "after 2147483647 comes 0, not a negative number")
	assert.Equal(t, int32(0), assigned(t, &s, records(1), id))

	s = partitionSequences{next: math.MaxInt32}
	assigned(t, &s, records(math.MaxInt32), id)
	assert.Equal(t, int32(math.MaxInt32-1), s.next, "a sequence never goes negative, however large the step")
}

func TestARetryKeepsItsStamp(t *testing.T) {
	var s partitionSequences
	id := producerID{id: 7, epoch: 3}
	first, second := records(2), records(4)
	assigned(t, &s, first, id)
	assigned(t, &s, second, id)
	before := *first.stamp
	// The first batch failed and is drained again: the broker may have
	// written it, and must recognise the retry as that same batch.
	require.NoError(t, s.assign(first, id))
	assert.Equal(t, before, *first.stamp, "a retry keeps its producer id, epoch and base sequence")
	assert.Equal(t, int32(6), s.next, "a retry takes no new sequences")
	assert.Equal(t, []*batch{first, second}, s.unacked, "a retry is not a new unacknowledged batch")
}

// Retried batches wait at the front of their queue in sequence order,
// whatever order their answers came in.
func TestRetriesWaitInSequenceOrder(t *testing.T) {
	var s partitionSequences
	id := producerID{id: 7, epoch: 0}
	a, b, c, d := records(1), records(1), records(1), records(1)
	for _, x := range []*batch{a, b, c, d} {
		assigned(t, &s, x, id)
	}
	fresh := records(1) // never sent
	q := &queue{batches: []*batch{fresh}}
	requeue := func(x *batch) {
		i := s.retryPosition(q, x)
		q.batches = append(q.batches[:i], append([]*batch{x}, q.batches[i:]...)...)
	}
	requeue(c)
	requeue(a)
	requeue(d)
	requeue(b)
	assert.Equal(t, []*batch{a, b, c, d, fresh}, q.batches)

	s.forget(a) // acknowledged at last
	assert.Equal(t, []*batch{b, c, d}, s.unacked)
	assert.Equal(t, b, s.first())
}
