package producer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// idempotence is an idempotent producer's state, guarded by Producer.mu:
// its producer id, and each partition's sequences (lesson 09).
//
// When the producer's sequences and a broker's no longer agree in a
// partition (the broker lost batches it had acknowledged, or never got one
// that failed for good or expired, so that the next batch leaves a gap no
// retry can fill), the producer starts a new session: it stops sending,
// waits for the answer to every request in flight, bumps its epoch itself,
// and numbers that partition's unacknowledged batches again from 0 in the
// new epoch. This is the Java client's way since KIP-360: a broker takes a
// newer epoch at sequence 0, so no round trip is needed. Only an epoch at
// 32767, the last, needs a new id from InitProducerId (librdkafka asks for
// a new id every time).
//
// The other partitions keep their session until their batches stamped in
// it have their answers, as the Java client's do (KAFKA-12152): such a
// batch may be written already, its answer lost, and renumbered in the new
// epoch its retry would be written a second time. A partition moves to
// the new session when it has nothing unacknowledged; its new batches wait
// for that.
type idempotence struct {
	id producerID
	// needID is set until InitProducerId answers, and again when the
	// sequences went out of step with a broker's: nothing is sent then,
	// until a new session (a new epoch, or a new id) begins.
	needID bool
	haveID bool // InitProducerId has answered once: the epoch can be bumped here
	// lost are the partitions whose sequences went out of step with their
	// broker's: the new session renumbers them.
	lost    map[topicPartition]bool
	asking  bool      // an InitProducerId is under way
	retryAt time.Time // after a failed InitProducerId, when to ask again
	lastErr error     // why the last InitProducerId failed

	partitions map[topicPartition]*partitionSequences
}

func newIdempotence() *idempotence {
	return &idempotence{needID: true, partitions: map[topicPartition]*partitionSequences{}, lost: map[topicPartition]bool{}}
}

// sequences returns a partition's sequence bookkeeping.
func (s *idempotence) sequences(tp topicPartition) *partitionSequences {
	ps := s.partitions[tp]
	if ps == nil {
		ps = &partitionSequences{session: s.id}
		s.partitions[tp] = ps
	}
	return ps
}

// mayDrain reports whether the first batch of a partition's queue may be
// sent now. Nothing goes without a producer id. A broker takes a
// partition's batches only in sequence order, so after a failure the
// batches behind the failed one fail too (OUT_OF_ORDER_SEQUENCE_NUMBER)
// and come back for a retry, in sequence order: a retried batch goes again
// only once it is the first unacknowledged one, so that, while retries
// last, the partition has one request in flight (the Java client's rule).
// A new batch may join those in flight while fewer than 5 are
// unacknowledged: the broker remembers the last 5 of each producer, and
// could not recognise a retry of an older one. A new batch of a partition
// still in an old session waits until that session's batches have their
// answers; then the partition moves to the current session, from 0.
func (s *idempotence) mayDrain(first *batch) bool {
	if s.needID {
		return false
	}
	seqs := s.sequences(first.tp)
	if first.stamp != nil {
		return first == seqs.first()
	}
	if seqs.session != s.id {
		if len(seqs.unacked) > 0 {
			return false // an answer will wake the sender
		}
		seqs.session, seqs.next = s.id, 0
	}
	return len(seqs.unacked) < maxInFlightForIdempotence
}

// judge reads the error a broker answered a batch of the idempotent
// producer with, and returns the error to act on and whether to send the
// batch again.
//
// DUPLICATE_SEQUENCE_NUMBER, from brokers that recognise a retry but no
// longer know its offsets, says the batch is written: a success without
// an offset, as the Java client takes it. (Brokers that still know them
// answer the retry with no error and the offset the batch first got.)
//
// OUT_OF_ORDER_SEQUENCE_NUMBER and UNKNOWN_PRODUCER_ID say the broker
// expected another sequence. If a batch before this one is unacknowledged,
// that one is being retried and this one waits its turn. If this one is
// the first, the broker lost what it had, or a batch before it failed for
// good or expired without being written: no retry can fill that gap, so
// the producer starts a new session (a new epoch), and this batch is sent
// again in it.
func (s *idempotence) judge(b *batch, err error) (_ error, retry bool) {
	switch {
	case errors.Is(err, kerr.DuplicateSequenceNumber):
		return nil, false
	case errors.Is(err, kerr.OutOfOrderSequenceNumber), errors.Is(err, kerr.UnknownProducerID):
		if b == s.sequences(b.tp).first() {
			s.needID, s.lost[b.tp] = true, true
		}
		return err, true
	}
	return err, client.Retriable(err)
}

// begin starts a session under a new producer id or epoch. The partitions
// whose sequences went out of step with their broker's start again at 0
// in it: their batches waiting to be sent again lose their stamps, to be
// numbered afresh, in the order they wait, when they are next drained.
// Nothing is in flight (the session begins once every request was
// answered, and nothing was sent since), and none of those batches is
// written: the broker refused the first of them, and so every one behind
// it. The other partitions keep their session until their stamped batches
// have their answers (mayDrain).
func (s *idempotence) begin(id producerID, acc *accumulator) {
	s.id, s.needID, s.haveID, s.lastErr = id, false, true, nil
	for tp := range s.lost {
		s.partitions[tp] = &partitionSequences{session: id}
		if q := acc.queues[tp]; q != nil {
			for _, b := range q.batches {
				b.stamp = nil
			}
		}
	}
	clear(s.lost)
}

// askForProducerID starts a new session when the producer needs one, has
// records to send, and has no request in flight; the caller holds p.mu.
// With an id already, it bumps the epoch at once; the first time, or at
// the last epoch, it asks InitProducerId in the background. A retriable
// failure is tried again after
// retry.backoff.ms, while delivery.timeout.ms bounds the records' wait; a
// failure that will not pass (a broker that does not speak InitProducerId)
// fails the records queued.
func (p *Producer) askForProducerID() {
	s := p.idem
	if s.asking || p.closed || len(p.acc.queues) == 0 {
		return
	}
	for _, n := range p.inFlight {
		if n > 0 {
			return // an answer will wake the sender
		}
	}
	if s.haveID && s.id.epoch < math.MaxInt16 {
		// A new session under the same id: the epoch bumped here, as
		// the Java client does (KIP-360).
		s.begin(producerID{id: s.id.id, epoch: s.id.epoch + 1}, p.acc)
		p.poke()
		return
	}
	s.asking = true
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
		id, err := initProducerID(ctx, p.cluster)
		cancel()
		var failed []completion
		p.mu.Lock()
		s.asking = false
		if err == nil {
			s.begin(id, p.acc)
		} else {
			s.lastErr, s.retryAt = err, time.Now().Add(p.cfg.RetryBackoff)
			if !client.Retriable(err) {
				failed = p.failQueued(fmt.Errorf("the idempotent producer has no producer id (enable.idempotence=false does without): %w", err))
			}
		}
		p.mu.Unlock()
		p.complete(failed)
		p.poke()
	}()
}

// initProducerID asks any broker for a producer id, with InitProducerId
// and no transactional.id: the broker hands out an id no producer had,
// epoch 0.
func initProducerID(ctx context.Context, cluster *client.Cluster) (producerID, error) {
	conn, err := cluster.Any(ctx)
	if err != nil {
		return producerID{}, err
	}
	req := kmsg.NewPtrInitProducerIDRequest() // TransactionalID nil: no transactions
	// The Java client sends transaction.timeout.ms, 60000 by default,
	// though without a transactional.id there is no transaction to bound.
	req.TransactionTimeoutMillis = 60000
	resp, err := conn.Request(ctx, req)
	if err != nil {
		var ke *kerr.Error
		if !errors.As(err, &ke) {
			conn.Close() // no answer: the connection's answers are out of step now
		}
		return producerID{}, fmt.Errorf("InitProducerId to %s: %w", conn.Addr(), err)
	}
	r := resp.(*kmsg.InitProducerIDResponse)
	if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
		return producerID{}, fmt.Errorf("InitProducerId to %s: %w", conn.Addr(), err)
	}
	return producerID{id: r.ProducerID, epoch: r.ProducerEpoch}, nil
}
