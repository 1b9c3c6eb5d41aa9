package admin

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// HighWatermark, as the offset of a DeleteRecords, deletes every record
// consumers can read: up to the partition's high watermark.
const HighWatermark int64 = -1

// DeleteRecordsResult is what DeleteRecords did to one partition.
type DeleteRecordsResult struct {
	// LowWatermark is the partition's new log start offset: the first
	// offset a consumer can still read.
	LowWatermark int64
	Err          error
}

// DeleteRecords deletes the records of each partition before the offset
// given for it (HighWatermark: every record consumers can read), by moving
// the partition's log start offset, as kafka-delete-records.sh does. The
// segments wholly before it are deleted from disk at once; records after
// it in the same segment stay on disk but can no longer be read.
//
// Only a partition's leader can move its log start offset, so the
// partitions are grouped by leader and each group is sent to its leader;
// a partition whose leader moved meanwhile answers NOT_LEADER_OR_FOLLOWER
// and is sent again to the new one. An offset past the high watermark
// fails with OFFSET_OUT_OF_RANGE.
func (c *Client) DeleteRecords(ctx context.Context, offsets map[TopicPartition]int64) (map[TopicPartition]DeleteRecordsResult, error) {
	var asked []TopicPartition
	for tp := range offsets {
		asked = append(asked, tp)
	}
	slices.SortFunc(asked, compareTP)
	pending := newPendingPartitions(asked)
	watermarks := map[TopicPartition]int64{}
	err := c.retry(ctx, func(ctx context.Context) error {
		open, _ := pending.open()
		leaders, err := c.leaders(ctx, open, pending)
		if err != nil {
			return err
		}
		for leader, tps := range leaders {
			c.deleteRecordsOn(ctx, leader, tps, offsets, pending, watermarks)
		}
		return pending.again()
	})
	errs, err := pending.result(err, nil)
	out := map[TopicPartition]DeleteRecordsResult{}
	for _, tp := range asked {
		r := DeleteRecordsResult{LowWatermark: -1, Err: errs[tp]}
		if r.Err == nil {
			r.LowWatermark = watermarks[tp]
		}
		out[tp] = r
	}
	return out, err
}

// leaders groups partitions by their leader, from Metadata. A partition
// that Metadata cannot place (no such topic or partition, no leader) is
// settled with that error, retriable or not.
func (c *Client) leaders(ctx context.Context, tps []TopicPartition, pending *pendingPartitions) (map[int32][]TopicPartition, error) {
	var topics []string
	for t := range byTopic(tps) {
		topics = append(topics, t)
	}
	md, err := c.metadata(ctx, topics)
	if err != nil {
		return nil, err
	}
	described := map[string]TopicDescription{}
	for _, t := range md.Topics {
		d := describeTopic(t)
		described[d.Name] = d
	}
	out := map[int32][]TopicPartition{}
	for _, tp := range tps {
		leader, err := leaderOf(described, tp)
		if err != nil {
			pending.settle(tp, err)
			continue
		}
		out[leader] = append(out[leader], tp)
	}
	return out, nil
}

// leaderOf is a partition's leader as Metadata described it.
func leaderOf(described map[string]TopicDescription, tp TopicPartition) (int32, error) {
	t, ok := described[tp.Topic]
	if !ok {
		return -1, fmt.Errorf("%w: no topic %s", kerr.UnknownTopicOrPartition, tp.Topic)
	}
	if t.Err != nil {
		return -1, t.Err
	}
	for _, p := range t.Partitions {
		if p.Partition == tp.Partition {
			if p.Leader < 0 {
				return -1, fmt.Errorf("%w: %s has no leader", kerr.LeaderNotAvailable, tp)
			}
			return p.Leader, nil
		}
	}
	return -1, fmt.Errorf("%w: topic %s has no partition %d", kerr.UnknownTopicOrPartition, tp.Topic, tp.Partition)
}

// deleteRecordsOn sends one DeleteRecords to a leader for its partitions
// and settles each with its answer; a failed request settles them all with
// its error.
func (c *Client) deleteRecordsOn(ctx context.Context, leader int32, tps []TopicPartition, offsets map[TopicPartition]int64,
	pending *pendingPartitions, watermarks map[TopicPartition]int64) {
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = timeoutMillis(ctx)
	for topic, partitions := range byTopic(tps) {
		rt := kmsg.NewDeleteRecordsRequestTopic()
		rt.Topic = topic
		for _, p := range partitions {
			rp := kmsg.NewDeleteRecordsRequestTopicPartition()
			rp.Partition, rp.Offset = p, offsets[TopicPartition{topic, p}]
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	conn, err := c.brokerConn(ctx, leader)
	var resp *kmsg.DeleteRecordsResponse
	if err == nil {
		resp, err = request[*kmsg.DeleteRecordsResponse](ctx, conn, req)
	}
	if err != nil {
		for _, tp := range tps {
			pending.settle(tp, err)
		}
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			tp := TopicPartition{t.Topic, p.Partition}
			pending.settle(tp, kafkaError(p.ErrorCode, nil))
			watermarks[tp] = p.LowWatermark
		}
	}
}
