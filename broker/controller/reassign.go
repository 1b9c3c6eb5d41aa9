package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// A reassignment moves a partition from one replica list to another with no
// moment when fewer copies are in sync than before (KIP-455). It goes in
// two steps, each one record in the metadata log:
//
//	start     Replicas = target + leaving      Adding = target − original
//	          (the leader keeps leading)       Removing = original − target
//	   ...the adding replicas fetch from the leader, catch up, and the
//	      leader asks for them to join the ISR (AlterPartition)...
//	complete  Replicas = target, ISR = ISR ∩ target, Adding = Removing = ∅;
//	          if the leader is leaving, an in-sync target replica leads
//
// Brokers act on the records: a broker that finds itself a replica starts
// following; one that is no longer a replica deletes its copy. Cancelling
// before completion goes back to the original replicas.

// Reassign is the change that starts a reassignment of p to target, or
// replaces the one in progress with it; a nil target cancels the one in
// progress. eligible says which brokers may lead (see Eligible). It
// returns the change to record (without topic, partition and epoch), or
// the reason the request is refused, with Kafka's error codes:
//
//   - A target names each broker once, and at least one
//     (INVALID_REPLICA_ASSIGNMENT).
//   - A new target replaces a reassignment in progress: it is measured
//     from the original replicas, not from the current list, so replicas
//     that were only being added and are not in the new target go away.
//   - Cancelling with no reassignment in progress is
//     NO_REASSIGNMENT_IN_PROGRESS; cancelling goes back to the original
//     replicas, and is refused (INVALID_REPLICA_ASSIGNMENT) if none of
//     them is in the ISR: that would lose acknowledged records.
//   - The ISR only ever holds replicas; a leader that is no longer a
//     replica gives way to the first eligible in-sync one of the new list.
func Reassign(p metadata.Partition, target []int32, eligible func(int32) bool) (metadata.PartitionChange, error) {
	//klab:lesson 11 begin Reassign
	original := p.Original()
	if target == nil {
		if !p.Reassigning() {
			return metadata.PartitionChange{}, fmt.Errorf("%w: no reassignment to cancel", kerr.NoReassignmentInProgress)
		}
		target = original
	}
	if len(target) == 0 {
		return metadata.PartitionChange{}, fmt.Errorf("%w: a partition needs at least one replica", kerr.InvalidReplicaAssignment)
	}
	for i, id := range target {
		if slices.Contains(target[:i], id) {
			return metadata.PartitionChange{}, fmt.Errorf("%w: broker %d twice", kerr.InvalidReplicaAssignment, id)
		}
	}
	missing := func(from []int32) func(int32) bool {
		return func(id int32) bool { return !slices.Contains(from, id) }
	}
	leaving := slices.DeleteFunc(slices.Clone(original), func(id int32) bool { return slices.Contains(target, id) })
	change := metadata.PartitionChange{
		Replicas: slices.Concat(target, leaving),
		Adding:   slices.DeleteFunc(slices.Clone(target), func(id int32) bool { return slices.Contains(original, id) }),
		Removing: leaving,
	}
	change.ISR = slices.DeleteFunc(slices.Clone(p.ISR), missing(change.Replicas))
	if len(change.ISR) == 0 {
		return metadata.PartitionChange{}, fmt.Errorf("%w: none of %v is in the ISR %v: moving there would lose records", kerr.InvalidReplicaAssignment, change.Replicas, p.ISR)
	}
	if !slices.Contains(change.Replicas, p.Leader) {
		leader := firstEligible(change.Replicas, change.ISR, eligible)
		change.Leader = &leader
	}
	return change, nil
	//klab:lesson 11 stub
	// return metadata.PartitionChange{}, lessons.Todo("11", "Reassign")
	//klab:lesson 11 end
}

// CompleteReassignment is the change that completes p's reassignment, and
// true, once it can complete: every target replica is in the ISR. Then the
// leaving replicas are dropped from the replicas and the ISR, and the
// leader, if it is leaving, hands over to the first target replica that is
// eligible and in sync. While a target replica is still catching up, or
// the leader must hand over and no target replica is eligible, or no
// reassignment is in progress, it returns false.
func CompleteReassignment(p metadata.Partition, eligible func(int32) bool) (metadata.PartitionChange, bool) {
	//klab:lesson 11 begin CompleteReassignment
	if !p.Reassigning() {
		return metadata.PartitionChange{}, false
	}
	target := p.Target()
	for _, id := range target {
		if !p.InSync(id) {
			return metadata.PartitionChange{}, false
		}
	}
	change := metadata.PartitionChange{
		Replicas: target,
		Adding:   []int32{},
		Removing: []int32{},
		ISR:      slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return !slices.Contains(target, id) }),
	}
	if !slices.Contains(target, p.Leader) {
		leader := firstEligible(target, change.ISR, eligible)
		if leader < 0 {
			return metadata.PartitionChange{}, false
		}
		change.Leader = &leader
	}
	return change, true
	//klab:lesson 11 stub
	// panic(lessons.Todo("11", "CompleteReassignment")) // CompleteReassignment returns no error: the stub panics
	//klab:lesson 11 end
}

// firstEligible is the first of replicas, in order, that is in isr and
// eligible to lead, or -1.
func firstEligible(replicas, isr []int32, eligible func(int32) bool) int32 {
	for _, id := range replicas {
		if slices.Contains(isr, id) && eligible(id) {
			return id
		}
	}
	return -1
}

// AlterReassignment starts, replaces or (target nil) cancels the
// reassignment of one partition. Every target broker must be registered;
// the brokers being added need not be alive yet: they start following
// when they are.
func (c *Controller) AlterReassignment(topic string, partition int32, target []int32) error {
	return c.changePartition(topic, partition, func(im *metadata.Image, p metadata.Partition) (metadata.PartitionChange, error) {
		for _, id := range target {
			if _, ok := im.Brokers[id]; !ok {
				return metadata.PartitionChange{}, fmt.Errorf("%w: broker %d is not in the cluster", kerr.InvalidReplicaAssignment, id)
			}
		}
		change, err := Reassign(p, target, c.eligible(im))
		if err != nil {
			return change, err
		}
		if target == nil {
			c.log.Info("controller: reassignment cancelled", "topic", topic, "partition", partition, "replicas", change.Replicas)
		} else {
			c.log.Info("controller: reassignment started", "topic", topic, "partition", partition, "replicas", change.Replicas, "adding", change.Adding, "removing", change.Removing)
		}
		return change, nil
	})
}

// Reassignment is one partition's reassignment in progress.
type Reassignment struct {
	Topic     string
	Partition int32
	// Replicas is the current replica list: the target, then the leaving.
	Replicas, Adding, Removing []int32
}

// Reassignments lists the reassignments in progress, by topic and
// partition. Any broker answers from its image.
func (c *Controller) Reassignments() []Reassignment {
	var out []Reassignment
	for _, t := range c.fsm.Image().SortedTopics() {
		for i, p := range t.Partitions {
			if p.Reassigning() {
				out = append(out, Reassignment{Topic: t.Name, Partition: int32(i), Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
			}
		}
	}
	return out
}
