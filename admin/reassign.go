package admin

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments moves partitions' replicas (KIP-455): for
// each partition, the replica list it should have, the preferred leader
// first; a nil list cancels the partition's reassignment in progress.
//
// The controller answers at once, before any data moves: it adds the new
// replicas, which copy the partition from its leader as followers do;
// once they are all in the ISR it makes the list the assignment (electing
// a leader among them if the old one is leaving) and drops the replicas
// that are not in it. ListPartitionReassignments shows what is still
// moving. The map holds each partition's error: NO_REASSIGNMENT_IN_PROGRESS
// for a cancel of a partition that is not moving, INVALID_REPLICA_ASSIGNMENT
// for a list with an unknown broker or a broker twice.
func (c *Client) AlterPartitionReassignments(ctx context.Context, targets map[TopicPartition][]int32) (map[TopicPartition]error, error) {
	asked := slices.SortedFunc(maps.Keys(targets), compareTP)
	pending := newPendingPartitions(asked)
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		open, _ := pending.open()
		for topic, ps := range byTopic(open) {
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic = topic
			for _, p := range ps {
				rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
				rp.Partition, rp.Replicas = p, targets[TopicPartition{topic, p}]
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(resp *kmsg.AlterPartitionAssignmentsResponse) error {
		if err := kafkaError(resp.ErrorCode, resp.ErrorMessage); err != nil {
			return err
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				pending.settle(TopicPartition{t.Topic, p.Partition}, kafkaError(p.ErrorCode, p.ErrorMessage))
			}
		}
		return pending.again()
	})
	return pending.result(err, nil)
}

// Reassignment is a partition's reassignment in progress.
type Reassignment struct {
	// Replicas is the partition's replica set while it moves: the old and
	// the new replicas together.
	Replicas []int32
	// Adding are the new replicas still catching up; Removing the old ones
	// that leave once they have.
	Adding, Removing []int32
}

// ListPartitionReassignments lists the reassignments in progress of the
// given partitions, or of every partition when none is given. A partition
// that is not moving is not in the map. The controller answers.
func (c *Client) ListPartitionReassignments(ctx context.Context, partitions ...TopicPartition) (map[TopicPartition]Reassignment, error) {
	var out map[TopicPartition]Reassignment
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrListPartitionReassignmentsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		for topic, ps := range byTopic(partitions) {
			rt := kmsg.NewListPartitionReassignmentsRequestTopic()
			rt.Topic, rt.Partitions = topic, ps
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(resp *kmsg.ListPartitionReassignmentsResponse) error {
		if err := kafkaError(resp.ErrorCode, resp.ErrorMessage); err != nil {
			return err
		}
		out = map[TopicPartition]Reassignment{}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				out[TopicPartition{t.Topic, p.Partition}] = Reassignment{Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas}
			}
		}
		return nil
	})
	return out, err
}
