package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreatePartitions: add partitions to a topic (kafka-topics --alter
// --partitions). Partitions can only be added, never removed: a key's
// partition is its hash modulo the count, so adding partitions moves keys,
// which is why a keyed topic is best given enough partitions at creation.
//
// Version notes: v2 is flexible.
func init() { register(kmsg.CreatePartitions, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := b.growTopic(rt, req.ValidateOnly)
		st.ErrorCode, st.ErrorMessage = b.code(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// growTopic takes a topic to rt.Count partitions.
func (b *Broker) growTopic(rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	if rt.Count > maxPartitions {
		return fmt.Errorf("%w: %d partitions; a topic has up to %d", kerr.InvalidPartitions, rt.Count, maxPartitions)
	}
	var assignment [][]int32
	for _, a := range rt.Assignment {
		assignment = append(assignment, a.Replicas)
	}
	if err := b.ctrl.CreatePartitions(rt.Topic, rt.Count, assignment, validateOnly); err != nil || validateOnly {
		return err
	}
	return b.caughtUp()
}
