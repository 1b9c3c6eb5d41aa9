package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// Record is a record to send.
type Record struct {
	Topic   string
	Key     []byte // nil: the sticky partitioner picks the partition
	Value   []byte // nil: a tombstone, on a compacted topic
	Headers []kmsg.Header
	// Timestamp is the record's create time; zero means now.
	Timestamp time.Time
	// Partition, when set, names the partition and bypasses the partitioner.
	Partition *int32
}

// RecordMetadata is where a record was written.
type RecordMetadata struct {
	Topic     string
	Partition int32
	// Offset is the record's offset, or -1 with acks=0, which gets no answer.
	Offset    int64
	Timestamp time.Time
}

// Future is the result of an asynchronous send.
type Future struct {
	size      int   // what the record holds of buffer.memory
	timestamp int64 // the record's, in milliseconds
	callback  func(RecordMetadata, error)

	mu     sync.Mutex
	done   chan struct{} // made only if someone waits
	isDone bool
	md     RecordMetadata
	err    error
}

// Wait waits for the record's answer.
func (f *Future) Wait(ctx context.Context) (RecordMetadata, error) {
	select {
	case <-f.Done():
		return f.md, f.err
	case <-ctx.Done():
		return RecordMetadata{}, ctx.Err()
	}
}

// Done is closed once the answer is in.
func (f *Future) Done() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		f.done = make(chan struct{})
		if f.isDone {
			close(f.done)
		}
	}
	return f.done
}

// complete runs the callback, then marks the future done, as Kafka's
// producer does: whoever waits on the future sees the callback's effects.
func (f *Future) complete(md RecordMetadata, err error) {
	if f.callback != nil {
		f.callback(md, err)
	}
	f.mu.Lock()
	f.md, f.err, f.isDone = md, err, true
	if f.done != nil {
		close(f.done)
	}
	f.mu.Unlock()
}

// ErrClosed is the error for sends after Close.
var ErrClosed = errors.New("producer: closed")

// Producer sends records to Kafka. It is safe for concurrent use.
type Producer struct {
	cfg     Config
	cluster *client.Cluster
	counts  sync.Map // topic -> partition count, as the metadata last said

	mu         sync.Mutex
	changed    *sync.Cond // records completed, buffer space freed, metadata learned
	acc        *accumulator
	sticky     sticky
	buffered   int           // bytes of records not yet answered
	unanswered int           // records not yet answered
	inFlight   map[int32]int // requests in flight per broker
	waiting    map[int32]chan inFlight
	waiters    sync.WaitGroup
	closed     bool
	refreshing bool
	lastLearn  time.Time
	idem       *idempotence // set by New, nil if not idempotent; its fields are guarded by mu
	whyNotIdem string       // set by New: why the producer is not idempotent

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

// New starts a producer. It connects lazily, on the first send.
func New(cfg Config) (*Producer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	idempotent, whyNot, err := cfg.idempotence()
	if err != nil {
		return nil, err
	}
	p := &Producer{
		cfg:      cfg,
		cluster:  client.NewCluster(cfg.BootstrapServers, cfg.ClientID),
		acc:      newAccumulator(cfg.BatchSize, cfg.Linger),
		sticky:   sticky{current: map[string]int32{}},
		inFlight: map[int32]int{},
		waiting:  map[int32]chan inFlight{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if idempotent {
		p.idem = newIdempotence()
	} else {
		p.whyNotIdem = whyNot
	}
	p.changed = sync.NewCond(&p.mu)
	go p.run()
	return p, nil
}

// Idempotent reports whether the producer is idempotent and, if not, why:
// enable.idempotence=false, or the setting the default gave way to, as the
// Java client logs it when it turns idempotence off.
func (p *Producer) Idempotent() (bool, string) {
	return p.idem != nil, p.whyNotIdem
}

// RequestsInFlight is how many Produce requests await their answers, all
// brokers together: the Java producer's requests-in-flight metric. With
// idempotence it is at most five per partition's leader; a test reads it
// to know that requests are out when it breaks something.
func (p *Producer) RequestsInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, k := range p.inFlight {
		n += k
	}
	return n
}

// Send sends a record and waits for its answer: the synchronous style.
func (p *Producer) Send(ctx context.Context, r *Record) (RecordMetadata, error) {
	return p.SendAsync(r, nil).Wait(ctx)
}

// SendAsync queues a record and returns at once: the asynchronous style.
// The answer arrives through the Future, and through callback if it is not
// nil. Callbacks run on the producer's goroutines, those of one partition
// in the order the records were sent; they must not block.
func (p *Producer) SendAsync(r *Record, callback func(RecordMetadata, error)) *Future {
	f := &Future{callback: callback}
	if err := p.enqueue(r, f); err != nil {
		f.complete(RecordMetadata{Topic: r.Topic, Partition: -1, Offset: -1}, err)
	}
	return f
}

// enqueue picks the record's partition and puts it in the accumulator.
func (p *Producer) enqueue(r *Record, f *Future) error {
	now := time.Now()
	deadline := now.Add(p.cfg.MaxBlock)
	partitions, err := p.partitionCount(r.Topic, deadline)
	if err != nil {
		return err
	}
	if r.Partition != nil && int(*r.Partition) >= partitions {
		// Perhaps the topic grew since the metadata was fetched.
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		p.cluster.Refresh(ctx, r.Topic)
		cancel()
		if partitions = len(p.cluster.Partitions(r.Topic)); partitions > 0 {
			p.counts.Store(r.Topic, partitions)
		} else {
			p.counts.Delete(r.Topic)
			return fmt.Errorf("%w: topic %s is no longer in the metadata", kerr.UnknownTopicOrPartition, r.Topic)
		}
	}
	ts := r.Timestamp
	if ts.IsZero() {
		ts = now
	}
	rec := kmsg.Record{Key: r.Key, Value: r.Value, Headers: r.Headers}
	f.size, f.timestamp = recordSize(rec), ts.UnixMilli()
	size := f.size

	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && p.buffered > 0 && p.buffered+size > p.cfg.BufferMemory {
		if !waitUntil(p.changed, deadline) {
			return fmt.Errorf("%w: buffer.memory (%d bytes) stayed full for max.block.ms", kerr.RequestTimedOut, p.cfg.BufferMemory)
		}
	}
	if p.closed {
		return ErrClosed
	}
	tp := topicPartition{topic: r.Topic}
	switch {
	case r.Partition != nil:
		if *r.Partition < 0 || int(*r.Partition) >= partitions {
			return fmt.Errorf("%w: partition %d of %s, which has %d", kerr.UnknownTopicOrPartition, *r.Partition, r.Topic, partitions)
		}
		tp.partition = *r.Partition
	case r.Key != nil:
		if tp.partition, err = keyPartition(r.Key, partitions); err != nil {
			return err
		}
	default:
		tp.partition = p.sticky.partition(r.Topic, partitions)
	}
	appended, opened, err := p.acc.append(tp, rec, ts.UnixMilli(), f, now, r.Key == nil && r.Partition == nil)
	if err != nil {
		return err
	}
	if !appended {
		// The sticky partition's batch is full: move on to another
		// partition and start a batch there.
		p.sticky.next(r.Topic, partitions)
		tp.partition = p.sticky.partition(r.Topic, partitions)
		if _, opened, err = p.acc.append(tp, rec, ts.UnixMilli(), f, now, false); err != nil {
			return err
		}
	}
	p.buffered += size
	p.unanswered++
	if opened || p.cfg.Linger == 0 {
		p.poke()
	}
	return nil
}

// partitionCount returns how many partitions a topic has, asking for
// metadata until the topic is known or max.block.ms has passed, as the Java
// client's send does. The error then wraps what the metadata last said of
// the topic, UNKNOWN_TOPIC_OR_PARTITION for one that does not exist, rather
// than the deadline that cut the last request short.
func (p *Producer) partitionCount(topic string, deadline time.Time) (int, error) {
	if n, ok := p.counts.Load(topic); ok {
		return n.(int), nil
	}
	var last error
	for {
		if parts := p.cluster.Partitions(topic); len(parts) > 0 {
			p.counts.Store(topic, len(parts))
			return len(parts), nil
		}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.cluster.Refresh(ctx, topic)
		cutShort := ctx.Err() != nil
		cancel()
		if parts := p.cluster.Partitions(topic); len(parts) > 0 {
			return len(parts), nil
		}
		if err != nil && (last == nil || !cutShort) {
			last = err
		}
		if time.Now().Add(p.cfg.RetryBackoff).After(deadline) {
			if last == nil {
				last = kerr.UnknownTopicOrPartition // answered, but with no partitions
			}
			return 0, fmt.Errorf("topic %s not present in metadata after max.block.ms (%s): %w", topic, p.cfg.MaxBlock, last)
		}
		time.Sleep(p.cfg.RetryBackoff) // retry.backoff.ms between metadata requests
	}
}

// waitUntil waits on cond until it is signalled or deadline passes, and
// reports whether it was signalled in time.
func waitUntil(cond *sync.Cond, deadline time.Time) bool {
	if !time.Now().Before(deadline) {
		return false
	}
	t := time.AfterFunc(time.Until(deadline), cond.Broadcast)
	defer t.Stop()
	cond.Wait()
	return time.Now().Before(deadline)
}

// poke wakes the sender.
func (p *Producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush sends every buffered record at once, without waiting for linger.ms,
// and waits until each has its answer.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.acc.flushing++
	p.mu.Unlock()
	p.poke()
	defer func() {
		p.mu.Lock()
		p.acc.flushing--
		p.mu.Unlock()
	}()
	stopWaiting := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.changed.Broadcast()
		p.mu.Unlock()
	})
	defer stopWaiting()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.unanswered > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("flush: %d records still unanswered: %w", p.unanswered, ctx.Err())
		}
		p.changed.Wait()
	}
	return nil
}

// Close flushes every buffered record, waits for the answers, and stops
// the producer: nothing sent before Close is lost. Sends after Close fail.
func (p *Producer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.DeliveryTimeout)
	defer cancel()
	err := p.Flush(ctx)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return err
	}
	p.closed = true
	p.changed.Broadcast()
	p.mu.Unlock()
	close(p.stop)
	<-p.done
	// No more requests will be sent. Wait for the answers to those that
	// were, then fail whatever is still queued: Close leaves no record
	// without an answer.
	p.mu.Lock()
	for _, q := range p.waiting {
		close(q)
	}
	p.mu.Unlock()
	p.waiters.Wait()
	p.mu.Lock()
	left := p.failQueued(ErrClosed)
	p.mu.Unlock()
	p.complete(left)
	p.cluster.Close()
	return err
}

// failQueued fails every batch in the accumulator; the caller holds p.mu
// and completes the returned futures after releasing it.
func (p *Producer) failQueued(err error) []completion {
	var out []completion
	for _, q := range p.acc.queues {
		for _, b := range q.batches {
			out = append(out, p.fail(b, err)...)
		}
		q.batches = nil
	}
	return out
}
