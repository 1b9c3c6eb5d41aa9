// The tests of lesson 06, replication. Each starts a cluster of brokers in
// this process (package clustertest), writes to it with franz-go, and
// checks what the replicas hold.
package replication_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/log"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func ptr(s string) *string { return &s }

// produce writes n records, "0" to "n-1", with the given acks.
func produce(t *testing.T, c *clustertest.Cluster, topic string, n int, acks kgo.Acks) {
	t.Helper()
	cl := c.Client(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite())
	for i := range n {
		require.NoError(t, cl.ProduceSync(ctx(t), kgo.StringRecord(strconv.Itoa(i))).FirstErr())
	}
}

// request sends one request straight to broker id, as the broker's own
// fetcher would, and returns the answer.
func request(t *testing.T, c *clustertest.Cluster, id int32, req kmsg.Request) kmsg.Response {
	t.Helper()
	conn, err := client.Dial(ctx(t), c.Addr(id), "lesson-06")
	require.NoError(t, err)
	defer conn.Close()
	resp, err := conn.Request(ctx(t), req)
	require.NoError(t, err)
	return resp
}

// replicaFetch is a Fetch of topic-0 from offset, as the follower with
// replica id `replica` sends it.
func replicaFetch(replica int32, topic string, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.SessionEpoch = replica, 0, 1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 0, offset, 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// rawLog is a replica's whole log, the batches as stored, byte for byte.
func rawLog(t *testing.T, c *clustertest.Cluster, id int32, topic string) []byte {
	t.Helper()
	r, _ := c.Broker(id).Replica(topic, 0)
	var out []byte
	for off := r.LogStart; off < r.LogEndOffset; {
		raw, err := c.Broker(id).ReadReplica(topic, 0, off, 1<<20)
		require.NoError(t, err)
		recs, err := log.DecodeRecords(raw)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		out = append(out, raw...)
		off = recs[len(recs)-1].Offset + 1
	}
	return out
}

// TestFollowersCopyTheLeadersLog: records written to the leader reach both
// followers at the same offsets, byte for byte, and each follower takes the
// leader's high watermark, even from answers that carry no records. A
// partition with one replica has the leader alone in its ISR: its high
// watermark is its log end.
func TestFollowersCopyTheLeadersLog(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	c.CreateTopic("solo", 0, 0, [][]int32{{2}}, nil)
	produce(t, c, "orders", 50, kgo.LeaderAck())
	end := c.WaitConverged("orders", 0, 10*time.Second)
	require.Equal(t, int64(50), end)
	for _, id := range []int32{2, 3} {
		require.Equal(t, rawLog(t, c, 1, "orders"), rawLog(t, c, id, "orders"), "broker %d's log is not a byte-for-byte copy of the leader's", id)
	}
	// The last answers that carry records come before the leader's high
	// watermark reaches 50; only a later answer, with no records, says 50.
	c.WaitFor(10*time.Second, "every follower to take the leader's high watermark, 50", func() bool {
		for _, id := range []int32{2, 3} {
			if r, _ := c.Broker(id).Replica("orders", 0); r.HighWatermark != 50 {
				return false
			}
		}
		return true
	})

	produce(t, c, "solo", 5, kgo.AllISRAcks())
	r, _ := c.Broker(2).Replica("solo", 0)
	require.Equal(t, int64(5), r.HighWatermark, "the leader alone is the ISR: its high watermark is its log end offset")
}

// TestAFollowerTakesTheHighWatermarkAndWakesItsConsumers: a follower takes
// the leader's high watermark from every answer, including one that brings
// records, and wakes the consumers long-polling it when its high watermark
// moves. Fetches wait long here (replica.fetch.wait.max.ms 30 s): the
// follower gets no other answer for the test's whole length.
func TestAFollowerTakesTheHighWatermarkAndWakesItsConsumers(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 2, Configure: func(cfg *broker.Config) {
		cfg.ReplicaFetchWaitMax = 30 * time.Second
		cfg.ReplicaLagTimeMax = 90 * time.Second
	}})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2}}, nil)
	require.NoError(t, c.ProduceTo(1, "orders", 0, 1, "0"))
	c.WaitFor(10*time.Second, "the leader's high watermark at 1", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return r.HighWatermark == 1
	})
	// The answer that brought record 0 said high watermark 0, and the one
	// that would say 1 is parked on the leader: the follower cannot know.
	// A consumer asking follower 2 for offset 0 waits.
	got := make(chan kmsg.FetchResponseTopicPartition, 1)
	go func() {
		defer close(got)
		req := replicaFetch(-1, "orders", 0)
		req.MaxWaitMillis = 60_000
		conn, err := client.Dial(context.Background(), c.Addr(2), "lesson-06-consumer")
		if err != nil {
			return
		}
		defer conn.Close()
		resp, err := conn.Request(context.Background(), req)
		if err != nil {
			return
		}
		got <- resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	}()
	select {
	case sp := <-got:
		t.Fatalf("the consumer's fetch from follower 2 returned before its high watermark passed offset 0: %+v", sp)
	case <-time.After(300 * time.Millisecond): // time for the fetch to reach broker 2 and wait there
	}
	// Record 1 wakes the follower's parked fetch; its answer brings the
	// record and high watermark 1.
	require.NoError(t, c.ProduceTo(1, "orders", 0, 1, "1"))
	c.WaitFor(10*time.Second, "follower 2 to have record 1 and high watermark 1", func() bool {
		r, _ := c.Broker(2).Replica("orders", 0)
		return r.LogEndOffset == 2 && r.HighWatermark == 1
	})
	select {
	case sp, ok := <-got:
		require.True(t, ok, "the consumer's fetch failed")
		require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
		require.NotEmpty(t, sp.RecordBatches, "record 0, below follower 2's high watermark 1")
	case <-ctx(t).Done():
		t.Fatal("the consumer waiting on follower 2 was not woken when follower 2's high watermark moved")
	}
}

// TestConsumersSeeOnlyWhatEveryInSyncReplicaHas: a follower cut off from
// the leader is still in the ISR for replica.lag.time.max.ms, and holds the
// high watermark back: a consumer does not see new records until the
// follower has them or has left the ISR.
func TestConsumersSeeOnlyWhatEveryInSyncReplicaHas(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(3 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	produce(t, c, "orders", 10, kgo.LeaderAck())
	c.WaitFor(10*time.Second, "the high watermark at 10", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return r.HighWatermark == 10
	})

	c.Isolate(3, 1) // follower 3 can no longer fetch from leader 1
	produce(t, c, "orders", 5, kgo.LeaderAck())
	r, _ := c.Broker(1).Replica("orders", 0)
	require.Equal(t, int64(15), r.LogEndOffset, "the leader has the records")
	require.Equal(t, int64(10), r.HighWatermark, "follower 3 is in the ISR and has not got them")

	c.WaitFor(15*time.Second, "follower 3 to leave the ISR and the high watermark to move", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		p, _ := c.Partition(0, "orders", 0) // as the controller decided it
		return r.HighWatermark == 15 && !p.InSync(3)
	})
	c.Heal()
	c.WaitFor(15*time.Second, "follower 3 to catch up and rejoin the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return p.InSync(3)
	})
	require.Equal(t, int64(15), c.WaitConverged("orders", 0, 10*time.Second))
}

// TestAFollowerThatNeverFetchedHoldsTheHighWatermark: a leader that has
// not heard from an in-sync follower yet cannot know what it holds, so the
// high watermark waits for it (or for it to leave the ISR), even though
// the other follower has every record.
func TestAFollowerThatNeverFetchedHoldsTheHighWatermark(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(3 * time.Second)})
	// The leader must hear the controller, so the follower cut off from
	// it is not the controller.
	L := c.Broker(1).ActiveController()
	var X, Y int32
	for _, id := range c.IDs() {
		switch {
		case id == L:
		case X == 0:
			X = id
		default:
			Y = id
		}
	}
	c.Isolate(X, L) // before the topic exists: X never reaches leader L
	c.CreateTopic("orders", 0, 0, [][]int32{{L, Y, X}}, nil)
	produce(t, c, "orders", 5, kgo.LeaderAck())
	c.WaitFor(15*time.Second, "the follower cut off to leave the ISR", func() bool {
		// Read the high watermark first: the leader moves it only once it
		// knows X left, and the controller knew that before the leader.
		r, _ := c.Broker(L).Replica("orders", 0)
		p, _ := c.Partition(0, "orders", 0)
		if r.HighWatermark > 0 && p.InSync(X) {
			t.Fatalf("the high watermark moved to %d while follower %d, in the ISR, had never fetched", r.HighWatermark, X)
		}
		return !p.InSync(X)
	})
	c.WaitFor(10*time.Second, "the high watermark at 5", func() bool {
		r, _ := c.Broker(L).Replica("orders", 0)
		return r.HighWatermark == 5
	})
}

// TestAcksAllNeedsMinInSyncReplicas: with min.insync.replicas=3, acks=all
// succeeds while all three replicas are in sync, and fails with
// NOT_ENOUGH_REPLICAS once one has fallen out; acks=1 still succeeds.
func TestAcksAllNeedsMinInSyncReplicas(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"min.insync.replicas": ptr("3")})
	produce(t, c, "orders", 5, kgo.AllISRAcks())

	c.Isolate(3, 1)
	c.WaitFor(15*time.Second, "follower 3 to leave the ISR, as the leader knows it", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return len(r.ISR) == 2
	})
	require.ErrorIs(t, c.ProduceTo(1, "orders", 0, -1, "x"), kerr.NotEnoughReplicas)
	require.NoError(t, c.ProduceTo(1, "orders", 0, 1, "y"), "acks=1 needs the leader only")
}

// TestARestartedFollowerCatchesUp: a follower that was down while records
// were written fetches them when it comes back, and rejoins the ISR.
func TestARestartedFollowerCatchesUp(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	produce(t, c, "orders", 20, kgo.AllISRAcks())
	c.Kill(3)
	produce(t, c, "orders", 20, kgo.AllISRAcks())
	c.Restart(3)
	c.WaitFor(15*time.Second, "broker 3 back in the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return p.InSync(3)
	})
	require.Equal(t, int64(40), c.WaitConverged("orders", 0, 10*time.Second))
}

// TestAFollowerKeepsTheLeadersEpochs: a follower that copies, in leader
// epoch 1, batches the first leader wrote in epoch 0 keeps them as they
// are: the same offsets and the same epoch in every batch header, so that
// its leader epoch cache says what the leader's says (KIP-101).
func TestAFollowerKeepsTheLeadersEpochs(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, nil)
	produce(t, c, "orders", 10, kgo.AllISRAcks())
	c.Isolate(3, 1)
	c.WaitFor(15*time.Second, "follower 3 to leave the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return !p.InSync(3)
	})
	produce(t, c, "orders", 10, kgo.AllISRAcks()) // epoch 0, on 1 and 2 only
	c.Kill(1)
	c.WaitLeader("orders", 0, 15*time.Second, func(l int32) bool { return l == 2 })
	produce(t, c, "orders", 5, kgo.AllISRAcks()) // epoch 1
	c.WaitFor(15*time.Second, "follower 3 to catch up from leader 2 and rejoin the ISR", func() bool {
		p, _ := c.Partition(0, "orders", 0)
		return p.InSync(3)
	})
	require.Equal(t, int64(25), c.WaitConverged("orders", 0, 10*time.Second))
	require.Equal(t, rawLog(t, c, 2, "orders"), rawLog(t, c, 3, "orders"), "follower 3's batches differ from leader 2's: offsets or leader epochs were not kept")
}

// TestAFollowerBehindTheLeadersLogStartStartsThere: while a follower was
// down, retention deleted the records it would fetch next. The leader
// answers OFFSET_OUT_OF_RANGE, and the follower must act on that error:
// start its log again at the leader's log start, and catch up.
func TestAFollowerBehindTheLeadersLogStartStartsThere(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.ReplicaLagTimeMax = 2 * time.Second
		cfg.RetentionCheckInterval = 100 * time.Millisecond
	}})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2, 3}}, map[string]*string{"segment.bytes": ptr("1024"), "retention.bytes": ptr("2048")})
	produce(t, c, "orders", 5, kgo.AllISRAcks())
	c.Kill(3)
	produce(t, c, "orders", 100, kgo.AllISRAcks())
	c.WaitFor(15*time.Second, "retention to delete the leader's first segments", func() bool {
		r, _ := c.Broker(1).Replica("orders", 0)
		return r.LogStart > 5
	})
	c.Restart(3)
	c.WaitFor(15*time.Second, "broker 3 to start again at the leader's log start and catch up", func() bool {
		l, _ := c.Broker(1).Replica("orders", 0)
		r, ok := c.Broker(3).Replica("orders", 0)
		return ok && r.LogStart > 5 && r.LogEndOffset == l.LogEndOffset && r.HighWatermark == l.HighWatermark
	})
}

// TestALeaderAnswersOnlyItsFollowers: a Fetch with a replica id is how a
// follower says how far it has come. The leader refuses one from a broker
// that is not a replica of the partition (NOT_LEADER_OR_FOLLOWER, or
// UNKNOWN_LEADER_EPOCH as Kafka says when the fetch names an epoch): it
// must neither hand it records above the high watermark nor count it.
func TestALeaderAnswersOnlyItsFollowers(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("orders", 0, 0, [][]int32{{1, 2}}, nil)
	produce(t, c, "orders", 5, kgo.AllISRAcks())
	for _, id := range []int32{3, 7} { // a broker that is not a replica, and one that does not exist
		sp := request(t, c, 1, replicaFetch(id, "orders", 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
		err := kerr.ErrorForCode(sp.ErrorCode)
		if err != kerr.NotLeaderForPartition && err != kerr.UnknownLeaderEpoch {
			t.Errorf("a fetch from broker %d, not a replica of orders-0, got %v and %d bytes of records; want NOT_LEADER_OR_FOLLOWER and none", id, err, len(sp.RecordBatches))
		}
		require.Empty(t, sp.RecordBatches, "records for broker %d, which is not a replica", id)
	}
	// The follower itself is answered.
	sp := request(t, c, 1, replicaFetch(2, "orders", 0)).(*kmsg.FetchResponse).Topics[0].Partitions[0]
	require.NoError(t, kerr.ErrorForCode(sp.ErrorCode))
	require.NotEmpty(t, sp.RecordBatches)
}

// TestAnAnswerFromADeposedLeaderIsNotAppended: broker L led "moved" and
// was cut off from the controller; the controller gave "moved" to F. L
// does not know, takes one more write, and answers F's fetch, still
// parked on L, with it. F now leads "moved" and must drop that answer:
// appending it would put a record no in-sync replica of the new epoch
// ever acknowledged into the new leader's log. F still follows L for
// "stays", whose record, written after, shows F has read the answer.
func TestAnAnswerFromADeposedLeaderIsNotAppended(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.ReplicaFetchWaitMax = 10 * time.Second // an idle follower's fetch stays parked on its leader
		cfg.ReplicaLagTimeMax = 30 * time.Second   // and it stays in the ISR meanwhile
	}})
	ctrl := c.Broker(1).ActiveController()
	var others []int32
	for _, id := range c.IDs() {
		if id != ctrl {
			others = append(others, id)
		}
	}
	require.Len(t, others, 2, "controller %d", ctrl)
	L, F := others[0], others[1]
	c.CreateTopic("moved", 0, 0, [][]int32{{F, L}}, nil)
	c.CreateTopic("stays", 0, 0, [][]int32{{L, F}}, nil)
	produce(t, c, "moved", 5, kgo.AllISRAcks())
	produce(t, c, "stays", 5, kgo.AllISRAcks())

	// Make L lead "moved", whose preferred leader is F.
	c.Kill(F)
	c.WaitLeader("moved", 0, 15*time.Second, func(l int32) bool { return l == L })
	c.Restart(F)
	// Until F is back in both ISRs, it has fetched both from L, and every
	// fetch it sends L from then on asks for both (one sent before it
	// followed both, parked for up to replica.fetch.wait.max.ms, did not).
	c.WaitFor(30*time.Second, "F back in both ISRs, following L", func() bool {
		m, _ := c.Partition(0, "moved", 0)
		s, _ := c.Partition(0, "stays", 0)
		fm, _ := c.Partition(F, "moved", 0)
		return m.InSync(F) && s.InSync(F) && fm.Leader == L && fm.LeaderEpoch == m.LeaderEpoch
	})
	require.Equal(t, ctrl, c.Broker(F).ActiveController(), "the controller moved; this test needs it to stay")

	// Cut L from the controller, and give "moved" back to F.
	c.Isolate(L, ctrl)
	elect := kmsg.NewPtrElectLeadersRequest()
	elect.TimeoutMillis = 10_000
	et := kmsg.NewElectLeadersRequestTopic()
	et.Topic, et.Partitions = "moved", []int32{0}
	elect.Topics = append(elect.Topics, et)
	er := request(t, c, ctrl, elect).(*kmsg.ElectLeadersResponse)
	require.NoError(t, kerr.ErrorForCode(er.ErrorCode))
	require.NoError(t, kerr.ErrorForCode(er.Topics[0].Partitions[0].ErrorCode))
	c.WaitFor(15*time.Second, "F to lead moved", func() bool {
		r, _ := c.Broker(F).Replica("moved", 0)
		return r.Leader
	})
	lm, _ := c.Partition(L, "moved", 0)
	require.Equal(t, L, lm.Leader, "L must not have heard that it lost moved")

	before, _ := c.Broker(F).Replica("moved", 0)
	require.NoError(t, c.ProduceTo(L, "moved", 0, 1, "written by a deposed leader"))
	stays, _ := c.Broker(L).Replica("stays", 0)
	require.NoError(t, c.ProduceTo(L, "stays", 0, 1, "beacon"))
	c.WaitFor(15*time.Second, "F to fetch the record of stays written after", func() bool {
		r, _ := c.Broker(F).Replica("stays", 0)
		return r.LogEndOffset == stays.LogEndOffset+1
	})
	after, _ := c.Broker(F).Replica("moved", 0)
	require.Equal(t, before.LogEndOffset, after.LogEndOffset, "F, leader of moved in a new epoch, appended what its old leader sent")
}
