package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
	"klab.dev/klab/broker/offsets"
	"klab.dev/klab/consumer/assign"
)

// OffsetDelete: delete a group's committed offsets of some partitions
// (KIP-496), as kafka-consumer-groups --delete-offsets does: for a topic
// the group no longer reads, whose offsets would otherwise stay until the
// group empties and they expire.
//
// Behavior: the coordinator errors of JoinGroup, for the group;
// GROUP_ID_NOT_FOUND for a group with neither members nor offsets;
// GROUP_SUBSCRIBED_TO_TOPIC, per partition, for a topic a member of the
// group subscribes to (while the group rebalances its subscriptions are
// not settled: every topic counts as subscribed). Partitions without a
// commit are not an error.
func init() { register(kmsg.OffsetDelete, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	op, err := b.coord.coordinating(req.Group)
	if err != nil {
		resp.ErrorCode = b.code(err)
		return resp, nil
	}
	g, live := b.coord.groups.Lookup(req.Group)
	committed := op.store.Committed(req.Group)
	if !live && len(committed) == 0 {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	subscribed := func(string) bool { return false }
	if live {
		subscribed = subscribedTopics(g.Describe())
	}
	asked := map[offsets.TopicPartition]bool{}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			tp := offsets.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
			if subscribed(rt.Topic) {
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			} else {
				asked[tp] = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	_, err = b.coord.deleteOffsets(ctx, op, req.Group, false, func(committed map[offsets.TopicPartition]offsets.Commit) []offsets.TopicPartition {
		var tps []offsets.TopicPartition
		for tp := range committed {
			if asked[tp] {
				tps = append(tps, tp)
			}
		}
		return tps
	})
	if err != nil {
		resp.ErrorCode = b.code(fmt.Errorf("deleting offsets of %q: %w", req.Group, err))
		resp.Topics = nil
	}
	return resp, nil
}

// subscribedTopics tells which topics a group's members subscribe to, from
// their consumer-protocol subscriptions. Only a Stable consumer group's
// subscriptions are settled; for any other group with members, every topic
// counts as subscribed, so that no offset in use is deleted.
func subscribedTopics(d group.Description) func(string) bool {
	if len(d.Members) == 0 {
		return func(string) bool { return false }
	}
	if d.State != group.Stable || d.ProtocolType != "consumer" {
		return func(string) bool { return true }
	}
	topics := map[string]bool{}
	for _, m := range d.Members {
		s, err := assign.DecodeSubscription(m.Metadata)
		if err != nil {
			return func(string) bool { return true }
		}
		for _, t := range s.Topics {
			topics[t] = true
		}
	}
	return func(t string) bool { return topics[t] }
}
