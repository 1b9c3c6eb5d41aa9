package controller

import (
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// This file is what brokers ask of the active controller: create and delete
// topics, add partitions, change a partition's ISR (the leader's
// AlterPartition), move leadership back to preferred leaders. Each checks
// the request against the current image and proposes a record; the
// metadata log decides, by applying it, whether it happened.

// CreateTopic creates a topic with n partitions of rf replicas, placed by
// Assign on the live brokers, or as assignment says when it is not empty
// (one replica list per partition). validateOnly checks without creating.
func (c *Controller) CreateTopic(name string, n int32, rf int16, assignment [][]int32, configs map[string]string, validateOnly bool) (*metadata.Topic, error) {
	if !c.Active() {
		return nil, ErrNotController
	}
	im := c.fsm.Image()
	if im.Topic(name) != nil {
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	replicas, err := c.placement(im, int(n), int(rf), assignment)
	if err != nil {
		return nil, err
	}
	t := &metadata.Topic{Name: name, Configs: configs, Partitions: c.newPartitions(replicas)}
	if validateOnly {
		return t, nil
	}
	rand.Read(t.ID[:])
	if err := c.propose(metadata.Record{CreateTopic: t}); err != nil {
		return nil, err
	}
	return c.fsm.Image().Topic(name), nil
}

// DeleteTopic deletes a topic; each replica deletes its data when it
// applies the record.
func (c *Controller) DeleteTopic(name string) error {
	if !c.Active() {
		return ErrNotController
	}
	if c.fsm.Image().Topic(name) == nil {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
	}
	return c.propose(metadata.Record{DeleteTopic: name})
}

// CreatePartitions grows a topic to total partitions.
func (c *Controller) CreatePartitions(name string, total int32, assignment [][]int32, validateOnly bool) error {
	if !c.Active() {
		return ErrNotController
	}
	im := c.fsm.Image()
	t := im.Topic(name)
	if t == nil {
		return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
	}
	have := int32(len(t.Partitions))
	if total <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the count only grows", kerr.InvalidPartitions, name, have)
	}
	replicas, err := c.placement(im, int(total-have), len(t.Partitions[0].Replicas), assignment)
	if err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return c.propose(metadata.Record{CreatePartitions: &metadata.CreatePartitions{Topic: name, Partitions: c.newPartitions(replicas)}})
}

// placement checks a requested assignment, or makes one.
func (c *Controller) placement(im *metadata.Image, n, rf int, assignment [][]int32) ([][]int32, error) {
	eligible := c.eligible(im)
	if len(assignment) == 0 {
		var live []metadata.Broker
		for _, b := range im.SortedBrokers() {
			if eligible(b.ID) {
				live = append(live, b)
			}
		}
		return Assign(live, n, rf, mathrand.IntN(max(len(live), 1)))
	}
	if len(assignment) != n {
		return nil, fmt.Errorf("%w: %d replica lists for %d partitions", kerr.InvalidReplicaAssignment, len(assignment), n)
	}
	for i, replicas := range assignment {
		if len(replicas) != len(assignment[0]) || len(replicas) == 0 {
			return nil, fmt.Errorf("%w: every partition needs the same number of replicas, at least one", kerr.InvalidReplicaAssignment)
		}
		for j, id := range replicas {
			if _, ok := im.Brokers[id]; !ok {
				return nil, fmt.Errorf("%w: partition %d: broker %d is not in the cluster", kerr.InvalidReplicaAssignment, i, id)
			}
			if slices.Contains(replicas[:j], id) {
				return nil, fmt.Errorf("%w: partition %d: broker %d twice", kerr.InvalidReplicaAssignment, i, id)
			}
		}
	}
	return assignment, nil
}

// newPartitions starts partitions on their replicas: the first live
// replica leads, the live ones are in sync (a new partition is empty, so
// every replica has all of it).
func (c *Controller) newPartitions(replicas [][]int32) []metadata.Partition {
	eligible := c.eligible(c.fsm.Image())
	out := make([]metadata.Partition, len(replicas))
	for i, rs := range replicas {
		p := metadata.Partition{Replicas: slices.Clone(rs), Leader: -1}
		for _, id := range rs {
			if eligible(id) {
				p.ISR = append(p.ISR, id)
				if p.Leader < 0 {
					p.Leader = id
				}
			}
		}
		if len(p.ISR) == 0 {
			p.ISR = slices.Clone(rs)
		}
		out[i] = p
	}
	return out
}

// AlterPartition is a leader's request to change its partition's ISR: to
// shrink it when a follower falls behind, to grow it when one catches up.
// It is refused unless broker leads the partition in leaderEpoch and saw
// its latest partitionEpoch; a replica that is not alive cannot join.
func (c *Controller) AlterPartition(broker int32, topic string, partition, leaderEpoch, partitionEpoch int32, isr []int32) (metadata.Partition, error) {
	if !c.Active() {
		return metadata.Partition{}, ErrNotController
	}
	p, ok := c.fsm.Image().Partition(topic, partition)
	switch {
	case !ok:
		return p, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topic, partition)
	case p.Leader != broker:
		return p, fmt.Errorf("%w: broker %d does not lead %s-%d, %d does", kerr.NotLeaderForPartition, broker, topic, partition, p.Leader)
	case leaderEpoch != p.LeaderEpoch:
		return p, fmt.Errorf("%w: leader epoch %d, the partition is at %d", kerr.FencedLeaderEpoch, leaderEpoch, p.LeaderEpoch)
	case partitionEpoch != p.PartitionEpoch:
		return p, fmt.Errorf("%w: partition epoch %d, the partition is at %d", kerr.InvalidUpdateVersion, partitionEpoch, p.PartitionEpoch)
	case !slices.Contains(isr, broker):
		return p, fmt.Errorf("%w: the leader must stay in the ISR", kerr.InvalidRequest)
	}
	eligible := c.eligible(c.fsm.Image())
	for _, id := range isr {
		if !eligible(id) && !p.InSync(id) {
			return p, fmt.Errorf("%w: broker %d is not alive, or is shutting down", kerr.IneligibleReplica, id)
		}
	}
	err := c.propose(metadata.Record{ChangePartition: &metadata.PartitionChange{Topic: topic, Partition: partition, PartitionEpoch: partitionEpoch, ISR: isr}})
	p, _ = c.fsm.Image().Partition(topic, partition)
	return p, err
}

// ElectPreferred gives a partition's leadership to its preferred leader,
// the first replica, if it is eligible and in sync.
func (c *Controller) ElectPreferred(topic string, partition int32) error {
	return c.changePartition(topic, partition, func(im *metadata.Image, p metadata.Partition) (metadata.PartitionChange, error) {
		if p.Leader == p.Replicas[0] {
			return metadata.PartitionChange{}, fmt.Errorf("%w: broker %d already leads %s-%d", kerr.ElectionNotNeeded, p.Leader, topic, partition)
		}
		want, ok := preferred(p, c.eligible(im))
		if !ok {
			return metadata.PartitionChange{}, fmt.Errorf("%w: broker %d is not alive and in sync", kerr.PreferredLeaderNotAvailable, p.Replicas[0])
		}
		return metadata.PartitionChange{Leader: &want}, nil
	})
}

// ElectUnclean gives a partition with no leader to an eligible replica, as
// kafka-leader-election --election-type unclean does: an in-sync one if
// there is one (nothing is lost), else the first eligible replica, in sync
// or not — the partition is back, and the records that replica lacks are
// lost. A partition that has a leader needs no election.
func (c *Controller) ElectUnclean(topic string, partition int32) error {
	return c.changePartition(topic, partition, func(im *metadata.Image, p metadata.Partition) (metadata.PartitionChange, error) {
		if p.Leader >= 0 {
			return metadata.PartitionChange{}, fmt.Errorf("%w: broker %d leads %s-%d", kerr.ElectionNotNeeded, p.Leader, topic, partition)
		}
		eligible := c.eligible(im)
		if id := firstEligible(p.Replicas, p.ISR, eligible); id >= 0 {
			return metadata.PartitionChange{Leader: &id}, nil
		}
		for _, id := range p.Replicas {
			if eligible(id) {
				c.log.Warn("controller: unclean leader election; records the new leader lacks are lost", "topic", topic, "partition", partition, "leader", id)
				return metadata.PartitionChange{Leader: &id, ISR: []int32{id}}, nil
			}
		}
		return metadata.PartitionChange{}, fmt.Errorf("%w: no replica of %s-%d is alive", kerr.EligibleLeadersNotAvailable, topic, partition)
	})
}

// changePartition proposes the change decide makes to a partition, from
// the image as it is now. The change is proposed against the partition's
// epoch: if the partition changed meanwhile (a leader's AlterPartition, the
// control loop), the metadata log refuses it as stale, and decide runs
// again on the newer image — the requester never sees
// INVALID_UPDATE_VERSION for a race it had no part in.
func (c *Controller) changePartition(topic string, partition int32, decide func(*metadata.Image, metadata.Partition) (metadata.PartitionChange, error)) error {
	var err error
	for range 5 {
		if !c.caughtUp() {
			return ErrNotController
		}
		im := c.fsm.Image()
		p, ok := im.Partition(topic, partition)
		if !ok {
			return fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topic, partition)
		}
		change, derr := decide(im, p)
		if derr != nil {
			return derr
		}
		change.Topic, change.Partition, change.PartitionEpoch = topic, partition, p.PartitionEpoch
		if err = c.propose(metadata.Record{ChangePartition: &change}); !errors.Is(err, metadata.ErrStale) {
			return err
		}
	}
	return err
}
