package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListPartitionReassignments: the reassignments in progress
// (kafka-reassign-partitions --list and --verify), each with its replicas
// and the replicas being added and removed (KIP-455). A null topic list
// asks for every partition; a partition named but not being reassigned is
// left out of the answer, as Kafka does.
//
// Behavior: the active controller answers, as in Kafka: any other broker
// passes the request on to it (KIP-590), since its own metadata may be a
// moment behind — a reassignment just started could be missing from it.
//
// Version notes: v0 is flexible.
func init() { register(kmsg.ListPartitionReassignments, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			return resp
		})
	}
	asked := func(topic string, partition int32) bool {
		if req.Topics == nil {
			return true
		}
		for _, rt := range req.Topics {
			if rt.Topic == topic {
				for _, p := range rt.Partitions {
					if p == partition {
						return true
					}
				}
			}
		}
		return false
	}
	var st *kmsg.ListPartitionReassignmentsResponseTopic
	for _, ra := range b.ctrl.Reassignments() {
		if !asked(ra.Topic, ra.Partition) {
			continue
		}
		if st == nil || st.Topic != ra.Topic {
			resp.Topics = append(resp.Topics, kmsg.NewListPartitionReassignmentsResponseTopic())
			st = &resp.Topics[len(resp.Topics)-1]
			st.Topic = ra.Topic
		}
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition, sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = ra.Partition, ra.Replicas, ra.Adding, ra.Removing
		if sp.AddingReplicas == nil {
			sp.AddingReplicas = []int32{}
		}
		if sp.RemovingReplicas == nil {
			sp.RemovingReplicas = []int32{}
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return resp, nil
}
