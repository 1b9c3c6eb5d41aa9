package producer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// run is the sender: it drains ready batches into Produce requests, one per
// leader, until Close.
func (p *Producer) run() {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := p.drain()
		timer.Reset(max(time.Until(next), 100*time.Microsecond))
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-timer.C:
		}
	}
}

// drain sends what is ready and returns when it should look again.
func (p *Producer) drain() time.Time {
	now := time.Now()
	next := now.Add(p.cfg.MetadataMaxAge)
	byLeader := map[int32][]*batch{}
	var failed []completion
	learned := p.lastLearned()
	refresh := now.Sub(learned) > p.cfg.MetadataMaxAge

	p.mu.Lock()
	for tp, q := range p.acc.queues {
		if len(q.batches) == 0 {
			delete(p.acc.queues, tp)
			continue
		}
		// delivery.timeout.ms bounds a record's wait whatever holds it up:
		// linger, a leader nobody knows, or the in-flight limit.
		for len(q.batches) > 0 && now.After(q.batches[0].created.Add(p.cfg.DeliveryTimeout)) {
			err := fmt.Errorf("%w: delivery.timeout.ms (%s) passed before the broker answered", kerr.RequestTimedOut, p.cfg.DeliveryTimeout)
			if p.idem != nil && p.idem.needID && p.idem.lastErr != nil {
				err = fmt.Errorf("%w; the idempotent producer has no producer id: %v", err, p.idem.lastErr)
			}
			failed = append(failed, p.fail(q.batches[0], err)...)
			q.batches = q.batches[1:]
		}
		if len(q.batches) == 0 {
			continue
		}
		next = earliest(next, q.batches[0].created.Add(p.cfg.DeliveryTimeout))
		ok, err := p.acc.ready(q, now)
		if err != nil {
			for _, b := range q.batches {
				failed = append(failed, p.fail(b, err)...)
			}
			q.batches = nil
			continue
		}
		if !ok {
			next = earliest(next, p.acc.wakeAt(q, now))
			continue
		}
		leader, known := p.leader(tp)
		if !known {
			// Ask again, but at most once per retry.backoff.ms: a topic
			// deleted under queued records would otherwise be asked
			// about in a busy loop until delivery.timeout.ms.
			refresh = refresh || now.Sub(learned) >= p.cfg.RetryBackoff
			next = earliest(next, now.Add(p.cfg.RetryBackoff))
			continue
		}
		if p.inFlight[leader] >= p.cfg.MaxInFlight {
			continue // an answer will wake us
		}
		if p.idem != nil && !p.idem.mayDrain(q.batches[0]) {
			continue // a producer id, or an answer, will wake us
		}
		b := q.batches[0]
		q.batches = q.batches[1:]
		if len(q.batches) > 0 {
			next = now // there is more behind it
		}
		if p.idem != nil {
			seqs := p.idem.sequences(tp)
			if err := seqs.assign(b, seqs.session); err != nil {
				failed = append(failed, p.fail(b, err)...)
				continue
			}
		}
		b.sealed = true // sent: no more records join it, even if it comes back for a retry
		byLeader[leader] = append(byLeader[leader], b)
	}
	for leader := range byLeader {
		p.inFlight[leader]++
	}
	if p.idem != nil && p.idem.needID {
		if now.Before(p.idem.retryAt) {
			next = earliest(next, p.idem.retryAt) // InitProducerId failed: ask again then
		} else {
			p.askForProducerID()
		}
	}
	p.mu.Unlock()

	p.complete(failed)
	for leader, batches := range byLeader {
		p.send(leader, batches)
	}
	if refresh {
		p.refreshMetadata()
	}
	return next
}

func earliest(x, y time.Time) time.Time {
	if y.Before(x) {
		return y
	}
	return x
}

// leader returns the broker that leads a partition, if the metadata says.
func (p *Producer) leader(tp topicPartition) (int32, bool) {
	parts := p.cluster.Partitions(tp.topic)
	if int(tp.partition) >= len(parts) || parts[tp.partition].Err != nil || parts[tp.partition].Leader < 0 {
		return 0, false
	}
	return parts[tp.partition].Leader, true
}

// send writes one Produce request to a leader and hands its answer to a
// goroutine of its own. The write happens here, on the sender, so that
// requests leave in the order batches were drained.
func (p *Producer) send(leader int32, batches []*batch) {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = p.cfg.Acks
	req.TimeoutMillis = int32(p.cfg.RequestTimeout.Milliseconds())
	topics := map[string]int{}
	for _, b := range batches {
		raw, err := b.encode(p.cfg.Compression)
		if err != nil {
			p.answer(leader, batches, nil, err)
			return
		}
		i, ok := topics[b.tp.topic]
		if !ok {
			i = len(req.Topics)
			topics[b.tp.topic] = i
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = b.tp.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = b.tp.partition, raw
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
	conn, err := p.cluster.Broker(ctx, leader)
	var call *client.Call
	if err == nil {
		call, err = conn.Send(ctx, req)
	}
	if err != nil {
		cancel()
		p.answer(leader, batches, nil, err)
		return
	}
	p.answers(leader) <- inFlight{call: call, conn: conn, batches: batches, cancel: cancel, ctx: ctx}
}

// inFlight is a request written and awaiting its answer.
type inFlight struct {
	call    *client.Call
	conn    *client.Conn
	batches []*batch
	ctx     context.Context
	cancel  context.CancelFunc
}

// answers returns the queue of requests in flight to a leader. One
// goroutine per leader takes their answers in the order the requests were
// sent, so that a partition's records are answered, and their callbacks
// run, in the order they were sent, as Kafka's producer guarantees.
func (p *Producer) answers(leader int32) chan<- inFlight {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.waiting[leader]
	if !ok {
		q = make(chan inFlight, p.cfg.MaxInFlight+1)
		p.waiting[leader] = q
		p.waiters.Add(1)
		go func() {
			defer p.waiters.Done()
			for req := range q {
				resp, err := req.call.Wait(req.ctx)
				req.cancel()
				if err != nil {
					req.conn.Close() // its answers are out of step now; a new one will be dialed
				}
				pr, _ := resp.(*kmsg.ProduceResponse)
				p.answer(leader, req.batches, pr, err)
			}
		}()
	}
	return q
}

// completion is a future to complete, outside the producer's lock.
type completion struct {
	f   *Future
	md  RecordMetadata
	err error
}

// complete answers records, running their callbacks, and only then counts
// them answered: Flush returns once every callback has run.
func (p *Producer) complete(cs []completion) {
	if len(cs) == 0 {
		return
	}
	for _, c := range cs {
		c.f.complete(c.md, c.err)
	}
	p.mu.Lock()
	p.unanswered -= len(cs)
	p.changed.Broadcast()
	p.mu.Unlock()
}

// answer settles the batches of one request: each partition's records get
// their offsets, or their batch goes back to the front of its queue to be
// retried, or its records fail.
func (p *Producer) answer(leader int32, batches []*batch, resp *kmsg.ProduceResponse, reqErr error) {
	results := map[topicPartition]kmsg.ProduceResponseTopicPartition{}
	if resp != nil {
		for _, t := range resp.Topics {
			for _, rp := range t.Partitions {
				results[topicPartition{t.Topic, rp.Partition}] = rp
			}
		}
	}
	now := time.Now()
	n := 0
	for _, b := range batches {
		n += len(b.futures)
	}
	done := make([]completion, 0, n)
	retried := false
	p.mu.Lock()
	p.inFlight[leader]--
	for _, b := range batches {
		err := reqErr
		var base int64 = -1
		if err == nil && p.cfg.Acks != 0 {
			rp, ok := results[b.tp]
			switch {
			case !ok:
				err = fmt.Errorf("the broker's answer left out %s-%d", b.tp.topic, b.tp.partition)
			case rp.ErrorCode != 0:
				err = kerr.ErrorForCode(rp.ErrorCode)
				if rp.ErrorMessage != nil {
					err = fmt.Errorf("%w: %s", err, *rp.ErrorMessage)
				}
			default:
				base = rp.BaseOffset
			}
		}
		again := client.Retriable(err)
		if p.idem != nil && err != nil {
			err, again = p.idem.judge(b, err)
		}
		switch {
		case err == nil:
			for i, f := range b.futures {
				md := RecordMetadata{Topic: b.tp.topic, Partition: b.tp.partition, Offset: -1, Timestamp: time.UnixMilli(f.timestamp)}
				if base >= 0 {
					md.Offset = base + int64(i)
				}
				done = append(done, completion{f, md, nil})
			}
			p.release(b)
		case again && b.attempts < p.cfg.Retries && now.Add(p.cfg.RetryBackoff).Before(b.created.Add(p.cfg.DeliveryTimeout)):
			b.attempts++
			b.retryAt = now.Add(p.cfg.RetryBackoff)
			p.requeue(b)
			retried = true
		default:
			done = append(done, p.fail(b, err)...)
		}
	}
	p.changed.Broadcast() // buffer space
	p.mu.Unlock()
	p.complete(done)
	if retried {
		p.refreshMetadata()
	}
	p.poke()
}

// requeue puts a batch back in its partition's queue to be sent again: at
// the front, ahead of the batches never sent, which came after it. An
// idempotent producer's retried batches also wait among themselves in
// sequence order. The caller holds p.mu.
func (p *Producer) requeue(b *batch) {
	q := p.acc.queue(b.tp)
	at := 0
	if p.idem != nil {
		at = p.idem.sequences(b.tp).retryPosition(q, b)
	}
	q.batches = slices.Insert(q.batches, at, b)
}

// fail fails every record of a batch; the caller holds p.mu and completes
// the returned futures after releasing it.
func (p *Producer) fail(b *batch, err error) []completion {
	out := make([]completion, 0, len(b.futures))
	for _, f := range b.futures {
		out = append(out, completion{f, RecordMetadata{Topic: b.tp.topic, Partition: b.tp.partition, Offset: -1}, err})
	}
	p.release(b)
	return out
}

// release frees a batch's buffer space once its records are answered, and
// its place among its partition's unacknowledged batches; complete counts
// them answered after their callbacks.
func (p *Producer) release(b *batch) {
	for _, f := range b.futures {
		p.buffered -= f.size
	}
	if p.idem != nil && b.stamp != nil {
		p.idem.sequences(b.tp).forget(b)
	}
}

// refreshMetadata asks for fresh metadata in the background, once at a time.
func (p *Producer) refreshMetadata() {
	p.mu.Lock()
	if p.refreshing {
		p.mu.Unlock()
		return
	}
	p.refreshing = true
	topics := map[string]bool{}
	for tp := range p.acc.queues {
		topics[tp.topic] = true
	}
	p.mu.Unlock()
	go func() {
		names := make([]string, 0, len(topics))
		for t := range topics {
			names = append(names, t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RequestTimeout)
		p.cluster.Refresh(ctx, names...)
		cancel()
		for _, t := range names {
			if n := len(p.cluster.Partitions(t)); n > 0 {
				p.counts.Store(t, n) // a topic may have grown
			}
		}
		p.mu.Lock()
		p.refreshing = false
		p.lastLearn = time.Now()
		p.mu.Unlock()
		p.poke()
	}()
}

func (p *Producer) lastLearned() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastLearn.IsZero() {
		p.lastLearn = time.Now()
	}
	return p.lastLearn
}
