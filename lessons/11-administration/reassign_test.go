package controller_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/metadata"
)

// everyone is eligible; eligibleBut all brokers except the given ones.
func everyone(int32) bool { return true }

func eligibleBut(ids ...int32) func(int32) bool {
	return func(id int32) bool { return !slices.Contains(ids, id) }
}

// deepCopy copies a partition's slices, to check later that the image's
// partition was not changed in place.
func deepCopy(p metadata.Partition) metadata.Partition {
	p.Replicas, p.ISR = slices.Clone(p.Replicas), slices.Clone(p.ISR)
	p.AddingReplicas, p.RemovingReplicas = slices.Clone(p.AddingReplicas), slices.Clone(p.RemovingReplicas)
	return p
}

// reassign runs Reassign and checks that it changed neither the partition
// (it belongs to an image every broker goroutine reads, never modified)
// nor the target the request brought.
func reassign(t *testing.T, p metadata.Partition, target []int32, eligible func(int32) bool) (metadata.PartitionChange, error) {
	t.Helper()
	before, wanted := deepCopy(p), slices.Clone(target)
	change, err := controller.Reassign(p, target, eligible)
	require.Equal(t, before, p, "Reassign changed the image's partition in place: work on copies (slices.DeleteFunc changes its argument)")
	require.Equal(t, wanted, target, "Reassign changed the request's target list in place")
	return change, err
}

// complete runs CompleteReassignment with the same check.
func complete(t *testing.T, p metadata.Partition, eligible func(int32) bool) (metadata.PartitionChange, bool) {
	t.Helper()
	before := deepCopy(p)
	change, ok := controller.CompleteReassignment(p, eligible)
	require.Equal(t, before, p, "CompleteReassignment changed the image's partition in place: work on copies")
	return change, ok
}

// applied is p after change, as every broker's metadata would have it:
// the change goes through the metadata log's own rules (the record is
// encoded, and applied by an FSM), which refuse an ISR member or a leader
// that is not a replica. A change that does not apply fails the test.
func applied(t *testing.T, p metadata.Partition, change metadata.PartitionChange) metadata.Partition {
	t.Helper()
	fsm := metadata.NewFSM()
	apply := func(r metadata.Record) error {
		data, err := metadata.Encode(r)
		require.NoError(t, err)
		res := fsm.Apply(&raft.Log{Index: fsm.Image().Offset + 1, Data: data})
		if err, ok := res.(error); ok {
			return err
		}
		return nil
	}
	require.NoError(t, apply(metadata.Record{CreateTopic: &metadata.Topic{Name: "t", Partitions: []metadata.Partition{deepCopy(p)}}}))
	change.Topic, change.Partition, change.PartitionEpoch = "t", 0, p.PartitionEpoch
	raw, _ := json.Marshal(change)
	require.NoError(t, apply(metadata.Record{ChangePartition: &change}), "the change %s does not apply", raw)
	after, _ := fsm.Image().Partition("t", 0)
	return after
}

// requireState checks a partition's replicas (in order), adding and
// removing replicas, ISR (in any order) and leader.
func requireState(t *testing.T, p metadata.Partition, replicas, adding, removing, isr []int32, leader int32, why string) {
	t.Helper()
	require.Equal(t, replicas, p.Replicas, "%s: Replicas, in order", why)
	require.ElementsMatch(t, adding, p.AddingReplicas, "%s: AddingReplicas", why)
	require.ElementsMatch(t, removing, p.RemovingReplicas, "%s: RemovingReplicas", why)
	require.ElementsMatch(t, isr, p.ISR, "%s: ISR", why)
	require.Equal(t, leader, p.Leader, "%s: leader", why)
}

// TestAReassignmentStartsWithTheTargetAndTheLeavingReplicas: moving
// 1,2,3 to 2,3,4 first makes the replicas 2,3,4,1: the target, then the
// leaving replica. Broker 4 is adding, broker 1 removing; nothing else
// changes yet: broker 1 keeps leading and stays in the ISR, so that until
// broker 4 has caught up there are as many in-sync copies as before.
func TestAReassignmentStartsWithTheTargetAndTheLeavingReplicas(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}, LeaderEpoch: 4, PartitionEpoch: 7}
	change, err := reassign(t, p, []int32{2, 3, 4}, everyone)
	require.NoError(t, err)
	after := applied(t, p, change)
	requireState(t, after, []int32{2, 3, 4, 1}, []int32{4}, []int32{1}, []int32{1, 2, 3}, 1, "1,2,3 to 2,3,4")
	require.Equal(t, p.LeaderEpoch, after.LeaderEpoch, "the leader did not change: no new leader epoch, no client refreshing its metadata")
	require.True(t, after.Reassigning())

	change, err = reassign(t, p, []int32{5, 4, 1}, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{5, 4, 1, 2, 3}, []int32{5, 4}, []int32{2, 3}, []int32{1, 2, 3}, 1,
		"1,2,3 to 5,4,1: the target in its own order, then 2,3 in theirs")

	change, err = reassign(t, p, []int32{3}, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{3, 1, 2}, nil, []int32{1, 2}, []int32{1, 2, 3}, 1,
		"1,2,3 to 3 (fewer replicas): nothing to add, 1 and 2 leaving, still in sync until it completes")
}

// TestReorderingTheReplicasMovesNoData: a target with the same brokers in
// another order adds and removes nobody: it changes the preferred leader
// (the first replica) at once, and the current leader keeps leading until
// a preferred election. This is how an operator changes which broker a
// partition prefers.
func TestReorderingTheReplicasMovesNoData(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}
	change, err := reassign(t, p, []int32{3, 1, 2}, everyone)
	require.NoError(t, err)
	after := applied(t, p, change)
	requireState(t, after, []int32{3, 1, 2}, nil, nil, []int32{1, 2, 3}, 1, "1,2,3 reordered to 3,1,2")
	require.False(t, after.Reassigning(), "nothing to copy: no reassignment in progress")
}

// TestATargetNamesEachBrokerOnceAndAtLeastOne: a broker twice in a target
// would be two "replicas" on one disk, one copy; an empty target would
// delete the partition's data. Both are INVALID_REPLICA_ASSIGNMENT. An
// empty list is not a cancel: only a missing (nil) one is.
func TestATargetNamesEachBrokerOnceAndAtLeastOne(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}
	for _, target := range [][]int32{{2, 2, 4}, {4, 2, 4}, {1, 2, 1}, {}} {
		_, err := reassign(t, p, target, everyone)
		require.ErrorIs(t, err, kerr.InvalidReplicaAssignment, "target %v", target)
	}
	reassigning := metadata.Partition{Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 1, ISR: []int32{1, 2, 3}}
	_, err := reassign(t, reassigning, []int32{}, everyone)
	require.ErrorIs(t, err, kerr.InvalidReplicaAssignment, "an empty target is refused, even while a reassignment is in progress: it is not a cancel")
}

// TestANewTargetIsMeasuredFromTheOriginalReplicas: a reassignment of
// 1,2,3 to 2,3,4 is in progress (replicas 2,3,4,1) when the operator asks
// for 2,3,5 instead. The new one starts from where the data was, 1,2,3:
// broker 4 was only being added, is in neither list, and simply goes;
// broker 1 is still leaving; broker 5 is adding. Measured from the current
// list, broker 4 would count as an original replica "leaving", and a
// cancel would later bring it back as if it had always held the partition.
func TestANewTargetIsMeasuredFromTheOriginalReplicas(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 1, ISR: []int32{1, 2, 3}}
	change, err := reassign(t, p, []int32{2, 3, 5}, everyone)
	require.NoError(t, err)
	after := applied(t, p, change)
	requireState(t, after, []int32{2, 3, 5, 1}, []int32{5}, []int32{1}, []int32{1, 2, 3}, 1, "2,3,4 replaced by 2,3,5")
	require.ElementsMatch(t, []int32{1, 2, 3}, after.Original(), "a cancel would still go back to brokers 1, 2 and 3")

	p.ISR = []int32{1, 2, 3, 4}
	change, err = reassign(t, p, []int32{2, 3, 5}, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{2, 3, 5, 1}, []int32{5}, []int32{1}, []int32{1, 2, 3}, 1,
		"broker 4 had caught up and joined the ISR; it is no longer a replica, so it leaves the ISR too")

	change, err = reassign(t, p, []int32{4, 1, 2}, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{4, 1, 2, 3}, []int32{4}, []int32{3}, []int32{1, 2, 3, 4}, 1,
		"2,3,4 replaced by 4,1,2: broker 4 is still adding (it is not an original replica), 3 now leaves, 1 stays")
}

// TestCancelGoesBackToTheOriginalReplicas: cancelling (a nil target) puts
// back the replicas the reassignment started from: the current list
// without the adding replicas, in the order they have in it (as Kafka's
// revert does: a cancelled move of 1,2,3 to 2,3,4 leaves 2,3,1, whose
// preferred leader is 2). The adding replicas go, in sync or not, and
// leave the ISR; the leader stays if it is one of the originals.
// Cancelling with nothing in progress is NO_REASSIGNMENT_IN_PROGRESS, not
// a silent success.
func TestCancelGoesBackToTheOriginalReplicas(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 2, ISR: []int32{1, 2, 3, 4}}
	change, err := reassign(t, p, nil, everyone)
	require.NoError(t, err)
	after := applied(t, p, change)
	requireState(t, after, []int32{2, 3, 1}, nil, nil, []int32{1, 2, 3}, 2, "cancel 1,2,3 to 2,3,4 (replicas 2,3,4,1): 2,3,1, broker 4 out")
	require.False(t, after.Reassigning(), "the reassignment is over")

	p = metadata.Partition{Replicas: []int32{5, 6, 1, 2}, AddingReplicas: []int32{5, 6}, RemovingReplicas: []int32{2}, Leader: 1, ISR: []int32{2, 1}}
	change, err = reassign(t, p, nil, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{1, 2}, nil, nil, []int32{1, 2}, 1, "cancel 1,2 to 5,6,1 (replicas 5,6,1,2): back to 1,2")

	_, err = reassign(t, metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}, nil, everyone)
	require.ErrorIs(t, err, kerr.NoReassignmentInProgress, "nothing to cancel")
}

// TestAMoveThatLeavesNoInSyncReplicaIsRefused: the original replicas of a
// move from 1,2,3 to 4,5,6 died, and only broker 4 is in the ISR. Going
// back to 1,2,3, or on to 7,8,9, would keep no replica that has every
// acknowledged record: INVALID_REPLICA_ASSIGNMENT, and the partition stays
// as it is.
func TestAMoveThatLeavesNoInSyncReplicaIsRefused(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{4, 5, 6, 1, 2, 3}, AddingReplicas: []int32{4, 5, 6}, RemovingReplicas: []int32{1, 2, 3}, Leader: 4, ISR: []int32{4}}
	_, err := reassign(t, p, nil, everyone)
	require.ErrorIs(t, err, kerr.InvalidReplicaAssignment, "a cancel to 1,2,3, none of them in sync, would lose records")
	_, err = reassign(t, p, []int32{7, 8, 9}, everyone)
	require.ErrorIs(t, err, kerr.InvalidReplicaAssignment, "a move to 7,8,9 measured from 1,2,3 keeps neither 4 nor anyone in sync")

	change, err := reassign(t, p, []int32{4, 5, 6}, everyone)
	require.NoError(t, err, "asking again for 4,5,6 keeps broker 4, in sync")
	requireState(t, applied(t, p, change), []int32{4, 5, 6, 1, 2, 3}, []int32{4, 5, 6}, []int32{1, 2, 3}, []int32{4}, 4, "the same target again")
}

// TestALeaderThatIsNoLongerAReplicaGivesWay: broker 4 was being added,
// caught up, and took the leadership (broker 1 died). Cancelling, or
// replacing the target with one without 4, drops broker 4: it must not
// stay leader of a partition it no longer holds. The first replica of the
// new list that is in sync and eligible leads: in replica order, not by
// ISR order or id, skipping one that is not eligible. With none, the
// partition has no leader until one comes back.
func TestALeaderThatIsNoLongerAReplicaGivesWay(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{4, 5, 6, 1, 2, 3}, AddingReplicas: []int32{4, 5, 6}, RemovingReplicas: []int32{1, 2, 3}, Leader: 4, ISR: []int32{4, 3, 2, 1}, LeaderEpoch: 9}
	change, err := reassign(t, p, nil, eligibleBut(1))
	require.NoError(t, err)
	after := applied(t, p, change)
	requireState(t, after, []int32{1, 2, 3}, nil, nil, []int32{1, 2, 3}, 2, "cancelled with leader 4 leaving, 1 not eligible: 2 is the first eligible in-sync replica of 1,2,3")
	require.Greater(t, after.LeaderEpoch, p.LeaderEpoch, "a new leader, a new leader epoch")

	change, err = reassign(t, p, []int32{5, 3, 1}, everyone)
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{5, 3, 1, 2}, []int32{5}, []int32{2}, []int32{1, 2, 3}, 3,
		"4 dropped by a new target 5,3,1: 5 is not in sync, so 3 leads, the next in the new list")

	change, err = reassign(t, p, []int32{5, 3, 1}, eligibleBut(3))
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{5, 3, 1, 2}, []int32{5}, []int32{2}, []int32{1, 2, 3}, 1,
		"3 is shutting down: 1 leads")

	change, err = reassign(t, p, nil, eligibleBut(1, 2, 3))
	require.NoError(t, err)
	requireState(t, applied(t, p, change), []int32{1, 2, 3}, nil, nil, []int32{1, 2, 3}, -1,
		"no original replica can lead now: no leader (the control loop elects one when it can), never the removed broker 4")
}

// TestAReassignmentCompletesOnlyWhenEveryTargetReplicaIsInSync: 1,2,3 to
// 2,3,4 completes when 4 has joined the ISR, and also 2 and 3 are in it:
// completing drops broker 1, and if 3 had fallen behind, the partition
// would be left with fewer in-sync copies than it had. Until then, and
// with no reassignment at all, there is nothing to complete.
func TestAReassignmentCompletesOnlyWhenEveryTargetReplicaIsInSync(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 2, ISR: []int32{1, 2, 3}}
	_, ok := complete(t, p, everyone)
	require.False(t, ok, "broker 4 is still catching up")

	p.ISR = []int32{1, 2, 4}
	_, ok = complete(t, p, everyone)
	require.False(t, ok, "broker 4 caught up, but target replica 3 has fallen out of the ISR")

	p.ISR = []int32{4, 1, 3, 2}
	change, ok := complete(t, p, everyone)
	require.True(t, ok, "every target replica is in sync")
	after := applied(t, p, change)
	requireState(t, after, []int32{2, 3, 4}, nil, nil, []int32{2, 3, 4}, 2, "completed: broker 1 leaves the replicas and the ISR")
	require.False(t, after.Reassigning())

	_, ok = complete(t, metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}, everyone)
	require.False(t, ok, "no reassignment in progress: nothing to complete")
}

// TestCompletionKeepsALeaderThatStays: a leader that is a target replica
// keeps leading when the reassignment completes, even if it is not the
// first: a leader change costs a new leader epoch and every client's
// metadata refresh, for nothing. Getting the preferred leader back is a
// preferred election's job.
func TestCompletionKeepsALeaderThatStays(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{2, 3, 4, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 3, ISR: []int32{1, 2, 3, 4}, LeaderEpoch: 6}
	change, ok := complete(t, p, everyone)
	require.True(t, ok)
	after := applied(t, p, change)
	requireState(t, after, []int32{2, 3, 4}, nil, nil, []int32{2, 3, 4}, 3, "broker 3 leads and stays")
	require.Equal(t, p.LeaderEpoch, after.LeaderEpoch, "no leader change")
}

// TestCompletionHandsOverALeavingLeader: the leader is leaving (broker 1
// in 1,2,3 to 4,3,2): when the reassignment completes it hands over to the
// first target replica, in target order, that is in sync and eligible,
// broker 0 included.
// If no target replica can take over (all shutting down or dead), the
// reassignment waits: completing would leave the partition leaderless, or
// led by a broker that no longer holds it.
func TestCompletionHandsOverALeavingLeader(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{4, 3, 2, 1}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{1}, Leader: 1, ISR: []int32{1, 2, 3, 4}, LeaderEpoch: 2}
	change, ok := complete(t, p, everyone)
	require.True(t, ok)
	after := applied(t, p, change)
	requireState(t, after, []int32{4, 3, 2}, nil, nil, []int32{2, 3, 4}, 4, "broker 4, the first target replica, takes over")
	require.Greater(t, after.LeaderEpoch, p.LeaderEpoch)

	change, ok = complete(t, p, eligibleBut(4))
	require.True(t, ok)
	requireState(t, applied(t, p, change), []int32{4, 3, 2}, nil, nil, []int32{2, 3, 4}, 3, "4 is not eligible: 3, next in target order")

	_, ok = complete(t, p, eligibleBut(2, 3, 4))
	require.False(t, ok, "no target replica may lead: the reassignment waits, broker 1 keeps leading")

	p = metadata.Partition{Replicas: []int32{0, 2, 1}, AddingReplicas: []int32{0}, RemovingReplicas: []int32{1}, Leader: 1, ISR: []int32{1, 2, 0}}
	change, ok = complete(t, p, everyone)
	require.True(t, ok, "broker 0 can take over: 0 is a broker id like any other (Kafka's node ids often start at 0); only -1 means nobody")
	requireState(t, applied(t, p, change), []int32{0, 2}, nil, nil, []int32{0, 2}, 0, "1,2 to 0,2: broker 0 takes over")
}

// TestShrinkingCompletesAtOnce: a target that only removes replicas (1,2,3
// to 2,3: the replication factor goes down) has nobody to wait for; the
// next completion check drops broker 1 from the replicas and the ISR, and
// its leadership moves to 2.
func TestShrinkingCompletesAtOnce(t *testing.T) {
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}
	change, err := reassign(t, p, []int32{2, 3}, everyone)
	require.NoError(t, err)
	started := applied(t, p, change)
	requireState(t, started, []int32{2, 3, 1}, nil, []int32{1}, []int32{1, 2, 3}, 1, "1,2,3 to 2,3")
	require.True(t, started.Reassigning(), "removing only is a reassignment too")

	change, ok := complete(t, started, everyone)
	require.True(t, ok, "2 and 3 are in sync already")
	requireState(t, applied(t, started, change), []int32{2, 3}, nil, nil, []int32{2, 3}, 2, "completed")
}
