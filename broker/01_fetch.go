package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch: a consumer (or, from lesson 06, a follower) asks for records from
// an offset in each of several partitions.
//
// Behavior: whole batches are returned, starting with the one holding the
// fetch offset, up to partition_max_bytes per partition and max_bytes in
// all, except that the first partition with data always returns at least
// one batch (KIP-74). A consumer reads only up to the high watermark. If
// fewer than min_bytes are ready, the broker waits for more, up to
// max_wait_ms (fetch.min.bytes and fetch.max.wait.ms on the consumer): this
// long poll is what keeps an idle consumer from spinning. An offset outside
// the log is OFFSET_OUT_OF_RANGE for that partition; the consumer then
// applies its auto.offset.reset.
//
// Version notes: v4 adds the isolation level and last stable offset, v5 the
// log start offset, v7 fetch sessions (KIP-227; klab answers session id 0,
// none, so clients send full fetches), v9 the current leader epoch
// (KIP-320), v11 the rack (KIP-392), v12 is flexible.
func init() { register(kmsg.Fetch, 4, 12, handleFetch) }

func handleFetch(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FetchRequest)
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		// Take the channel before reading, so that an append between the
		// read and the wait still wakes us.
		wake := b.appendedChan()
		resp, bytes, failed := b.fetchOnce(req)
		if bytes >= int(req.MinBytes) || failed || !time.Now().Before(deadline) {
			return resp, nil
		}
		select {
		case <-wake:
		case <-timer.C:
			resp, _, _ = b.fetchOnce(req)
			return resp, nil
		case <-ctx.Done():
			return resp, nil
		}
	}
}

// fetchOnce reads what every partition of the request has now. It returns
// the response, how many bytes of records it holds, and whether any
// partition failed (an error answers at once, without waiting).
func (b *Broker) fetchOnce(req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	total, failed := 0, false
	budget := int(req.MaxBytes)
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for i := range rt.Partitions {
			limit := min(int(rt.Partitions[i].PartitionMaxBytes), budget-total)
			if limit <= 0 && total == 0 {
				limit = 1 // the first partition with data still returns one whole batch
			}
			sp, err := b.fetchPartition(rt.Topic, &rt.Partitions[i], int64(max(limit, 0)))
			if total > 0 && len(sp.RecordBatches) > budget-total {
				// Past the first partition with data, a batch larger than
				// what is left of max_bytes waits for the next fetch.
				sp.RecordBatches = nil
			}
			if err != nil {
				sp.ErrorCode, sp.RecordBatches, failed = b.code(err), nil, true
			}
			if sp.RecordBatches == nil {
				sp.RecordBatches = []byte{} // empty, not null: librdkafka refuses a null record set
			}
			total += len(sp.RecordBatches)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, total, failed
}

// fetchPartition answers one partition of a Fetch: whole batches from the
// fetch offset, up to maxBytes (at least one batch, none if maxBytes is 0),
// with the partition's high watermark, last stable offset and log start
// offset. An error becomes the partition's error code.
func (b *Broker) fetchPartition(topic string, rp *kmsg.FetchRequestTopicPartition, maxBytes int64) (kmsg.FetchResponseTopicPartition, error) {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	//klab:lesson 03 begin (*Broker).fetchPartition
	p, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return sp, err
	}
	if rp.CurrentLeaderEpoch > 0 {
		// The leader epoch stays 0 until leaders can change (lesson 07).
		return sp, fmt.Errorf("%w: the client knows leader epoch %d, this broker's is 0", kerr.UnknownLeaderEpoch, rp.CurrentLeaderEpoch)
	}
	// With one broker a record is on every in-sync replica once written: the
	// high watermark is the log end offset. Without transactions the last
	// stable offset is the high watermark.
	if maxBytes > 0 {
		sp.RecordBatches, err = p.log.Read(rp.FetchOffset, maxBytes) // OFFSET_OUT_OF_RANGE comes from the log
	}
	// Read the high watermark after the records, so that it is never below them.
	hwm := p.log.EndOffset()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, hwm, p.log.StartOffset()
	return sp, err
	//klab:lesson 03 stub
	// return sp, lessons.Todo("03", "(*Broker).fetchPartition")
	//klab:lesson 03 end
}
