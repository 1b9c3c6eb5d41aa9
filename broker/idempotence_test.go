package broker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/log"
)

// idempotentBatch is a batch as an idempotent producer sends it.
func idempotentBatch(producerID int64, epoch int16, seq int32, n int) []byte {
	now := time.Now()
	records := make([]log.Record, n)
	for i := range records {
		records[i] = log.Record{Timestamp: now, Value: []byte("v")}
	}
	return log.EncodeIdempotentBatch(producerID, epoch, seq, records...)
}

// produceRaw sends one batch to partition 0 of topic with acks=all and
// returns the partition's answer.
func produceRaw(t *testing.T, b *broker.Broker, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl.Broker(int(b.ID())))
	require.NoError(t, err)
	return resp.Topics[0].Partitions[0]
}

// The Produce path of an idempotent producer, over the wire: a retry is
// answered with the first offset and written once, even with acks=all
// (the answer waits for the original batch's replication); a gap and an
// older epoch get their error codes; DescribeProducers shows the state.
func TestIdempotentProduceOverTheWire(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "orders")
	require.NoError(t, err)

	for i, want := range []int64{0, 3} {
		sp := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, int32(i*3), 3))
		require.Zero(t, sp.ErrorCode, "batch %d: %v", i, kerr.ErrorForCode(sp.ErrorCode))
		assert.Equal(t, want, sp.BaseOffset)
	}
	retry := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, 0, 3))
	assert.Zero(t, retry.ErrorCode, "a retry is a success: %v", kerr.ErrorForCode(retry.ErrorCode))
	assert.Equal(t, int64(0), retry.BaseOffset, "a retry is answered with the offset of the first write")

	gap := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, 7, 1))
	assert.Equal(t, kerr.OutOfOrderSequenceNumber.Code, gap.ErrorCode)
	require.NotNil(t, gap.ErrorMessage)
	assert.Contains(t, *gap.ErrorMessage, "expected sequence 6")

	assert.Zero(t, produceRaw(t, b, cl, "orders", idempotentBatch(9, 1, 0, 1)).ErrorCode, "a new epoch from 0")
	zombie := produceRaw(t, b, cl, "orders", idempotentBatch(9, 0, 6, 1))
	assert.Equal(t, kerr.InvalidProducerEpoch.Code, zombie.ErrorCode)

	ends, err := adm.ListEndOffsets(ctxT(t), "orders")
	require.NoError(t, err)
	end, _ := ends.Lookup("orders", 0)
	assert.Equal(t, int64(7), end.Offset, "six records and one of the new epoch; nothing twice")

	req := kmsg.NewPtrDescribeProducersRequest()
	rt := kmsg.NewDescribeProducersRequestTopic()
	rt.Topic, rt.Partitions = "orders", []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	sp := resp.Topics[0].Partitions[0]
	require.Zero(t, sp.ErrorCode)
	require.Len(t, sp.ActiveProducers, 1)
	assert.Equal(t, int64(9), sp.ActiveProducers[0].ProducerID)
	assert.Equal(t, int32(1), sp.ActiveProducers[0].ProducerEpoch)
	assert.Equal(t, int32(0), sp.ActiveProducers[0].LastSequence)
}
