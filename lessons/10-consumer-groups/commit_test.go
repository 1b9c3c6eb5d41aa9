package groups_test

// Which OffsetCommits a group takes (ValidateCommit): the coordinator's
// fence against zombies, consumers that lost their partitions and do not
// know it yet.

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/group"
)

// A group without members takes commits from outside group management
// (generation -1, no member id): that is how kafka-consumer-groups.sh
// --reset-offsets, and consumers that assign partitions themselves, store
// offsets.
func TestAnEmptyGroupTakesCommitsFromOutside(t *testing.T) {
	g, _ := newGroup()
	assert.NoError(t, g.ValidateCommit("", "", -1))
	// Generation -1 is what makes it an outside commit, whatever member id
	// it carries (an assigning consumer with a client-made id, say), as in
	// Kafka, where that check comes first.
	assert.NoError(t, g.ValidateCommit("assigner-1", "", -1))
}

// The members of the current generation commit; nobody else does while
// the group has members: not a client outside the group, not a member the
// group removed, not one that speaks for an older generation (it may have
// lost its partitions in the rebalance it missed).
func TestOnlyTheCurrentGenerationsMembersCommit(t *testing.T) {
	g, _, ms := stable(t, 2)
	gen := ms[0].generation
	assert.NoError(t, g.ValidateCommit(ms[0].id, "", gen), "the leader")
	assert.NoError(t, g.ValidateCommit(ms[1].id, "", gen), "a follower")
	assert.ErrorIs(t, g.ValidateCommit("", "", -1), kerr.UnknownMemberID, "from outside, while the group has members")
	assert.ErrorIs(t, g.ValidateCommit("someone-else", "", gen), kerr.UnknownMemberID, "a stranger")
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", gen-1), kerr.IllegalGeneration, "an older generation")
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", gen+1), kerr.IllegalGeneration, "a generation that is not this one")
	assert.ErrorIs(t, g.ValidateCommit("", "", gen), kerr.UnknownMemberID, "a generation without a member id")
}

// Between the JoinGroup answers and the leader's SyncGroup, members have no
// assignment yet: a commit then is REBALANCE_IN_PROGRESS (the member
// finishes the rebalance and commits for what it is given). While the
// group waits for rejoins, the members of the generation still own their
// partitions and commit what they processed before rejoining.
func TestCommitsDuringARebalance(t *testing.T) {
	g, _, ms := stable(t, 2)
	gen := ms[0].generation
	leader := g.Join(joinReq(ms[0].id))
	require.Equal(t, group.PreparingRebalance, g.State())
	assert.NoError(t, g.ValidateCommit(ms[1].id, "", gen), "PreparingRebalance: the old generation commits before it rejoins")
	follower := within2(t, "the rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	answered(t, leader, "the leader")
	f := answered(t, follower, "the follower")
	require.NoError(t, f.Err)
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", f.Generation), kerr.RebalanceInProgress, "CompletingRebalance")
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", gen), kerr.IllegalGeneration, "the generation that just ended")
}

// A member removed when its session expired is a zombie: it may still be
// processing records of partitions another member now owns. Its commits
// are refused, so that it cannot move back an offset the new owner
// advances.
func TestAZombieCannotCommit(t *testing.T) {
	g, clk, ms := stable(t, 2)
	clk.Advance(session / 2)
	require.NoError(t, g.Heartbeat(ms[1].id, "", ms[1].generation))
	clk.Advance(session/2 + 1)
	within(t, "Tick", g.Tick) // the leader's session expired
	assert.ErrorIs(t, g.ValidateCommit(ms[0].id, "", ms[0].generation), kerr.UnknownMemberID)
}

// A static member (group.instance.id) replaced by a newer incarnation of
// itself is fenced: FENCED_INSTANCE_ID for the old member id.
func TestAFencedStaticMemberCannotCommit(t *testing.T) {
	g, _ := newGroup()
	req := joinReq("")
	req.InstanceID = "worker-1"
	old := joinOK(t, g, req)
	require.NoError(t, answered(t, g.Sync(group.SyncRequest{MemberID: old.MemberID, InstanceID: "worker-1", Generation: old.Generation, Assignments: map[string][]byte{old.MemberID: nil}}), "sync").Err)
	restarted := joinOK(t, g, req) // the same instance, restarted: a new member id
	require.NotEqual(t, old.MemberID, restarted.MemberID)
	assert.ErrorIs(t, g.ValidateCommit(old.MemberID, "worker-1", old.Generation), kerr.FencedInstanceID)
	assert.ErrorIs(t, g.ValidateCommit("", "worker-1", -1), kerr.FencedInstanceID, "an instance id names a member, even without a member id or generation")
	assert.NoError(t, g.ValidateCommit(restarted.MemberID, "worker-1", restarted.Generation))
}
