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
}

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
	if c.ISR != nil {
		for _, id := range c.ISR {
			if !p.Has(id) {
				return fmt.Errorf("%w: broker %d is not a replica of %s-%d", kerr.IneligibleReplica, id, c.Topic, c.Partition)
			}
		}
		p.ISR = slices.Clone(c.ISR)
	}
	if c.Leader != nil && *c.Leader != p.Leader {
		p.Leader = *c.Leader
		p.LeaderEpoch++
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
