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
	for _, a := range rt.Assignment {
		if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
			return fmt.Errorf("%w: replicas %v; this cluster has only broker %d", kerr.InvalidReplicaAssignment, a.Replicas, b.cfg.NodeID)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[rt.Topic]
	if t == nil {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, rt.Topic)
	}
	if have := int32(len(t.partitions)); rt.Count <= have || rt.Count > maxPartitions {
		return fmt.Errorf("%w: topic %q has %d partitions; the count can only grow, up to %d", kerr.InvalidPartitions, rt.Topic, have, maxPartitions)
	}
	if validateOnly {
		return nil
	}
	had := int32(len(t.partitions))
	if err := b.addPartitions(t, rt.Count); err != nil {
		b.dropPartitions(t, had)
		return err
	}
	if err := b.saveTopics(); err != nil {
		b.dropPartitions(t, had) // not on disk, so not added
		return err
	}
	return nil
}
