package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListOffsets: a consumer asks where to start. The timestamp -2 asks for the
// earliest offset (the log start offset), -1 for the latest (the high
// watermark: the next offset a consumer will see), and a timestamp in
// milliseconds for the first record at or after it (offsetsForTimes in the
// Java client; the time index answers it).
//
// A leader elected a moment ago may have a high watermark below its
// predecessor's: it answers OFFSET_NOT_AVAILABLE until it has caught up
// (KIP-207), so that a consumer's "latest" never goes back; versions
// before 5 get LEADER_NOT_AVAILABLE instead, as Kafka gives them.
//
// Version notes: v1 answers one offset per partition (v0 a list), v2 adds
// the isolation level, v4 the current leader epoch, v6 is flexible.
func init() { register(kmsg.ListOffsets, 1, 6, handleListOffsets) }

func handleListOffsets(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			offset, ts, epoch, err := b.listOffset(rt.Topic, rp, req.ReplicaID)
			if errors.Is(err, kerr.OffsetNotAvailable) && r.version < 5 {
				// OFFSET_NOT_AVAILABLE came with v5 (KIP-207): older
				// clients know LEADER_NOT_AVAILABLE, which they retry, as
				// Kafka answers them (kafka-python 2.0.2 would fail on
				// the code it does not know).
				err = fmt.Errorf("%w: %w", kerr.LeaderNotAvailable, err)
			}
			sp.ErrorCode, sp.Offset, sp.Timestamp, sp.LeaderEpoch = b.code(err), offset, ts, epoch
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// listOffset answers one partition: the offset, and the timestamp of that
// record when asked by timestamp (-1 otherwise).
func (b *Broker) listOffset(topic string, rp kmsg.ListOffsetsRequestTopicPartition, replica int32) (offset, timestamp int64, epoch int32, err error) {
	p, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return -1, -1, -1, err
	}
	leader, epoch := p.isLeader()
	if !leader && replica == -1 {
		return -1, -1, -1, fmt.Errorf("%w: broker %d does not lead %s", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch, epoch); err != nil {
		return -1, -1, -1, err
	}
	if replica == -1 && rp.Timestamp != -2 && p.highWatermarkBehindEpoch() {
		// KIP-207: a consumer's latest offset, or an offset by time, must
		// never go back. A leader that has not caught its high watermark
		// up to the start of its epoch says "not yet", and the client
		// retries.
		return -1, -1, -1, fmt.Errorf("%w: %s has a new leader whose high watermark is still behind its epoch's start", kerr.OffsetNotAvailable, p)
	}
	switch ts := rp.Timestamp; {
	case ts == -2:
		return p.log.StartOffset(), -1, epoch, nil
	case ts == -1 && replica == -1:
		// A consumer's "latest" is the high watermark: it cannot read past it.
		return p.highWatermark(), -1, epoch, nil
	case ts == -1:
		return p.log.EndOffset(), -1, epoch, nil
	case ts < 0:
		return -1, -1, -1, fmt.Errorf("%w: timestamp %d; use -2 (earliest), -1 (latest) or milliseconds", kerr.InvalidRequest, ts)
	default:
		offset, timestamp, err := p.log.OffsetForTimestamp(ts)
		return offset, timestamp, epoch, err
	}
}
