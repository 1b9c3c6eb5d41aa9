package producer

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/compress"
	"klab.dev/klab/broker/log"
)

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// accumulator is the record accumulator: for each partition, a queue of
// batches, the last one open for records, the others full and waiting for
// the sender.
type accumulator struct {
	batchSize int
	linger    time.Duration
	queues    map[topicPartition]*queue
	flushing  int // while above zero, every batch is ready at once
}

// queue is one partition's batches, oldest first.
type queue struct {
	batches []*batch
}

// batch is records bound for one partition, to be sent as one record batch.
// delivery.timeout.ms counts from its creation, as Kafka's does.
type batch struct {
	tp       topicPartition
	created  time.Time
	records  []byte // the encoded records, uncompressed
	count    int32
	firstTS  int64
	maxTS    int64
	futures  []*Future // one per record, in order
	attempts int
	retryAt  time.Time
	sealed   bool   // sent once: closed to new records
	stamp    *stamp // an idempotent producer's id and sequence for it, once drained (sequence.go)
}

func newAccumulator(batchSize int, linger time.Duration) *accumulator {
	return &accumulator{batchSize: batchSize, linger: linger, queues: map[topicPartition]*queue{}}
}

func (a *accumulator) queue(tp topicPartition) *queue {
	q := a.queues[tp]
	if q == nil {
		q = &queue{}
		a.queues[tp] = q
	}
	return q
}

// append adds a record to its partition's open batch, or opens a new batch
// when there is none or the record would take the open one past
// batch.size (a record bigger than batch.size gets a batch of its own). It
// reports whether it opened one. With abortOnNewBatch, it appends nothing
// if it would have to open one, so that the sticky partitioner can move
// keyless records to another partition first (KIP-480).
func (a *accumulator) append(tp topicPartition, r kmsg.Record, ts int64, f *Future, now time.Time, abortOnNewBatch bool) (appended, opened bool, err error) {
	//klab:lesson 04 begin (*accumulator).append
	q := a.queue(tp)
	var b *batch
	if n := len(q.batches); n > 0 {
		b = q.batches[n-1]
	}
	if b == nil || b.sealed || log.BatchHeaderSize+len(b.records)+f.size > a.batchSize {
		if abortOnNewBatch {
			return false, false, nil
		}
		b = &batch{tp: tp, created: now, firstTS: ts, maxTS: ts, records: make([]byte, 0, a.batchSize)}
		q.batches = append(q.batches, b)
		opened = true
	}
	b.add(r, ts, f)
	return true, opened, nil
	//klab:lesson 04 stub
	// return false, false, lessons.Todo("04", "(*accumulator).append")
	//klab:lesson 04 end
}

// add encodes a record into the batch, its offset and timestamp relative to
// the batch's first.
func (b *batch) add(r kmsg.Record, ts int64, f *Future) {
	r.OffsetDelta = b.count
	r.TimestampDelta64 = ts - b.firstTS
	b.records = log.AppendRecord(b.records, r)
	b.count++
	b.maxTS = max(b.maxTS, ts)
	b.futures = append(b.futures, f)
}

// recordSize is what a record takes in a batch. Its offset and timestamp
// deltas are not known yet; they take a few bytes at most.
func recordSize(r kmsg.Record) int {
	return log.RecordSize(r) + 4
}

// ready reports whether the first batch of q should be sent now: because
// another batch follows it (so it is full), it holds batch.size bytes, it
// has waited linger.ms, or the producer is flushing; but not while it waits
// out a retry's backoff.
func (a *accumulator) ready(q *queue, now time.Time) (bool, error) {
	//klab:lesson 04 begin (*accumulator).ready
	b := q.batches[0]
	if now.Before(b.retryAt) {
		return false, nil
	}
	full := len(q.batches) > 1 || log.BatchHeaderSize+len(b.records) >= a.batchSize
	return full || now.Sub(b.created) >= a.linger || a.flushing > 0, nil
	//klab:lesson 04 stub
	// return false, lessons.Todo("04", "(*accumulator).ready")
	//klab:lesson 04 end
}

// wakeAt is when the first batch of q, found not ready at now, may be
// ready, if nothing else happens: when its retry backoff ends, if it is
// waiting one out (a full batch, or one Flush waits for, is ready then,
// however long linger.ms is), else when it has lingered.
func (a *accumulator) wakeAt(q *queue, now time.Time) time.Time {
	b := q.batches[0]
	if now.Before(b.retryAt) {
		return b.retryAt
	}
	return b.created.Add(a.linger)
}

// encode seals the batch as a v2 record batch, compressed with codec. A
// batch of a producer that is not idempotent carries producer id, epoch
// and base sequence -1; an idempotent one carries its stamp, the same on
// every attempt.
func (b *batch) encode(codec compress.Codec) ([]byte, error) {
	records, err := compress.Compress(codec, b.records)
	if err != nil {
		return nil, err
	}
	id, epoch, sequence := int64(-1), int16(-1), int32(-1)
	if b.stamp != nil {
		id, epoch, sequence = b.stamp.producer.id, b.stamp.producer.epoch, b.stamp.baseSequence
	}
	return log.SealBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec),
		LastOffsetDelta:      b.count - 1,
		FirstTimestamp:       b.firstTS,
		MaxTimestamp:         b.maxTS,
		ProducerID:           id,
		ProducerEpoch:        epoch,
		FirstSequence:        sequence,
		NumRecords:           b.count,
	}, records), nil
}
