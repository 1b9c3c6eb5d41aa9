package producer

import (
	"slices"

	"klab.dev/klab/broker/log"
)

// producerID is what InitProducerId hands an idempotent producer: an id,
// and an epoch, which together name one session of the producer. A broker
// keeps, per partition, the sequence numbers it last wrote for each.
type producerID struct {
	id    int64
	epoch int16
}

// stamp is what an idempotent producer writes in a batch's header: who
// sent it, and the sequence number of its first record (the base
// sequence). The other records' sequences follow from their offset deltas.
type stamp struct {
	producer     producerID
	baseSequence int32
}

// partitionSequences is an idempotent producer's bookkeeping for one
// partition: the sequence its next batch starts at, and the batches that
// have a sequence and no final answer yet. The broker takes a producer's
// batches of a partition only in sequence order, so this list is what the
// producer needs to keep them in that order across retries.
type partitionSequences struct {
	// session is the producer id and epoch the partition's sequences count
	// in. After an epoch bump for another partition's sake, it stays the
	// old one until the batches stamped in it have their answers: they may
	// be written already, and only under their first stamp can the broker
	// recognise their retries.
	session producerID
	next    int32 // the base sequence of the next batch assigned one
	// unacked are the batches stamped and not yet acknowledged, failed or
	// expired, in sequence order: in flight, or waiting to be sent again.
	unacked []*batch
}

// assign gives a batch the producer id, epoch and base sequence it will
// carry, the first time it is drained: the partition's next sequence,
// which then moves on by the batch's record count. Sequences are int32 and
// wrap, as the broker counts them (log.AddSequence): after 2147483647
// comes 0. A batch that
// has its stamp already is a retry, and keeps it: the broker must see the
// very batch it may have written already, to recognise it as a duplicate,
// not a new one. The batch joins the partition's unacknowledged batches.
func (s *partitionSequences) assign(b *batch, id producerID) error {
	//klab:lesson 09 begin (*partitionSequences).assign
	if b.stamp != nil {
		return nil
	}
	b.stamp = &stamp{producer: id, baseSequence: s.next}
	s.next = log.AddSequence(s.next, b.count)
	s.unacked = append(s.unacked, b)
	return nil
	//klab:lesson 09 stub
	// return lessons.Todo("09", "(*partitionSequences).assign")
	//klab:lesson 09 end
}

// first is the partition's first unacknowledged batch, nil if none.
func (s *partitionSequences) first() *batch {
	if len(s.unacked) == 0 {
		return nil
	}
	return s.unacked[0]
}

// forget drops a batch that has its final answer from the unacknowledged.
func (s *partitionSequences) forget(b *batch) {
	s.unacked = slices.DeleteFunc(s.unacked, func(u *batch) bool { return u == b })
}

// retryPosition is where b, back for a retry, goes in its partition's
// queue q: behind the retried batches that come before it in sequence.
// Those wait at the front of q, in sequence order, ahead of every batch
// never sent; b's answer may come after theirs (requests to two leaders
// are answered by two goroutines), so its place is found, not assumed.
func (s *partitionSequences) retryPosition(q *queue, b *batch) int {
	i := 0
	for _, u := range s.unacked {
		if u == b {
			break
		}
		if i < len(q.batches) && q.batches[i] == u {
			i++
		}
	}
	return i
}
