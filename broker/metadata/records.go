package metadata

import (
	"errors"
	"fmt"
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

// ErrStale is the error of a change proposed against an old partition epoch.
var ErrStale = fmt.Errorf("%w: the partition changed since", kerr.InvalidUpdateVersion)

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
