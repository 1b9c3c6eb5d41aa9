package groups_test

// More of the rules, each the answer to a plausible wrong solution: the
// timeouts seen from both sides (a member removed on time, and not
// before), who leads and votes after members are dropped, fencing on
// heartbeats, and the edges of the commit fence.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/group"
	"klab.dev/klab/consumer/assign"
)

// A leader that does not rejoin within the rebalance timeout (alive: it
// heartbeats) is dropped like any member, and the generation gets a new
// leader among those that rejoined: the one whose answer lists the members.
func TestALeaderThatDoesNotRejoinIsReplaced(t *testing.T) {
	g, clk, ms := stable(t, 2)
	newcomer := g.Join(joinReq(""))
	f := g.Join(joinReq(ms[1].id))
	for elapsed := time.Duration(0); elapsed < rebalance; elapsed += 6 * time.Second {
		clk.Advance(6 * time.Second)
		assert.ErrorIs(t, g.Heartbeat(ms[0].id, "", ms[0].generation), kerr.RebalanceInProgress)
		within(t, "Tick", g.Tick)
	}
	n, fr := answered(t, newcomer, "the newcomer"), answered(t, f, "the follower")
	require.NoError(t, n.Err)
	require.NoError(t, fr.Err)
	assert.Equal(t, fr.Leader, n.Leader)
	assert.Contains(t, []string{ms[1].id, n.MemberID}, fr.Leader, "a member of the new generation leads")
	leaderRes := fr
	if fr.Leader == n.MemberID {
		leaderRes = n
	}
	assert.Len(t, leaderRes.Members, 2, "the new leader is given the members to assign")
	assert.ErrorIs(t, g.Heartbeat(ms[0].id, "", ms[0].generation), kerr.UnknownMemberID)
}

// The protocol is chosen among the members of the new generation: a member
// dropped at the rebalance timeout does not vote, nor restrict the choice.
func TestTheProtocolIsChosenAmongTheMembersThatRejoined(t *testing.T) {
	g, clk := newGroup()
	a := joinOK(t, g, joinReq("", "roundrobin", "range"))
	b := g.Join(joinReq("", "roundrobin", "range"))
	c := g.Join(joinReq("", "range")) // supports only range
	a2 := within2(t, "rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(a.MemberID, "roundrobin", "range")) })
	ra, rb, rc := answered(t, a2, "a"), answered(t, b, "b"), answered(t, c, "c")
	require.Equal(t, "range", ra.Protocol)
	require.NoError(t, rb.Err)
	require.NoError(t, rc.Err)
	require.NoError(t, answered(t, g.Sync(group.SyncRequest{MemberID: a.MemberID, Generation: ra.Generation, Assignments: map[string][]byte{}}), "sync").Err)
	for _, id := range []string{rb.MemberID, rc.MemberID} {
		require.NoError(t, answered(t, g.Sync(group.SyncRequest{MemberID: id, Generation: ra.Generation}), "sync").Err)
	}
	// a and b rejoin; c (the only one limited to range) does not.
	ja := g.Join(joinReq(a.MemberID, "roundrobin", "range"))
	jb := g.Join(joinReq(rb.MemberID, "roundrobin", "range"))
	for elapsed := time.Duration(0); elapsed < rebalance; elapsed += 6 * time.Second {
		clk.Advance(6 * time.Second) // c is alive (it heartbeats) but does not rejoin
		assert.ErrorIs(t, g.Heartbeat(rc.MemberID, "", rc.Generation), kerr.RebalanceInProgress)
		within(t, "Tick", g.Tick)
	}
	for _, r := range []group.JoinResult{answered(t, ja, "a"), answered(t, jb, "b")} {
		require.NoError(t, r.Err)
		assert.Equal(t, "roundrobin", r.Protocol, "c is gone: a and b choose roundrobin")
	}
}

// The sync phase lasts the rebalance timeout, not the session timeout: a
// leader that heartbeats while it computes a long assignment is not removed.
func TestTheSyncPhaseLastsTheRebalanceTimeout(t *testing.T) {
	g, clk, ms := stable(t, 2)
	leader := g.Join(joinReq(ms[0].id))
	follower := within2(t, "rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	l, f := answered(t, leader, "leader"), answered(t, follower, "follower")
	synced := g.Sync(group.SyncRequest{MemberID: ms[1].id, Generation: f.Generation})
	for range 6 { // 30 s: three session timeouts, half the rebalance timeout
		clk.Advance(5 * time.Second)
		require.NoError(t, g.Heartbeat(ms[0].id, "", l.Generation))
		within(t, "Tick", g.Tick)
	}
	res := answered(t, g.Sync(group.SyncRequest{MemberID: ms[0].id, Generation: l.Generation, Assignments: map[string][]byte{ms[0].id: []byte("a"), ms[1].id: []byte("b")}}), "the leader's sync")
	require.NoError(t, res.Err)
	assert.Equal(t, "b", string(answered(t, synced, "the follower's sync").Assignment))
	assert.Equal(t, group.Stable, g.State())
}

// Followers owe a SyncGroup too: one that heartbeats but never syncs is
// removed at the rebalance timeout, and the others rebalance without it.
func TestAFollowerThatNeverSyncsIsRemoved(t *testing.T) {
	g, clk, ms := stable(t, 2)
	leader := g.Join(joinReq(ms[0].id))
	follower := within2(t, "rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	l, f := answered(t, leader, "leader"), answered(t, follower, "follower")
	require.NoError(t, answered(t, g.Sync(group.SyncRequest{MemberID: ms[0].id, Generation: l.Generation, Assignments: map[string][]byte{}}), "leader sync").Err)
	for elapsed := time.Duration(0); elapsed <= rebalance; elapsed += 5 * time.Second {
		clk.Advance(5 * time.Second)
		if err := g.Heartbeat(ms[1].id, "", f.Generation); err != nil {
			break
		}
		require.NoError(t, g.Heartbeat(ms[0].id, "", l.Generation))
		within(t, "Tick", g.Tick)
	}
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", f.Generation), kerr.UnknownMemberID, "the follower is out")
	assert.ErrorIs(t, g.Heartbeat(ms[0].id, "", l.Generation), kerr.RebalanceInProgress, "the leader must rejoin")
}

// The session restarts at the end of the join phase for one session
// timeout: a member that dies right after its JoinGroup answer (no
// heartbeat, no SyncGroup) is removed after session.timeout.ms.
func TestAMemberThatDiesAfterItsJoinAnswerIsRemovedAfterItsSession(t *testing.T) {
	g, clk, ms := stable(t, 2)
	leader := g.Join(joinReq(ms[0].id))
	follower := within2(t, "rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	l, f := answered(t, leader, "leader"), answered(t, follower, "follower")
	require.NoError(t, f.Err)
	for range 3 { // 12 s: past the follower's 10 s session
		clk.Advance(4 * time.Second)
		require.NoError(t, g.Heartbeat(ms[0].id, "", l.Generation))
		within(t, "Tick", g.Tick)
	}
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", f.Generation), kerr.UnknownMemberID)
}

// A heartbeat restarts the session from now: session.timeout.ms after the
// last heartbeat, the member is removed, however many it sent before.
func TestTheSessionEndsATimeoutAfterTheLastHeartbeat(t *testing.T) {
	g, clk, ms := stable(t, 2)
	for range 3 {
		clk.Advance(5 * time.Second)
		for _, m := range ms {
			require.NoError(t, g.Heartbeat(m.id, "", m.generation))
		}
		within(t, "Tick", g.Tick)
	}
	// ms[1] stops; ms[0] goes on.
	for range 3 { // 12 s after ms[1]'s last heartbeat
		clk.Advance(4 * time.Second)
		require.NoError(t, g.Heartbeat(ms[0].id, "", ms[0].generation))
		within(t, "Tick", g.Tick)
	}
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", ms[1].generation), kerr.UnknownMemberID)
}

// An older incarnation of a static member is fenced on its heartbeats too:
// FENCED_INSTANCE_ID tells it to stop, where UNKNOWN_MEMBER_ID would make it
// rejoin and fence the new one in turn.
func TestAFencedStaticMemberCannotHeartbeat(t *testing.T) {
	g, _ := newGroup()
	req := joinReq("")
	req.InstanceID = "worker-1"
	old := joinOK(t, g, req)
	require.NoError(t, answered(t, g.Sync(group.SyncRequest{MemberID: old.MemberID, InstanceID: "worker-1", Generation: old.Generation, Assignments: map[string][]byte{old.MemberID: nil}}), "sync").Err)
	restarted := joinOK(t, g, req)
	assert.ErrorIs(t, g.Heartbeat(old.MemberID, "worker-1", old.Generation), kerr.FencedInstanceID)
	assert.NoError(t, g.Heartbeat(restarted.MemberID, "worker-1", restarted.Generation))
}

// A member id handed out with MEMBER_ID_REQUIRED is not a member until it
// joins with it: its heartbeats are UNKNOWN_MEMBER_ID.
func TestAPendingMemberCannotHeartbeat(t *testing.T) {
	g, _, ms := stable(t, 1)
	req := joinReq("")
	req.RequireKnownMemberID = true
	res := answered(t, g.Join(req), "first join")
	require.ErrorIs(t, res.Err, kerr.MemberIDRequired)
	assert.ErrorIs(t, g.Heartbeat(res.MemberID, "", ms[0].generation), kerr.UnknownMemberID)
}

// A member dropped at the rebalance timeout is UNKNOWN_MEMBER_ID on its
// commits, though its generation is also stale: it must join from scratch.
func TestADroppedMembersCommitIsUnknownMember(t *testing.T) {
	g, clk, ms := stable(t, 2)
	l := g.Join(joinReq(ms[0].id))
	for elapsed := time.Duration(0); elapsed < rebalance; elapsed += 6 * time.Second {
		clk.Advance(6 * time.Second)
		assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", ms[1].generation), kerr.RebalanceInProgress)
		within(t, "Tick", g.Tick)
	}
	require.NoError(t, answered(t, l, "the leader").Err)
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", ms[1].generation), kerr.UnknownMemberID)
}

// While the group waits for rejoins it still has members: a commit from
// outside the group is refused then too.
func TestNoOutsideCommitWhileTheGroupRebalances(t *testing.T) {
	g, _, ms := stable(t, 2)
	g.Join(joinReq(ms[0].id))
	require.Equal(t, group.PreparingRebalance, g.State())
	assert.ErrorIs(t, g.ValidateCommit("", "", -1), kerr.UnknownMemberID)
}

// A group that became Empty because its last member's session expired
// still refuses that member's commits: it was removed.
func TestAnEmptyGroupRefusesItsRemovedMembersCommits(t *testing.T) {
	g, clk, ms := stable(t, 1)
	clk.Advance(session + time.Second)
	within(t, "Tick", g.Tick)
	require.Equal(t, group.Empty, g.State())
	assert.ErrorIs(t, g.ValidateCommit(ms[0].id, "", ms[0].generation), kerr.UnknownMemberID)
	assert.NoError(t, g.ValidateCommit("", "", -1))
}

// A group this broker no longer coordinates takes no commit.
func TestAnUnloadedGroupTakesNoCommit(t *testing.T) {
	g, _ := newGroup()
	g.Unload()
	assert.ErrorIs(t, g.ValidateCommit("", "", -1), kerr.CoordinatorNotAvailable)
}

// Static members come before dynamic ones, whatever their ids.
func TestRangePutsStaticMembersBeforeDynamicOnes(t *testing.T) {
	ms := []assign.Member{
		{ID: "aaa-dynamic", Topics: []string{"t"}},
		{ID: "zzz-static", InstanceID: "worker-1", Topics: []string{"t"}},
	}
	plan := assignRange(t, ms, map[string]int32{"t": 3})
	assert.Equal(t, []int32{0, 1}, plan["zzz-static"]["t"])
	assert.Equal(t, []int32{2}, plan["aaa-dynamic"]["t"])
}

// A commit that names a generation comes from a member, even with no member
// id: an Empty group has none, so it is UNKNOWN_MEMBER_ID, as in Kafka.
func TestAnEmptyGroupRefusesACommitNamingAGeneration(t *testing.T) {
	g, _ := newGroup()
	assert.ErrorIs(t, g.ValidateCommit("", "", 3), kerr.UnknownMemberID)
}

// Generation 0 names a member too (only -1 means "outside"): an Empty group
// has none, so it is UNKNOWN_MEMBER_ID.
func TestGenerationZeroIsNotOutside(t *testing.T) {
	g, _ := newGroup()
	assert.ErrorIs(t, g.ValidateCommit("", "", 0), kerr.UnknownMemberID)
}

// A member that names itself but sends generation -1 while the group has
// members is a member of no generation: ILLEGAL_GENERATION, not the
// outsider's UNKNOWN_MEMBER_ID; a static member named only by its instance
// id is judged by it, and fenced if another incarnation holds it.
func TestAMemberWithGenerationMinusOneIsJudgedAsAMember(t *testing.T) {
	g, _, ms := stable(t, 2)
	assert.ErrorIs(t, g.ValidateCommit(ms[1].id, "", -1), kerr.IllegalGeneration)
	assert.ErrorIs(t, g.ValidateCommit("", "worker-9", -1), kerr.UnknownMemberID, "an instance id the group does not know")
}
