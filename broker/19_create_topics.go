package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
// Version notes: v1 adds validate_only and error messages, v5 is flexible
// and returns the topic's configs, v7 its id.
func init() { register(kmsg.CreateTopics, 0, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
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
			st.TopicID = t.id
			st.NumPartitions = int32(len(t.partitions))
			if req.ValidateOnly {
				st.NumPartitions = rt.NumPartitions
			}
			st.ReplicationFactor = 1
			for _, c := range b.describeTopicConfigs(t.configs, nil, false, false) {
				rc := kmsg.NewCreateTopicsResponseTopicConfig()
				rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.IsSensitive = c.Name, c.Value, c.ReadOnly, int8(c.Source), c.IsSensitive
				st.Configs = append(st.Configs, rc)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createFromRequest(rt kmsg.CreateTopicsRequestTopic, duplicate, validateOnly bool) (*topic, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: topic %q is in the request more than once", kerr.InvalidRequest, rt.Topic)
	}
	n, rf := rt.NumPartitions, rt.ReplicationFactor
	if len(rt.ReplicaAssignment) > 0 {
		if n != -1 || rf != -1 {
			return nil, fmt.Errorf("%w: give either a replica assignment or partitions and replication factor", kerr.InvalidRequest)
		}
		for _, a := range rt.ReplicaAssignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != b.cfg.NodeID {
				return nil, fmt.Errorf("%w: partition %d on brokers %v; this cluster has only broker %d", kerr.InvalidReplicaAssignment, a.Partition, a.Replicas, b.cfg.NodeID)
			}
		}
		n, rf = int32(len(rt.ReplicaAssignment)), 1
	}
	configs := map[string]string{}
	for _, c := range rt.Configs {
		if c.Value == nil {
			return nil, fmt.Errorf("%w: config %s has no value", kerr.InvalidConfig, c.Name)
		}
		configs[c.Name] = *c.Value
	}
	return b.createTopic(rt.Topic, n, rf, configs, validateOnly)
}
