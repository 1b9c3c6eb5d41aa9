package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterPartitionReassignments: move partitions to other brokers
// (kafka-reassign-partitions --execute, KIP-455), or cancel a move in
// progress (--cancel: a null replica list). The controller records the
// start; the added replicas catch up as followers and join the ISR; then
// the controller completes the move, leadership leaving with the leaving
// replicas, which delete their copies (controller.Reassign).
//
// Behavior: the answer says the reassignment started, not that it is
// done: ListPartitionReassignments, or Metadata's replicas, tell when it
// is. Each partition gets its own code: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_REPLICA_ASSIGNMENT (a broker twice, a broker not in the cluster,
// a move that would leave no in-sync replica), NO_REASSIGNMENT_IN_PROGRESS
// for a cancel with nothing to cancel, INVALID_REPLICATION_FACTOR when v1's
// allow_replication_factor_change is false and the count changes
// (KIP-860). A broker that is not the active controller passes the request
// on to it (KIP-590).
//
// Version notes: v0 is flexible; v1 adds allow_replication_factor_change.
func init() { register(kmsg.AlterPartitionAssignments, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	answer := func(code func(topic string, partition int32, replicas []int32) (int16, *string)) {
		for _, rt := range req.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode, sp.ErrorMessage = code(rt.Topic, rp.Partition, rp.Replicas)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			answer(func(string, int32, []int32) (int16, *string) { return code, nil })
			return resp
		})
	}
	answer(func(topic string, partition int32, replicas []int32) (int16, *string) {
		err := b.reassign(topic, partition, replicas, r.version < 1 || req.AllowReplicationFactorChange)
		return b.code(err), errorMessage(err)
	})
	return resp, nil
}

// reassign starts, replaces or (replicas nil) cancels one partition's
// reassignment.
func (b *Broker) reassign(topic string, partition int32, replicas []int32, allowNewReplicationFactor bool) error {
	if replicas != nil && !allowNewReplicationFactor {
		p, ok := b.ctrl.Image().Partition(topic, partition)
		if ok && len(replicas) != len(p.Original()) {
			return fmt.Errorf("%w: %d replicas for a partition of %d, and the request does not allow a change", kerr.InvalidReplicationFactor, len(replicas), len(p.Original()))
		}
	}
	return b.ctrl.AlterReassignment(topic, partition, replicas)
}
