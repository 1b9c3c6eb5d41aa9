package clustertest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker/log"
)

// Load produces to one partition, acks=all, from a goroutine, until
// stopped, and records what the cluster acknowledged: the raw material of
// a reliability check. Records are numbered values, v00000001 on, each
// written once by the application; the client retries on its own, as any
// Kafka producer does, and without idempotence (lesson 09) a retry can
// write a record twice. StartIdempotentLoad's producer is idempotent: its
// retries must land once.
type Load struct {
	topic     string
	partition int32
	cl        *kgo.Client

	mu     sync.Mutex
	every  time.Duration    // the pause between two records; 0: as fast as acknowledged
	acked  map[int64]string // offset -> value, as acknowledged
	failed map[string]int   // error text -> how many records failed with it
	sent   int

	cancel context.CancelFunc
	done   chan struct{}
}

// StartLoad starts producing to topic's partition, without idempotence.
func (c *Cluster) StartLoad(topic string, partition int32) *Load {
	c.t.Helper()
	return c.startLoad(topic, partition, kgo.DisableIdempotentWrite())
}

// StartIdempotentLoad starts producing to topic's partition with franz-go's
// defaults: idempotent, up to five requests in flight.
func (c *Cluster) StartIdempotentLoad(topic string, partition int32) *Load {
	c.t.Helper()
	return c.startLoad(topic, partition)
}

func (c *Cluster) startLoad(topic string, partition int32, opts ...kgo.Opt) *Load {
	c.t.Helper()
	cl := c.Client(append(opts,
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProduceRequestTimeout(3*time.Second),
		// A request to a frozen broker gets no answer: give up on it after
		// the produce timeout and two seconds (franz-go's default is ten).
		kgo.RequestTimeoutOverhead(2*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond),
		kgo.MaxBufferedRecords(100),
	)...)
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{topic: topic, partition: partition, cl: cl, acked: map[int64]string{}, failed: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx)
	return l
}

func (l *Load) run(ctx context.Context) {
	defer close(l.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 1; ctx.Err() == nil; i++ {
		value := fmt.Sprintf("v%08d", i)
		l.mu.Lock()
		l.sent++
		every := l.every
		l.mu.Unlock()
		if every > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(every):
			}
		}
		wg.Add(1)
		// Produce blocks while 100 records are buffered: that paces the load.
		l.cl.Produce(context.Background(), &kgo.Record{Partition: l.partition, Value: []byte(value)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			l.mu.Lock()
			defer l.mu.Unlock()
			if err != nil {
				l.failed[err.Error()]++
				return
			}
			l.acked[r.Offset] = value
		})
	}
}

// Limit paces the load to about perSecond records a second, for a test
// that runs long: unpaced, a load writes as fast as the cluster
// acknowledges, and a minute of it is millions of records to read back.
func (l *Load) Limit(perSecond int) *Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.every = time.Second / time.Duration(perSecond)
	return l
}

// Acked is how many records have been acknowledged so far.
func (l *Load) Acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// WaitAcked waits until at least n more records than now are acknowledged.
func (l *Load) WaitAcked(c *Cluster, n int, timeout time.Duration) {
	c.t.Helper()
	want := l.Acked() + n
	c.WaitFor(timeout, fmt.Sprintf("%d acknowledged records", want), func() bool { return l.Acked() >= want })
}

// Stop stops producing and waits for every record in flight to be
// acknowledged or to fail.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}

// Report is what a Load saw and what a check found.
type Report struct {
	Sent, Acked, Failed int
	// Read is how many records the partition holds; Duplicates how many
	// of them repeat a value read before (a retried write that had landed).
	Read, Duplicates int
}

func (r Report) String() string {
	return fmt.Sprintf("sent %d, acknowledged %d, failed %d; read back %d, of which %d duplicates", r.Sent, r.Acked, r.Failed, r.Read, r.Duplicates)
}

// Check reads the whole partition back from its leader and checks the
// acknowledged writes against it: every acknowledged record is there, at
// the offset it was acknowledged at, with its value; offsets only go
// forward, no offset is read twice. It fails the test otherwise.
func (l *Load) Check(c *Cluster) Report {
	c.t.Helper()
	l.mu.Lock()
	acked := make(map[int64]string, len(l.acked))
	for k, v := range l.acked {
		acked[k] = v
	}
	rep := Report{Sent: l.sent, Acked: len(l.acked)}
	for _, n := range l.failed {
		rep.Failed += n
	}
	failures := fmt.Sprint(l.failed)
	l.mu.Unlock()
	records := c.ReadAll(l.topic, l.partition)
	rep.Read = len(records)
	seen := map[string]bool{}
	last := int64(-1)
	for _, r := range records {
		if r.Offset <= last {
			c.t.Errorf("offset %d read after offset %d: offsets went backwards or repeated", r.Offset, last)
		}
		last = r.Offset
		if seen[string(r.Value)] {
			rep.Duplicates++
		}
		seen[string(r.Value)] = true
		if want, ok := acked[r.Offset]; ok {
			if string(r.Value) != want {
				c.t.Errorf("offset %d holds %s, but %s was acknowledged there", r.Offset, r.Value, want)
			}
			delete(acked, r.Offset)
		}
	}
	if len(acked) > 0 {
		c.t.Errorf("%d acknowledged records are missing, e.g. %v", len(acked), firstFew(acked))
	}
	c.t.Logf("clustertest: %s; failures: %s", rep, failures)
	return rep
}

func firstFew(m map[int64]string) []string {
	var out []string
	for off, v := range m {
		out = append(out, fmt.Sprintf("%d=%s", off, v))
		if len(out) == 5 {
			break
		}
	}
	return out
}

// ReadAll reads a partition from offset 0 to its high watermark, through
// a fresh consumer.
func (c *Cluster) ReadAll(topic string, partition int32) []*kgo.Record {
	c.t.Helper()
	leader := c.WaitLeader(topic, partition, 20*time.Second, nil)
	r, _ := c.Broker(leader).Replica(topic, partition)
	end := r.HighWatermark
	cl := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(0)}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	next := int64(0)
	for next < end {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s-%d: got to offset %d of %d", topic, partition, next, end)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next = r.Offset + 1
		})
	}
	return out
}

// WaitConverged waits until every replica of the partition on a running
// broker has the same log end offset as the leader, equal to its high
// watermark, and then checks that they hold the same record at every
// offset: no offset holds two values.
func (c *Cluster) WaitConverged(topic string, partition int32, timeout time.Duration) int64 {
	c.t.Helper()
	leader := c.WaitLeader(topic, partition, timeout, nil)
	var end int64
	c.WaitFor(timeout, fmt.Sprintf("the replicas of %s-%d to converge", topic, partition), func() bool {
		lr, ok := c.Broker(leader).Replica(topic, partition)
		if !ok || lr.HighWatermark != lr.LogEndOffset {
			return false
		}
		end = lr.LogEndOffset
		st, _ := c.Partition(0, topic, partition)
		for _, id := range st.Replicas {
			b := c.Broker(id)
			if b == nil {
				continue
			}
			r, ok := b.Replica(topic, partition)
			if !ok || r.LogEndOffset != end {
				return false
			}
		}
		return true
	})
	var reference map[int64]string
	st, _ := c.Partition(0, topic, partition)
	for _, id := range st.Replicas {
		b := c.Broker(id)
		if b == nil {
			continue
		}
		got := c.replicaRecords(id, topic, partition, end)
		if reference == nil {
			reference = got
			continue
		}
		for off, v := range got {
			if reference[off] != v {
				c.t.Errorf("offset %d holds %q on broker %d and %q on another replica", off, v, id, reference[off])
			}
		}
	}
	return end
}

// replicaRecords reads one replica's log directly, offset to value.
func (c *Cluster) replicaRecords(id int32, topic string, partition int32, end int64) map[int64]string {
	c.t.Helper()
	out := map[int64]string{}
	for off := int64(0); off < end; {
		raw, err := c.Broker(id).ReadReplica(topic, partition, off, 1<<20)
		if err != nil {
			c.t.Fatalf("reading broker %d's replica: %v", id, err)
		}
		recs, err := log.DecodeRecords(raw)
		if err != nil || len(recs) == 0 {
			c.t.Fatalf("decoding broker %d's replica at %d: %v", id, off, err)
		}
		for _, r := range recs {
			if r.Offset >= off {
				out[r.Offset] = string(r.Value)
			}
		}
		off = recs[len(recs)-1].Offset + 1
	}
	return out
}
