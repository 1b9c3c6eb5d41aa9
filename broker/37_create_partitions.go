package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// CreatePartitions: add partitions to a topic (kafka-topics --alter
// --partitions). Partitions can only be added, never removed: a key's
// partition is its hash modulo the count, so adding partitions moves keys,
// which is why a keyed topic is best given enough partitions at creation.
//
// On a broker that is not the active controller, the request is passed on
// to it (KIP-590), and answered once this broker's metadata has the new
// partitions.
//
// Version notes: v2 is flexible.
func init() { register(kmsg.CreatePartitions, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	if !b.ctrl.Active() {
		return b.forwardCreatePartitions(ctx, r)
	}
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

// forwardCreatePartitions passes CreatePartitions on to the active
// controller and, before answering, waits for the new partitions to reach
// this broker.
func (b *Broker) forwardCreatePartitions(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreatePartitionsRequest)
	raw, err := b.forwardToController(ctx, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreatePartitionsResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, code
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
	resp, ok := raw.(*kmsg.CreatePartitionsResponse)
	if err != nil || !ok || req.ValidateOnly {
		return raw, err
	}
	for i, st := range resp.Topics {
		if st.ErrorCode != 0 || i >= len(req.Topics) {
			continue
		}
		want := int(req.Topics[i].Count)
		if err := b.awaitImage(ctx, func(im *metadata.Image) bool { t := im.Topic(st.Topic); return t != nil && len(t.Partitions) >= want }); err != nil {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = b.code(err), errorMessage(err)
		}
	}
	return resp, nil
}
