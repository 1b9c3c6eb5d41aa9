package idempotence_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/producer"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds, failing the test after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("gave up waiting for %s", what)
			return
		}
		time.Sleep(time.Millisecond) // polling interval, not synchronisation
	}
}

// newProducer makes a producer for the brokers at addrs with the given
// settings, by their Java names, closed with the test.
func newProducer(t *testing.T, addrs []string, settings ...string) *producer.Producer {
	t.Helper()
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = addrs
	cfg.MaxBlock = 10 * time.Second
	for i := 0; i+1 < len(settings); i += 2 {
		require.NoError(t, cfg.Set(settings[i], settings[i+1]))
	}
	p, err := producer.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// value is the value of the i-th record a test sends: 60 bytes, so that
// with batch.size=100 each record has a batch of its own.
func value(i int) string { return fmt.Sprintf("record %04d %s", i, strings.Repeat("-", 48)) }

// valuesFrom returns value(from), ..., value(to-1).
func valuesFrom(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, value(i))
	}
	return out
}

// send sends records value(from), ..., value(to-1) to partition 0 of
// topic, and returns their futures.
func send(p *producer.Producer, topic string, from, to int) []*producer.Future {
	zero := int32(0)
	var fs []*producer.Future
	for i := from; i < to; i++ {
		fs = append(fs, p.SendAsync(&producer.Record{Topic: topic, Partition: &zero, Value: []byte(value(i))}, nil))
	}
	return fs
}

// offsets waits for every future and returns the offsets they were given.
func offsets(t *testing.T, fs []*producer.Future) []int64 {
	t.Helper()
	var out []int64
	for i, f := range fs {
		md, err := f.Wait(ctx(t))
		require.NoError(t, err, "record %d", i)
		out = append(out, md.Offset)
	}
	return out
}

// values reads partition 0 of topic from the start to its end, with
// franz-go's consumer, and returns the values in log order.
func values(t *testing.T, addrs []string, topic string) []string {
	t.Helper()
	return partitionValues(t, addrs, topic, 0)
}

// partitionValues is values for any partition.
func partitionValues(t *testing.T, addrs []string, topic string, partition int32) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -1 // the end
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err)
	end := resp.Topics[0].Partitions[0].Offset
	var out []string
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx(t))
		require.NoError(t, fs.Err0(), "read to offset %d of %d", next, end)
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			next = r.Offset + 1
		})
	}
	return out
}

// sentBatch is what a Produce request carried for partition 0.
type sentBatch struct {
	producerID int64
	epoch      int16
	sequence   int32
	records    int32
}

// batchOf reads the batch a Produce request carries for partition 0.
func batchOf(req kmsg.Request) sentBatch {
	for _, rt := range req.(*kmsg.ProduceRequest).Topics {
		for _, rp := range rt.Partitions {
			var rb kmsg.RecordBatch
			if rp.Partition == 0 && rb.ReadFrom(rp.Records) == nil {
				return sentBatch{rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, rb.NumRecords}
			}
		}
	}
	return sentBatch{}
}

// answer is an answer to a Produce request, every partition with code,
// without the broker writing anything.
func answer(req kmsg.Request, code int16) kmsg.Response {
	r := req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode, sp.BaseOffset = rp.Partition, code, -1
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// partitionBatch is a batch a Produce request carried, and its partition.
type partitionBatch struct {
	partition int32
	sentBatch
}

// fake is franz-go's in-process Kafka with topic "t" of one partition,
// recording the batches each Produce request carried, in the order they
// came, and the InitProducerId requests.
type fake struct {
	*kfake.Cluster
	mu      sync.Mutex
	batches []sentBatch      // partition 0's, by record
	all     []partitionBatch // every partition's, by recordAll
	inits   int
}

func newFake(t *testing.T, opts ...kfake.Opt) *fake {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, "t")}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	f := &fake{Cluster: c}
	c.ControlKey(int16(kmsg.InitProducerID), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		f.mu.Lock()
		f.inits++
		f.mu.Unlock()
		return nil, nil, false
	})
	return f
}

// record notes a Produce request's batch and returns how many have come.
func (f *fake) record(req kmsg.Request) (sentBatch, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := batchOf(req)
	f.batches = append(f.batches, b)
	return b, len(f.batches)
}

// recordAll notes the batches of every partition a Produce request carries.
func (f *fake) recordAll(req kmsg.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rt := range req.(*kmsg.ProduceRequest).Topics {
		for _, rp := range rt.Partitions {
			var rb kmsg.RecordBatch
			if rb.ReadFrom(rp.Records) == nil {
				f.all = append(f.all, partitionBatch{rp.Partition, sentBatch{rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence, rb.NumRecords}})
			}
		}
	}
}

func (f *fake) sentAll() []partitionBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]partitionBatch(nil), f.all...)
}

func (f *fake) sent() []sentBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentBatch(nil), f.batches...)
}

func (f *fake) initProducerIDs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inits
}

func (f *fake) addrs() []string { return f.ListenAddrs() }
