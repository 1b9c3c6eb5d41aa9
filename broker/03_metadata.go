package broker

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata: which brokers there are, where they listen, and for each topic
// asked about its partitions with their leader, replicas and in-sync
// replicas. Clients ask it first and again whenever a leader may have moved.
//
// Behavior: a null topic list (an empty one in v0) asks for every topic. A
// topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION, unless
// auto.create.topics.enable is on and the request allows it (v4+), when it
// is created with num.partitions partitions. With one broker, that broker
// leads every partition and is its only replica.
//
// Version notes: v1 adds the controller and null for all topics, v2 the
// cluster id, v4 allow_auto_topic_creation, v7 leader epochs, v9 is
// flexible, v10 adds topic ids, v12 lets a topic be asked for by id alone.
func init() { register(kmsg.Metadata, 0, 12, handleMetadata) }

func handleMetadata(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = []kmsg.MetadataResponseBroker{b.brokerMetadata()}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.cfg.NodeID

	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.sortedTopics() {
			resp.Topics = append(resp.Topics, b.topicMetadata(t))
		}
		return resp, nil
	}
	for _, rt := range req.Topics {
		t := b.lookupTopic(rt.Topic, rt.TopicID)
		if t == nil && rt.Topic != nil && b.cfg.AutoCreateTopics && (r.version < 4 || req.AllowAutoTopicCreation) {
			// Another request may have created it meanwhile: that is no error.
			if _, err := b.createTopic(*rt.Topic, -1, -1, nil, false); err != nil && errorCode(err) != kerr.TopicAlreadyExists.Code {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic, mt.ErrorCode = rt.Topic, errorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			t = b.lookupTopic(rt.Topic, rt.TopicID)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, b.topicMetadata(t))
	}
	return resp, nil
}

// lookupTopic finds a topic by name, or by id when the name is null.
func (b *Broker) lookupTopic(name *string, id [16]byte) *topic {
	if name != nil {
		return b.topicByName(*name)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if t.id == id {
			return t
		}
	}
	return nil
}

// brokerMetadata describes this broker for Metadata and DescribeCluster.
func (b *Broker) brokerMetadata() kmsg.MetadataResponseBroker {
	host, port, _ := net.SplitHostPort(b.addr)
	p, _ := strconv.Atoi(port)
	mb := kmsg.NewMetadataResponseBroker()
	mb.NodeID, mb.Host, mb.Port = b.cfg.NodeID, host, int32(p)
	if b.cfg.Rack != "" {
		mb.Rack = &b.cfg.Rack
	}
	return mb
}

func (b *Broker) topicMetadata(t *topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.name
	mt.Topic, mt.TopicID = &name, t.id
	b.mu.RLock()
	n := len(t.partitions)
	b.mu.RUnlock()
	for i := range n {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = b.cfg.NodeID
		mp.LeaderEpoch = 0
		mp.Replicas = []int32{b.cfg.NodeID}
		mp.ISR = []int32{b.cfg.NodeID}
		mp.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
