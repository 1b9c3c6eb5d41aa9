package idempotence_test

// The idempotent producer against klab's own brokers, on loopback ports:
// what its batches carry into the log, and a three-broker cluster whose
// partition leader is killed while the producer writes.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/producer"
)

// startBroker starts one klab broker with topic "t" of the given
// partitions and returns its address.
func startBroker(t *testing.T, partitions int32) []string {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx(t), partitions, 1, nil, "t")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	return []string{b.Addr()}
}

// storedBatches reads a partition of "t" as the batches the broker stored,
// which are the batches the producer made, and returns their headers.
func storedBatches(t *testing.T, addrs []string, partition int32) []kmsg.RecordBatch {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	require.NoError(t, err)
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes = -1, 10<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "t", topicID(t, cl, "t")
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.PartitionMaxBytes = partition, 10<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx(t), cl)
	require.NoError(t, err)
	raw, err := log.Batches(resp.Topics[0].Partitions[0].RecordBatches)
	require.NoError(t, err)
	var out []kmsg.RecordBatch
	for _, b := range raw {
		var rb kmsg.RecordBatch
		require.NoError(t, rb.ReadFrom(b))
		out = append(out, rb)
	}
	return out
}

// Every batch an idempotent producer writes carries its producer id, epoch
// 0, and its first record's sequence number: per partition, from 0, on by
// the records of each batch before. A producer that is not idempotent
// writes -1 in all three.
func TestBatchesInTheLogCarryTheProducerIDAndSequences(t *testing.T) {
	addrs := startBroker(t, 2)
	// With batch.size=300, three of the tests' 60-byte records make a batch.
	p := newProducer(t, addrs, "linger.ms", "60000", "batch.size", "300")
	zero, one := int32(0), int32(1)
	var futures []*producer.Future
	for i := range 10 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "t", Partition: &zero, Value: []byte(value(i))}, nil))
	}
	for i := range 4 {
		futures = append(futures, p.SendAsync(&producer.Record{Topic: "t", Partition: &one, Value: []byte(value(i))}, nil))
	}
	require.NoError(t, p.Flush(ctx(t)))
	offsets(t, futures)

	want := map[int32][][2]int32{ // per partition: each batch's base sequence and record count
		0: {{0, 3}, {3, 3}, {6, 3}, {9, 1}},
		1: {{0, 3}, {3, 1}},
	}
	producerID := int64(-1)
	for partition, batches := range want {
		stored := storedBatches(t, addrs, partition)
		require.Len(t, stored, len(batches), "partition %d", partition)
		for i, b := range stored {
			if producerID < 0 {
				producerID = b.ProducerID
			}
			assert.GreaterOrEqual(t, b.ProducerID, int64(0), "partition %d batch %d: a producer id from InitProducerId", partition, i)
			assert.Equal(t, producerID, b.ProducerID, "partition %d batch %d: one producer id for every partition", partition, i)
			assert.Equal(t, int16(0), b.ProducerEpoch, "partition %d batch %d", partition, i)
			assert.Equal(t, batches[i], [2]int32{b.FirstSequence, b.NumRecords},
				"partition %d batch %d: its base sequence, after the records of the batches before it", partition, i)
		}
	}

	plain := newProducer(t, addrs, "acks", "1") // idempotence gives way to acks=1
	_, err := plain.Send(ctx(t), &producer.Record{Topic: "t", Partition: &one, Value: []byte("plain")})
	require.NoError(t, err)
	stored := storedBatches(t, addrs, 1)
	last := stored[len(stored)-1]
	assert.Equal(t, [3]int64{-1, -1, -1}, [3]int64{last.ProducerID, int64(last.ProducerEpoch), int64(last.FirstSequence)},
		"a producer that is not idempotent has no id, epoch or sequence")
}

// The leader of a partition with three in-sync replicas is killed while
// an idempotent producer writes to it as fast as it can. Requests in
// flight then were written by the leader and, most of them, copied by
// the followers, but never answered: the producer sends them again to the
// new leader, which recognises them. Every record acknowledged is in the
// partition, at its offset, once; no record is there twice; and the
// records are in the order they were sent.
func TestNothingAckedIsLostOrWrittenTwiceThroughALeaderKill(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	minISR2 := "2"
	c.CreateTopic("events", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"min.insync.replicas": &minISR2})
	leader := c.WaitFullISR("events", 0, 30*time.Second)

	p := newProducer(t, c.Addrs(), "linger.ms", "5", "request.timeout.ms", "5000",
		"retry.backoff.ms", "50", "delivery.timeout.ms", "90000")
	idempotent, why := p.Idempotent()
	require.True(t, idempotent, why)

	var mu sync.Mutex
	acked := map[string]int64{}  // value -> offset
	failed := map[string]error{} // value -> error
	stop, stopped := make(chan struct{}), make(chan struct{})
	var stopOnce sync.Once
	stopApplication := func() {
		stopOnce.Do(func() { close(stop) })
		<-stopped
	}
	// However the test ends, the application stops sending before the
	// producer is closed (cleanups run last registered, first run).
	t.Cleanup(stopApplication)
	go func() { // the application: at most 20000 records unanswered, enough for 5 requests in flight
		defer close(stopped)
		zero := int32(0)
		room := make(chan struct{}, 20000)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case room <- struct{}{}:
			}
			v := fmt.Sprintf("e%07d", i)
			p.SendAsync(&producer.Record{Topic: "events", Partition: &zero, Value: []byte(v)}, func(md producer.RecordMetadata, err error) {
				mu.Lock()
				if err != nil {
					failed[v] = err
				} else {
					acked[v] = md.Offset
				}
				mu.Unlock()
				<-room
			})
		}
	}()
	ackedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	// No record may fail: the first failure ends the test, with its error.
	firstFailure := func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range failed {
			return err
		}
		return nil
	}
	c.WaitFor(30*time.Second, "5000 records acknowledged, and requests in flight", func() bool {
		return ackedSoFar() >= 5000 && p.RequestsInFlight() >= 3 || firstFailure() != nil
	})
	require.NoError(t, firstFailure(), "a record failed before the leader was killed")
	inFlight := p.RequestsInFlight()
	c.Kill(leader)
	newLeader := c.WaitLeader("events", 0, 30*time.Second, func(id int32) bool { return id != leader })
	t.Logf("killed leader %d with %d requests in flight; broker %d leads", leader, inFlight, newLeader)
	after := ackedSoFar() + 5000
	c.WaitFor(60*time.Second, "5000 more records acknowledged by the new leader", func() bool { return ackedSoFar() >= after || firstFailure() != nil })
	require.NoError(t, firstFailure(), "an idempotent producer retries through a leader change: no record fails")
	stopApplication()
	require.NoError(t, p.Close(), "every record sent has its answer")

	mu.Lock()
	defer mu.Unlock()
	read := c.ReadAll("events", 0)
	seen := map[string]int{}
	var duplicates, outOfOrder []string
	previous := ""
	for _, r := range read {
		v := string(r.Value)
		if seen[v]++; seen[v] > 1 {
			duplicates = append(duplicates, v)
		}
		if v <= previous {
			outOfOrder = append(outOfOrder, fmt.Sprintf("%s after %s", v, previous))
		}
		previous = v
		if offset, ok := acked[v]; ok {
			assert.Equal(t, offset, r.Offset, "%s was acknowledged at offset %d", v, offset)
		}
	}
	var missing []string
	for v := range acked {
		if seen[v] == 0 {
			missing = append(missing, v)
		}
	}
	assert.Zero(t, len(missing), "acknowledged records missing, e.g. %v", firstFew(missing))
	assert.Zero(t, len(duplicates), "records written twice, e.g. %v", firstFew(duplicates))
	assert.Zero(t, len(outOfOrder), "records out of the order they were sent in: %v", firstFew(outOfOrder))
	t.Logf("%d records acknowledged, %d failed, %d read back", len(acked), len(failed), len(read))
	for v, err := range failed {
		t.Logf("e.g. %s failed: %v", v, err)
		break
	}
}

// firstFew is the start of a list, for a failure message.
func firstFew(list []string) []string { return list[:min(len(list), 5)] }

// topicID is a topic's id. A Fetch names its topics by id from v13
// (KIP-516), and franz-go sends the newest version the broker speaks.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, topics[topic].Err)
	return topics[topic].ID
}
