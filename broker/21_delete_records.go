package broker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// DeleteRecords: delete every record of a partition below an offset, as
// kafka-delete-records.sh and AdminClient.deleteRecords ask (KIP-107).
//
// Behavior: the partition's leader moves its log start offset to the
// offset asked for (-1: the high watermark); reads below it are then
// OFFSET_OUT_OF_RANGE, ListOffsets' earliest is it, and the segments
// wholly below it are deleted. The producer state is kept, as retention
// keeps it, so that the idempotent producers whose records went still
// continue their sequences. The followers learn the new start from their
// fetches' answers and move theirs; the leader answers once every in-sync
// replica has (the low watermark, the smallest start among them, has
// reached the offset), with that low watermark, or REQUEST_TIMED_OUT after
// the request's timeout. Each partition gets its own error code:
// NOT_LEADER_OR_FOLLOWER off the leader, UNKNOWN_TOPIC_OR_PARTITION,
// OFFSET_OUT_OF_RANGE for an offset past the high watermark (or negative
// but -1), POLICY_VIOLATION for a topic whose cleanup.policy lacks
// "delete" (compacted topics keep their records by key, and
// __consumer_offsets is the group coordinator's). An offset at or below
// the log start offset deletes nothing and answers at once.
//
// Version notes: v1 is v0 (a throttle change), v2 is flexible.
func init() { register(kmsg.DeleteRecords, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	// Every partition's start moves first; then one wait for them all, so
	// that the request's timeout bounds the whole request, not each
	// partition in turn.
	var waits []deleteWait
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition, sp.LowWatermark = rp.Partition, -1
			w, err := b.deleteRecords(rt.Topic, rp)
			sp.ErrorCode = b.code(err)
			if err == nil {
				w.topic, w.partition = len(resp.Topics), len(st.Partitions)
				waits = append(waits, w)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, w := range waits {
		low, err := w.p.awaitLowWatermark(ctx, w.offset, w.epoch)
		sp := &resp.Topics[w.topic].Partitions[w.partition]
		sp.LowWatermark, sp.ErrorCode = low, b.code(err)
	}
	return resp, nil
}

// deleteWait is a partition whose start the leader moved, waiting for its
// in-sync followers to move theirs: where its answer goes in the
// response, and what to wait for.
type deleteWait struct {
	topic, partition int // indexes into the response
	p                *partition
	offset           int64
	epoch            int32
}

// deleteRecords moves one partition's log start offset, on its leader, to
// the offset rp asks for, and returns what to wait for.
func (b *Broker) deleteRecords(topic string, rp kmsg.DeleteRecordsRequestTopicPartition) (deleteWait, error) {
	p, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return deleteWait{}, err
	}
	// Hold the role from the check to the end of the move, so that a
	// replica that stopped leading meanwhile does not cut its log.
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	leader, epoch := p.isLeader()
	if !leader {
		return deleteWait{}, fmt.Errorf("%w: broker %d does not lead %s", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
	}
	if policy := b.cfg.topicConfig(p.topic.configs(), "cleanup.policy"); !hasPolicy(policy, log.CleanupDelete) {
		return deleteWait{}, fmt.Errorf("%w: %s has cleanup.policy %s; records are deleted only where it includes delete", kerr.PolicyViolation, p, policy)
	}
	offset, err := deleteOffset(p, rp.Offset)
	if err != nil {
		return deleteWait{}, err
	}
	if err := p.log.AdvanceStart(offset); err != nil {
		return deleteWait{}, err
	}
	// Wake the followers' long-polling fetches: their answers carry the
	// new start, and they move theirs at once rather than at their next
	// record or replica.fetch.wait.max.ms.
	b.notifyAppend()
	return deleteWait{p: p, offset: offset, epoch: epoch}, nil
}

// deleteOffset is the offset a DeleteRecords asks for, checked against
// the high watermark: -1 is the high watermark itself; anything past it,
// or negative, is OFFSET_OUT_OF_RANGE (records not yet on every in-sync
// replica cannot be deleted from them all).
func deleteOffset(p *partition, asked int64) (int64, error) {
	hw := p.highWatermark()
	switch {
	case asked == -1:
		return hw, nil
	case asked < 0:
		return 0, fmt.Errorf("%w: offset %d; -1 asks for the high watermark, other offsets are 0 or more", kerr.OffsetOutOfRange, asked)
	case asked > hw:
		return 0, fmt.Errorf("%w: offset %d is past the high watermark of %s, %d", kerr.OffsetOutOfRange, asked, p, hw)
	}
	return asked, nil
}

// hasPolicy reports whether a cleanup.policy value ("compact,delete")
// includes policy.
func hasPolicy(value, policy string) bool {
	for _, v := range strings.Split(value, ",") {
		if strings.TrimSpace(v) == policy {
			return true
		}
	}
	return false
}
