// Package metadata is what the cluster knows to be true: its brokers, its
// topics, and for each partition its replicas, leader, in-sync replicas and
// epochs. It is the state machine of the cluster's metadata log, as in
// Kafka's KRaft mode: the active controller writes Records to a replicated
// log (hashicorp/raft here), and every broker applies them, in the same
// order, to its own copy of the Image. Nothing else ever changes it.
//
// An Image is never modified once published: each applied record makes a
// new one, so a reader holds a consistent view without locks.
package metadata

import (
	"slices"
	"sort"
)

// Broker is a broker as the controller registered it.
type Broker struct {
	ID   int32  `json:"id"`
	Addr string `json:"addr"` // host:port clients reach it at
	Rack string `json:"rack,omitempty"`
	// Incarnation is the broker's start, as it gossips it: a broker that
	// comes back with another is registered again, after the controller has
	// treated its previous life as dead (KRaft's broker epoch).
	Incarnation int64 `json:"incarnation,omitempty"`
	// InControlledShutdown says the broker asked to stop (SIGTERM): the
	// controller moves the leadership of its partitions to other in-sync
	// replicas and takes it out of their ISRs, and no partition is given to
	// it, until it registers again with its next incarnation (KRaft's
	// BrokerRegistrationChangeRecord with InControlledShutdown).
	InControlledShutdown bool `json:"inControlledShutdown,omitempty"`
}

// Partition is one partition's replication state.
type Partition struct {
	// Replicas are the brokers that hold a copy, the preferred leader first.
	Replicas []int32 `json:"replicas"`
	// Leader takes the writes; -1 when no replica can lead (offline).
	Leader int32 `json:"leader"`
	// LeaderEpoch grows each time the leader changes. Replicas and clients
	// that carry an older one are fenced (KIP-101, KIP-320).
	LeaderEpoch int32 `json:"leaderEpoch"`
	// ISR are the in-sync replicas: those that have every record below
	// the high watermark, and so may become leader without losing any.
	ISR []int32 `json:"isr"`
	// PartitionEpoch grows with every change to the partition; a change
	// proposed against an older one is refused (INVALID_UPDATE_VERSION).
	PartitionEpoch int32 `json:"partitionEpoch"`
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress (KIP-455): Replicas is then the target replicas followed by
	// those leaving; the adding ones catch up as followers, and once every
	// target replica is in the ISR the controller drops the removing ones.
	// Both are empty when no reassignment is in progress.
	AddingReplicas   []int32 `json:"addingReplicas,omitempty"`
	RemovingReplicas []int32 `json:"removingReplicas,omitempty"`
}

// Reassigning reports whether a reassignment of the partition is in progress.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// Target is the replica list a reassignment in progress moves to: the
// replicas without the removing ones. Without a reassignment, Replicas.
func (p Partition) Target() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.RemovingReplicas, id) })
}

// Original is the replica list a reassignment in progress started from:
// the replicas without the adding ones. Cancelling it goes back there.
func (p Partition) Original() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(id int32) bool { return slices.Contains(p.AddingReplicas, id) })
}

// Has reports whether broker id is one of the partition's replicas.
func (p Partition) Has(id int32) bool { return slices.Contains(p.Replicas, id) }

// InSync reports whether broker id is in the ISR.
func (p Partition) InSync(id int32) bool { return slices.Contains(p.ISR, id) }

// Topic is a topic and its partitions.
type Topic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// Image is the cluster's metadata after some prefix of the metadata log.
type Image struct {
	ClusterID string            `json:"clusterId"`
	Brokers   map[int32]Broker  `json:"brokers"`
	Topics    map[string]*Topic `json:"topics"`
	// NextProducerID is the first producer id no block has taken yet: the
	// next block the controller allocates starts there. It only grows, and
	// is kept in snapshots with the rest of the image, so that a producer id
	// is never handed out twice, whatever restarts.
	NextProducerID int64 `json:"nextProducerId"`
	// BrokerConfigs are the dynamic broker configs, by broker id in
	// decimal, or ClusterDefault for every broker's default (Kafka's
	// DYNAMIC_BROKER_CONFIG and DYNAMIC_DEFAULT_BROKER_CONFIG). Each map is
	// replaced whole when it changes, never modified. See BrokerConfig.
	BrokerConfigs map[string]map[string]string `json:"brokerConfigs,omitempty"`
	// Offset is the index of the last record applied in the metadata log.
	Offset uint64 `json:"offset"`
}

// Empty is the image before any record.
func Empty() *Image {
	return &Image{Brokers: map[int32]Broker{}, Topics: map[string]*Topic{}}
}

// Topic returns a topic by name, or nil.
func (im *Image) Topic(name string) *Topic { return im.Topics[name] }

// TopicByID returns a topic by id, or nil.
func (im *Image) TopicByID(id [16]byte) *Topic {
	for _, t := range im.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// Partition returns a partition, and whether it exists.
func (im *Image) Partition(topic string, index int32) (Partition, bool) {
	t := im.Topics[topic]
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[index], true
}

// SortedTopics returns the topics by name.
func (im *Image) SortedTopics() []*Topic {
	out := make([]*Topic, 0, len(im.Topics))
	for _, t := range im.Topics {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SortedBrokers returns the registered brokers by id.
func (im *Image) SortedBrokers() []Broker {
	out := make([]Broker, 0, len(im.Brokers))
	for _, b := range im.Brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// clone copies the image's maps (not the topics in them) for a change.
func (im *Image) clone() *Image {
	out := *im
	out.Brokers = make(map[int32]Broker, len(im.Brokers))
	for k, v := range im.Brokers {
		out.Brokers[k] = v
	}
	out.Topics = make(map[string]*Topic, len(im.Topics))
	for k, v := range im.Topics {
		out.Topics[k] = v
	}
	return &out
}

// cloneTopic copies a topic and its partitions for a change.
func cloneTopic(t *Topic) *Topic {
	out := *t
	out.Partitions = slices.Clone(t.Partitions)
	return &out
}
