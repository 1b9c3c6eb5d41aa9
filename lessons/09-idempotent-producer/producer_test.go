package idempotence_test

// The idempotent producer against franz-go's kfake, whose answers a test
// can replace: a failed batch with four behind it in flight, a broker that
// lost the producer's batches, a retry of a batch the broker wrote, and an
// InitProducerId that fails. The same behaviour against klab's brokers is
// in cluster_test.go.

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/producer"
)

// sequences lists the base sequences of batches.
func sequences(bs []sentBatch) []int32 {
	var out []int32
	for _, b := range bs {
		out = append(out, b.sequence)
	}
	return out
}

// Five batches of one partition are in flight when the first fails, not
// written (NOT_LEADER_OR_FOLLOWER). The broker refuses the four behind it
// with OUT_OF_ORDER_SEQUENCE_NUMBER: their predecessor is missing. The
// producer sends the five again in sequence order, each once the one
// before it is acknowledged, with the ids and sequences of their first
// attempt; then the batches that waited behind them. Every record is
// written once, in the order it was sent, and no new producer id is
// needed: the broker's sequences and the producer's never disagreed.
func TestBatchesBehindAFailedOneAreRetriedInSequenceOrder(t *testing.T) {
	f := newFake(t)
	var p atomic.Pointer[producer.Producer]
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		if _, n := f.record(req); n > 1 {
			return nil, nil, false
		}
		// A broker handles a connection's requests one at a time, so the
		// four behind this one wait, written, for its answer.
		waitFor(t, "five requests in flight", func() bool { return p.Load().RequestsInFlight() == 5 })
		return answer(req, kerr.NotLeaderForPartition.Code), nil, true
	})
	p.Store(newProducer(t, f.addrs(), "linger.ms", "60000", "batch.size", "100", "retry.backoff.ms", "10"))
	futures := send(p.Load(), "t", 0, 8) // a batch each
	require.NoError(t, p.Load().Flush(ctx(t)))

	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, offsets(t, futures), "each record at its place in send order")
	assert.Equal(t, valuesFrom(0, 8), values(t, f.addrs(), "t"), "every record once, in send order")
	sent := f.sent()
	require.GreaterOrEqual(t, len(sent), 5)
	assert.Equal(t, []int32{0, 1, 2, 3, 4}, sequences(sent[:5]), "five batches in flight before the first answer: the most a broker remembers")
	assert.Equal(t, []int32{0, 1, 2, 3, 4, 5, 6, 7}, sequences(sent[5:]),
		"the five retried in sequence order, one at a time, none refused again, then the three that waited")
	for i, b := range sent {
		assert.Equal(t, sent[0].producerID, b.producerID, "batch %d: one producer id throughout", i)
		assert.Equal(t, int32(1), b.records, "batch %d", i)
	}
	assert.Equal(t, 1, f.initProducerIDs(), "refusals of batches behind a retried one need no new producer id")
}

// The broker answers a partition's first unacknowledged batch with
// OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID: it lost batches it
// had acknowledged, or the producer's state. No retry in this session can
// satisfy it. The producer starts a new one, as the Java client does
// (KIP-360): the same id, the epoch bumped, and the batch sent again under
// it from sequence 0, without asking InitProducerId again.
func TestABrokerThatLostTheSequenceGetsANewEpoch(t *testing.T) {
	for _, lost := range []*kerr.Error{kerr.OutOfOrderSequenceNumber, kerr.UnknownProducerID} {
		t.Run(lost.Message, func(t *testing.T) {
			f := newFake(t)
			f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				f.KeepControl()
				if _, n := f.record(req); n == 2 {
					return answer(req, lost.Code), nil, true
				}
				return nil, nil, false
			})
			p := newProducer(t, f.addrs(), "linger.ms", "0", "retry.backoff.ms", "10")
			assert.Equal(t, []int64{0}, offsets(t, send(p, "t", 0, 1)))
			assert.Equal(t, []int64{1}, offsets(t, send(p, "t", 1, 2)), "the second record, sent again in a new epoch")
			assert.Equal(t, valuesFrom(0, 2), values(t, f.addrs(), "t"))

			sent := f.sent()
			require.Len(t, sent, 3)
			assert.Equal(t, []int32{0, 1, 0}, sequences(sent), "in the new epoch, sequences start at 0")
			for i, b := range sent {
				assert.Equal(t, sent[0].producerID, b.producerID, "batch %d: the same producer id", i)
			}
			assert.Equal(t, []int16{0, 0, 1}, []int16{sent[0].epoch, sent[1].epoch, sent[2].epoch}, "the epoch bumped by the producer")
			assert.Equal(t, 1, f.initProducerIDs(), "no new InitProducerId: the producer bumps its epoch itself")
		})
	}
}

// kfake writes the first batch and answers REQUEST_TIMED_OUT, as a leader
// does when its followers are slow: the producer cannot know the batch was
// written, and sends it again, with the same producer id, epoch and
// sequence. The broker recognises it, writes nothing, and answers with the
// offset the batch got the first time.
func TestARetryOfAWrittenBatchIsAnsweredWithItsFirstOffset(t *testing.T) {
	f := newFake(t)
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		f.record(req)
		return nil, nil, false
	})
	f.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut}) // written, then answered so
	p := newProducer(t, f.addrs(), "linger.ms", "0", "retry.backoff.ms", "10")
	assert.Equal(t, []int64{0}, offsets(t, send(p, "t", 0, 1)), "the retry is answered with the first attempt's offset")
	assert.Equal(t, []int64{1}, offsets(t, send(p, "t", 1, 2)))
	assert.Equal(t, valuesFrom(0, 2), values(t, f.addrs(), "t"), "written once")
	sent := f.sent()
	require.Len(t, sent, 3)
	assert.Equal(t, sent[0], sent[1], "the retry carries the producer id, epoch and sequence of the first attempt")
	assert.Equal(t, int32(1), sent[2].sequence)
}

// Brokers before Kafka 1.0 answered a retry they recognised, but whose
// offsets they no longer knew, with DUPLICATE_SEQUENCE_NUMBER. The batch
// is written: a success, without an offset.
func TestDuplicateSequenceNumberIsASuccessWithoutAnOffset(t *testing.T) {
	f := newFake(t)
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		return answer(req, kerr.DuplicateSequenceNumber.Code), nil, true
	})
	p := newProducer(t, f.addrs(), "linger.ms", "0")
	md, err := send(p, "t", 0, 1)[0].Wait(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, int64(-1), md.Offset)
}

// InitProducerId answered with a retriable error is asked again after
// retry.backoff.ms; answered with one that will not pass, the records
// waiting for it fail, saying why.
func TestInitProducerIDIsRetriedUnlessItCannotPass(t *testing.T) {
	f := newFake(t)
	f.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.CoordinatorNotAvailable, Count: 2})
	p := newProducer(t, f.addrs(), "linger.ms", "0", "retry.backoff.ms", "10")
	assert.Equal(t, []int64{0}, offsets(t, send(p, "t", 0, 1)))
	assert.Equal(t, 3, f.initProducerIDs(), "two failures, then an id")

	f = newFake(t)
	f.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.ClusterAuthorizationFailed})
	p = newProducer(t, f.addrs(), "linger.ms", "0", "retry.backoff.ms", "10")
	_, err := send(p, "t", 0, 1)[0].Wait(ctx(t))
	require.ErrorIs(t, err, kerr.ClusterAuthorizationFailed)
	assert.ErrorContains(t, err, "producer id")
	assert.ErrorContains(t, err, "enable.idempotence=false", "the error says how to do without")
}

// A batch carries the id and the epoch InitProducerId gave, whatever they
// are: here epoch 5, as a producer resumed under a transactional.id gets
// one (lesson 16).
func TestBatchesCarryTheIDAndEpochInitProducerIDGave(t *testing.T) {
	f := newFake(t)
	f.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 4242, 5
		return resp, nil, true
	})
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		f.record(req)
		return answer(req, 0), nil, true
	})
	p := newProducer(t, f.addrs(), "linger.ms", "0")
	offsets(t, send(p, "t", 0, 2))
	sent := f.sent()
	require.NotEmpty(t, sent)
	for i, b := range sent {
		assert.Equal(t, int64(4242), b.producerID, "batch %d", i)
		assert.Equal(t, int16(5), b.epoch, "batch %d", i)
	}
}

// At epoch 32767, the last, a new session cannot bump the epoch: the
// producer asks InitProducerId for a new id, and starts it at epoch 0.
func TestAtTheLastEpochTheProducerAsksForANewID(t *testing.T) {
	f := newFake(t)
	var inits atomic.Int32
	f.ControlKey(int16(kmsg.InitProducerID), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = 7, 32767
		if inits.Add(1) > 1 {
			resp.ProducerID, resp.ProducerEpoch = 8, 0
		}
		return resp, nil, true
	})
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		if _, n := f.record(req); n == 2 {
			return answer(req, kerr.OutOfOrderSequenceNumber.Code), nil, true
		}
		return answer(req, 0), nil, true
	})
	p := newProducer(t, f.addrs(), "linger.ms", "0", "retry.backoff.ms", "10")
	offsets(t, send(p, "t", 0, 1))
	offsets(t, send(p, "t", 1, 2))
	sent := f.sent()
	require.Len(t, sent, 3)
	assert.Equal(t, []sentBatch{{7, 32767, 0, 1}, {7, 32767, 1, 1}, {8, 0, 0, 1}}, sent)
	assert.Equal(t, int32(2), inits.Load())
}

// Partition 1's batch is written, but answered REQUEST_TIMED_OUT; in the
// same request, partition 0's is refused with OUT_OF_ORDER_SEQUENCE_NUMBER,
// the first of its partition: a new epoch, for partition 0. Partition 1's
// retry keeps the id, epoch and sequence of its first attempt, so that the
// broker recognises it: renumbered in the new epoch, it would be written a
// second time (KAFKA-12152). Partition 1 moves to the new epoch once it
// has nothing unanswered. (The test answers every Produce itself: kfake
// fences an old epoch in every partition once one has seen a newer, where
// Kafka keeps epochs per partition.)
func TestANewEpochLeavesAnotherPartitionsRetryAsItWas(t *testing.T) {
	f := newFake(t, kfake.SeedTopics(2, "two"))
	var requests atomic.Int32
	f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		f.KeepControl()
		f.recordAll(req)
		first := requests.Add(1) == 1
		resp := answer(req, 0)
		for i := range resp.(*kmsg.ProduceResponse).Topics {
			for j := range resp.(*kmsg.ProduceResponse).Topics[i].Partitions {
				sp := &resp.(*kmsg.ProduceResponse).Topics[i].Partitions[j]
				switch {
				case first && sp.Partition == 0:
					sp.ErrorCode = kerr.OutOfOrderSequenceNumber.Code
				case first && sp.Partition == 1:
					sp.ErrorCode = kerr.RequestTimedOut.Code // as if written, its answer lost
				}
			}
		}
		return resp, nil, true
	})
	p := newProducer(t, f.addrs(), "linger.ms", "60000", "retry.backoff.ms", "10")
	zero, one := int32(0), int32(1)
	first := []*producer.Future{
		p.SendAsync(&producer.Record{Topic: "two", Partition: &zero, Value: []byte("a")}, nil),
		p.SendAsync(&producer.Record{Topic: "two", Partition: &one, Value: []byte("b")}, nil),
	}
	require.NoError(t, p.Flush(ctx(t)))
	offsets(t, first)
	later := p.SendAsync(&producer.Record{Topic: "two", Partition: &one, Value: []byte("c")}, nil)
	require.NoError(t, p.Flush(ctx(t)))
	offsets(t, []*producer.Future{later})

	byPartition := map[int32][]sentBatch{}
	for _, b := range f.sentAll() {
		byPartition[b.partition] = append(byPartition[b.partition], b.sentBatch)
	}
	require.NotEmpty(t, byPartition[0])
	id := byPartition[0][0].producerID
	assert.Equal(t, []sentBatch{{id, 0, 0, 1}, {id, 1, 0, 1}}, byPartition[0], "partition 0: refused, then again in epoch 1 from 0")
	assert.Equal(t, []sentBatch{{id, 0, 0, 1}, {id, 0, 0, 1}, {id, 1, 0, 1}}, byPartition[1],
		"partition 1: its retry as it was first sent, then a new batch in epoch 1, from 0")
}
