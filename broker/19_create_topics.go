package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// CreateTopics: create topics with a partition count, a replication factor
// and topic configs (retention.ms, cleanup.policy, ...), as kafka-topics
// --create and the admin clients do.
//
// Behavior: each topic succeeds or fails alone: TOPIC_ALREADY_EXISTS,
// INVALID_TOPIC_EXCEPTION for a bad name, INVALID_PARTITIONS,
// INVALID_REPLICATION_FACTOR (this cluster has one broker), INVALID_CONFIG
// for a config klab does not implement or a bad value. -1 partitions or
// replication factor takes the broker's num.partitions and
// default.replication.factor. validate_only checks without creating.
//
// On a broker that is not the active controller, the request is passed on
// to it (KIP-590), and answered once this broker's metadata has the topics.
//
// Version notes: v1 adds validate_only and error messages, v5 is flexible
// and returns the topic's configs, v7 its id.
func init() { register(kmsg.CreateTopics, 0, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	if !b.ctrl.Active() {
		return b.forwardCreateTopics(ctx, r)
	}
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		t, err := b.createFromRequest(rt, seen[rt.Topic] > 1, req.ValidateOnly)
		st.ErrorCode, st.ErrorMessage = b.code(err), errorMessage(err)
		if err == nil {
			st.TopicID = t.ID
			st.NumPartitions = int32(len(t.Partitions))
			st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
			for _, c := range b.describeTopicConfigs(t.Configs, nil, false, false) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, int8(c.Source), c.IsSensitive
				st.Configs = append(st.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// forwardCreateTopics passes CreateTopics on to the active controller and,
// before answering, waits for the topics it created to reach this broker.
func (b *Broker) forwardCreateTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreateTopicsRequest)
	raw, err := b.forwardToController(ctx, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic, st.ErrorCode = rt.Topic, code
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
	resp, ok := raw.(*kmsg.CreateTopicsResponse)
	if err != nil || !ok || req.ValidateOnly {
		return raw, err
	}
	for i, st := range resp.Topics {
		if st.ErrorCode != 0 {
			continue
		}
		// Before v7 the answer carries no topic id: the name must do.
		created := func(im *metadata.Image) bool {
			t := im.Topic(st.Topic)
			return t != nil && (t.ID == st.TopicID || r.version < 7)
		}
		if err := b.awaitImage(ctx, created); err != nil {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = b.code(err), errorMessage(err)
		}
	}
	return resp, nil
}

func (b *Broker) createFromRequest(rt kmsg.CreateTopicsRequestTopic, duplicate, validateOnly bool) (*metadata.Topic, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: topic %q is in the request more than once", kerr.InvalidRequest, rt.Topic)
	}
	n, rf := rt.NumPartitions, rt.ReplicationFactor
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rf != -1 {
			return nil, fmt.Errorf("%w: give either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
		}
		assignment = make([][]int32, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(assignment) || assignment[a.Partition] != nil {
				return nil, fmt.Errorf("%w: partitions must be numbered 0 to %d, once each", kerr.InvalidReplicaAssignment, len(assignment)-1)
			}
			assignment[a.Partition] = a.Replicas
		}
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, fmt.Errorf("%w: config %s has no value", kerr.InvalidConfig, c.Name)
		}
		configs[c.Name] = *c.Value
	}
	return b.createTopic(rt.Topic, n, rf, assignment, configs, validateOnly)
}
