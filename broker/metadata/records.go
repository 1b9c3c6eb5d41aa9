package metadata

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Record is one entry of the metadata log: one decision of the controller.
// Exactly one of its fields is set.
type Record struct {
	// InitCluster names the cluster; the first controller writes it once.
	InitCluster string `json:"initCluster,omitempty"`
	// RegisterBroker records a broker's address and rack.
	RegisterBroker *Broker `json:"registerBroker,omitempty"`
	// CreateTopic creates a topic with its partitions' assignments.
	CreateTopic *Topic `json:"createTopic,omitempty"`
	// DeleteTopic removes a topic by name.
	DeleteTopic string `json:"deleteTopic,omitempty"`
	// CreatePartitions adds partitions to a topic.
	CreatePartitions *CreatePartitions `json:"createPartitions,omitempty"`
	// ChangePartition changes a partition's leader or ISR.
	ChangePartition *PartitionChange `json:"changePartition,omitempty"`
	// AllocateProducerIDs gives a broker a block of producer ids.
	AllocateProducerIDs *ProducerIDBlock `json:"allocateProducerIds,omitempty"`
	// AlterConfigs sets and deletes a topic's or a broker's dynamic configs.
	AlterConfigs *ConfigChange `json:"alterConfigs,omitempty"`
	// ControlledShutdown marks a registered broker, in the incarnation it
	// names, as shutting down (InControlledShutdown).
	ControlledShutdown *BrokerShutdown `json:"controlledShutdown,omitempty"`
}

// BrokerShutdown names the broker, and the life of it, that asked to stop.
type BrokerShutdown struct {
	ID          int32 `json:"id"`
	Incarnation int64 `json:"incarnation"`
}

// ErrStaleBroker is the error of a shutdown for a broker's earlier life:
// the broker that asked has started again since, and the new one must not
// be taken for leaving.
var ErrStaleBroker = fmt.Errorf("%w: the broker has started again since", kerr.StaleBrokerEpoch)

// CreatePartitions adds partitions, already assigned, at the end of a topic.
type CreatePartitions struct {
	Topic      string      `json:"topic"`
	Partitions []Partition `json:"partitions"`
}

// PartitionChange moves a partition's leadership or changes its ISR. It is
// proposed against the partition epoch its author saw: if the partition
// changed since, the change is refused, so that a decision taken on stale
// information (a deposed leader shrinking the ISR, say) never lands.
type PartitionChange struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	PartitionEpoch int32  `json:"partitionEpoch"`
	// Leader is the new leader, -1 for none; nil leaves it.
	Leader *int32 `json:"leader,omitempty"`
	// ISR is the new in-sync replica set; nil leaves it.
	ISR []int32 `json:"isr,omitempty"`
	// Replicas, when not nil, is the new replica list, with Adding and
	// Removing the reassignment it is part of (both empty: none). The
	// three change together: a reassignment starts, completes or is
	// cancelled in one record.
	Replicas []int32 `json:"replicas,omitempty"`
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// ProducerIDBlock is a range of producer ids, First to First+Size-1, that
// the controller gave one broker to hand out to idempotent producers
// (InitProducerId). Blocks never overlap, so each broker hands out ids from
// its own without asking anyone, and no two producers in the cluster ever
// get the same id. It plays the part of KRaft's ProducerIdsRecord
// (KIP-730), which records the next unallocated id (NextProducerId) and
// the broker and broker epoch it went to; here the record names the block
// itself, and applying it checks that it starts at the image's next id.
type ProducerIDBlock struct {
	// Broker is the broker the block was given to.
	Broker int32 `json:"broker"`
	First  int64 `json:"first"`
	Size   int32 `json:"size"`
}

// Last is the block's last producer id.
func (b ProducerIDBlock) Last() int64 { return b.First + int64(b.Size) - 1 }

// ErrStale is the error of a change proposed against an old partition epoch.
var ErrStale = fmt.Errorf("%w: the partition changed since", kerr.InvalidUpdateVersion)

// ErrStaleProducerIDs is the error of a producer id block that does not
// start at the image's next unallocated id: it was proposed on an image
// that lacked a block allocated since, which it would overlap.
var ErrStaleProducerIDs = fmt.Errorf("%w: producer ids were allocated since", kerr.InvalidUpdateVersion)

// apply returns the image after r, or the reason r does not apply. Apply
// must be deterministic: every broker runs it on the same records and must
// reach the same image.
func (im *Image) apply(r Record) (*Image, error) {
	next := im.clone()
	switch {
	case r.InitCluster != "":
		if next.ClusterID == "" {
			next.ClusterID = r.InitCluster
		}
	case r.RegisterBroker != nil:
		next.Brokers[r.RegisterBroker.ID] = *r.RegisterBroker
	case r.CreateTopic != nil:
		if _, ok := next.Topics[r.CreateTopic.Name]; ok {
			return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, r.CreateTopic.Name)
		}
		t := cloneTopic(r.CreateTopic)
		next.Topics[t.Name] = t
	case r.DeleteTopic != "":
		if _, ok := next.Topics[r.DeleteTopic]; !ok {
			return nil, fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, r.DeleteTopic)
		}
		delete(next.Topics, r.DeleteTopic)
	case r.CreatePartitions != nil:
		old := next.Topics[r.CreatePartitions.Topic]
		if old == nil {
			return nil, fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, r.CreatePartitions.Topic)
		}
		t := cloneTopic(old)
		t.Partitions = append(t.Partitions, r.CreatePartitions.Partitions...)
		next.Topics[t.Name] = t
	case r.ChangePartition != nil:
		if err := next.changePartition(*r.ChangePartition); err != nil {
			return nil, err
		}
	case r.AllocateProducerIDs != nil:
		if err := next.allocateProducerIDs(*r.AllocateProducerIDs); err != nil {
			return nil, err
		}
	case r.AlterConfigs != nil:
		if err := next.alterConfigs(*r.AlterConfigs); err != nil {
			return nil, err
		}
	case r.ControlledShutdown != nil:
		s := *r.ControlledShutdown
		b, ok := next.Brokers[s.ID]
		if !ok || b.Incarnation != s.Incarnation {
			return nil, fmt.Errorf("%w: broker %d, incarnation %d", ErrStaleBroker, s.ID, s.Incarnation)
		}
		b.InControlledShutdown = true
		next.Brokers[s.ID] = b
	default:
		return nil, errors.New("metadata: empty record")
	}
	return next, nil
}

// changePartition applies c to next, a clone of the image.
func (next *Image) changePartition(c PartitionChange) error {
	old := next.Topics[c.Topic]
	if old == nil || c.Partition < 0 || int(c.Partition) >= len(old.Partitions) {
		return fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, c.Topic, c.Partition)
	}
	t := cloneTopic(old)
	p := &t.Partitions[c.Partition]
	if c.PartitionEpoch != p.PartitionEpoch {
		return fmt.Errorf("%w: %s-%d is at partition epoch %d, the change was for %d", ErrStale, c.Topic, c.Partition, p.PartitionEpoch, c.PartitionEpoch)
	}
	if c.Replicas != nil {
		if err := reassignable(c); err != nil {
			return fmt.Errorf("%w: %s-%d", err, c.Topic, c.Partition)
		}
		p.Replicas = slices.Clone(c.Replicas)
		p.AddingReplicas = slices.Clone(c.Adding)
		p.RemovingReplicas = slices.Clone(c.Removing)
	}
	if c.ISR != nil {
		p.ISR = slices.Clone(c.ISR)
	}
	if c.Leader != nil && *c.Leader != p.Leader {
		p.Leader = *c.Leader
		p.LeaderEpoch++
	}
	// Whatever changed, the ISR and the leader are among the replicas: a
	// broker that holds no replica cannot have the partition's records.
	for _, id := range p.ISR {
		if !p.Has(id) {
			return fmt.Errorf("%w: broker %d is not a replica of %s-%d", kerr.IneligibleReplica, id, c.Topic, c.Partition)
		}
	}
	if p.Leader >= 0 && !p.Has(p.Leader) {
		return fmt.Errorf("%w: leader %d is not a replica of %s-%d", kerr.IneligibleReplica, p.Leader, c.Topic, c.Partition)
	}
	p.PartitionEpoch++
	next.Topics[t.Name] = t
	return nil
}

// allocateProducerIDs applies a block of producer ids to next, a clone of
// the image. The block must start exactly at the next unallocated id: two
// controllers (an old one that does not know yet it was deposed, and its
// successor), or one controller on an image behind the log, may each
// propose a block from the same next id; the log orders them, the first
// applied takes the ids, and the other is refused here, on every broker
// alike, before anyone hands out an id from it.
func (next *Image) allocateProducerIDs(b ProducerIDBlock) error {
	switch {
	case b.First != next.NextProducerID:
		return fmt.Errorf("%w: the block starts at %d, the next unallocated id is %d", ErrStaleProducerIDs, b.First, next.NextProducerID)
	case b.Size <= 0:
		return fmt.Errorf("%w: a block of %d producer ids", kerr.InvalidRequest, b.Size)
	case b.First > math.MaxInt64-int64(b.Size):
		return fmt.Errorf("%w: producer ids are used up", kerr.UnknownServerError)
	}
	next.NextProducerID = b.First + int64(b.Size)
	return nil
}

// reassignable checks a change's replica list: not empty, no broker twice,
// and the adding and removing replicas among the replicas, apart.
func reassignable(c PartitionChange) error {
	if len(c.Replicas) == 0 {
		return fmt.Errorf("%w: no replicas", kerr.InvalidReplicaAssignment)
	}
	for i, id := range c.Replicas {
		if slices.Contains(c.Replicas[:i], id) {
			return fmt.Errorf("%w: broker %d twice", kerr.InvalidReplicaAssignment, id)
		}
	}
	for _, id := range slices.Concat(c.Adding, c.Removing) {
		if !slices.Contains(c.Replicas, id) || slices.Contains(c.Adding, id) && slices.Contains(c.Removing, id) {
			return fmt.Errorf("%w: broker %d cannot be adding and removing, or either without being a replica", kerr.InvalidReplicaAssignment, id)
		}
	}
	return nil
}
