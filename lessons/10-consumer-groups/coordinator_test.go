package groups_test

// The coordinator's state machine, driven through package group's API on
// a clock the tests move: the join phase ending (completeJoin) and
// heartbeats (Heartbeat).

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/group"
)

// The first member of an empty group joins at once (no initial delay
// here): generation 1, it leads, it is told the protocol, and the group
// waits for its SyncGroup.
func TestTheFirstJoinStartsGeneration1(t *testing.T) {
	g, _ := newGroup()
	res := joinOK(t, g, joinReq(""))
	assert.Equal(t, int32(1), res.Generation)
	assert.Equal(t, res.MemberID, res.Leader, "the only member leads")
	assert.Equal(t, "range", res.Protocol)
	assert.Equal(t, "consumer", res.ProtocolType)
	require.Len(t, res.Members, 1, "the leader is told every member's subscription")
	assert.Equal(t, "subscription of range", string(res.Members[0].Metadata))
	assert.Equal(t, group.CompletingRebalance, g.State())
}

// A newcomer makes a Stable group rebalance: the join phase waits until
// every member has rejoined, then answers all of them at once, with the
// next generation; only the leader's answer lists the members.
func TestAJoinPhaseEndsWhenEveryMemberHasRejoined(t *testing.T) {
	g, _, ms := stable(t, 2)
	gen := ms[0].generation
	newcomer := g.Join(joinReq(""))
	assert.Equal(t, group.PreparingRebalance, g.State())
	leader := g.Join(joinReq(ms[0].id))
	waiting(t, newcomer, "the newcomer, while a member has not rejoined")
	waiting(t, leader, "the leader, while a member has not rejoined")

	follower := g.Join(joinReq(ms[1].id))
	results := []group.JoinResult{answered(t, leader, "the leader"), answered(t, follower, "the follower"), answered(t, newcomer, "the newcomer")}
	for _, r := range results {
		require.NoError(t, r.Err)
		assert.Equal(t, gen+1, r.Generation, "every member is in the next generation")
		assert.Equal(t, ms[0].id, r.Leader)
	}
	assert.Len(t, results[0].Members, 3, "the leader gets all three subscriptions, to assign")
	assert.Empty(t, results[1].Members, "a follower gets none")
	assert.Empty(t, results[2].Members)
	assert.Equal(t, group.CompletingRebalance, g.State())
}

// A member that does not rejoin within the rebalance timeout (the longest
// max.poll.interval.ms) is dropped, even though it still heartbeats: the
// join phase ends without it, the others go on in the next generation, and
// it is no longer known.
func TestAMemberThatDoesNotRejoinIsDroppedAtTheRebalanceTimeout(t *testing.T) {
	g, clk, ms := stable(t, 3)
	gen := ms[0].generation
	leader := g.Join(joinReq(ms[0].id)) // a leader rejoining a Stable group starts a rebalance
	follower := g.Join(joinReq(ms[1].id))
	slow := ms[2] // alive (it heartbeats) but busy in its poll loop: it does not rejoin
	elapsed := time.Duration(0)
	for ; elapsed+9*time.Second < rebalance; elapsed += 9 * time.Second {
		clk.Advance(9 * time.Second)
		assert.ErrorIs(t, g.Heartbeat(slow.id, "", slow.generation), kerr.RebalanceInProgress)
		within(t, "Tick", g.Tick)
		waiting(t, leader, "the leader, before the rebalance timeout")
	}
	// Its session is alive (it heartbeated just now) when the rebalance
	// timeout passes: the join phase itself must leave it out.
	clk.Advance(rebalance - elapsed)
	within(t, "Tick at the rebalance timeout", g.Tick)
	l, f := answered(t, leader, "the leader"), answered(t, follower, "the follower")
	require.NoError(t, l.Err)
	require.NoError(t, f.Err)
	assert.Equal(t, gen+1, l.Generation)
	assert.Equal(t, gen+1, f.Generation)
	var ids []string
	for _, m := range l.Members {
		ids = append(ids, m.MemberID)
	}
	assert.ElementsMatch(t, []string{ms[0].id, ms[1].id}, ids, "the leader assigns to the members that rejoined")
	assert.ErrorIs(t, g.Heartbeat(slow.id, "", slow.generation), kerr.UnknownMemberID, "the slow member is out")
}

// When the last member leaves, the join phase ends with nobody: the group
// is Empty, its generation advanced, and a new member starts a new
// generation as the leader.
func TestTheLastMemberLeavingEmptiesTheGroup(t *testing.T) {
	g, _, ms := stable(t, 1)
	gen := ms[0].generation
	within(t, "LeaveGroup", func() { require.NoError(t, g.Leave(ms[0].id, "")) })
	assert.Equal(t, group.Empty, g.State())
	assert.Equal(t, gen+1, g.Generation(), "leaving ends a generation")
	assert.Empty(t, g.Describe().Members)

	res := joinOK(t, g, joinReq(""))
	assert.Equal(t, gen+2, res.Generation)
	assert.Equal(t, res.MemberID, res.Leader, "the first member of an empty group leads")
}

// The generation's protocol is one every member supports: here "range",
// the only one the two share, though one member prefers "roundrobin".
func TestTheJoinAnswerNamesAProtocolEveryMemberSupports(t *testing.T) {
	g, _ := newGroup()
	first := joinOK(t, g, joinReq("", "roundrobin", "range"))
	assert.Equal(t, "roundrobin", first.Protocol, "alone, its first choice")
	second := g.Join(joinReq("", "range"))
	again := within2(t, "the rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(first.MemberID, "roundrobin", "range")) })
	for _, r := range []group.JoinResult{answered(t, again, "the first member"), answered(t, second, "the second")} {
		require.NoError(t, r.Err)
		assert.Equal(t, "range", r.Protocol)
	}
	l := answered(t, g.Join(joinReq(first.MemberID, "roundrobin", "range")), "a retried join")
	require.NoError(t, l.Err)
	for _, m := range l.Members {
		assert.Equal(t, "subscription of range", string(m.Metadata), "the leader gets each member's metadata for the chosen protocol")
	}
}

// A member cannot heartbeat while its JoinGroup waits. When the join
// phase ends, its session clock starts again: a long rebalance does not
// make the members that waited in it look dead.
func TestTheSessionClockRestartsWhenTheJoinPhaseEnds(t *testing.T) {
	g, clk, ms := stable(t, 2)
	leader := g.Join(joinReq(ms[0].id)) // waits, without heartbeats
	for range 5 {
		clk.Advance(9 * time.Second) // 45 s: far past the leader's 10 s session
		assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", ms[1].generation), kerr.RebalanceInProgress)
		within(t, "Tick", g.Tick)
	}
	follower := within2(t, "the last rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	l, f := answered(t, leader, "the leader"), answered(t, follower, "the follower")
	require.NoError(t, l.Err)
	require.NoError(t, f.Err)
	clk.Advance(time.Second)
	within(t, "Tick", g.Tick)
	assert.NoError(t, g.Heartbeat(ms[0].id, "", l.Generation), "the leader's session restarted when its JoinGroup was answered")
	assert.Equal(t, group.CompletingRebalance, g.State())
}

// After the join phase, every member owes a SyncGroup within the rebalance
// timeout. A leader that heartbeats but never sends its assignment would
// leave the group waiting forever: it is removed, and the others
// rebalance without it.
func TestALeaderThatNeverSyncsIsRemoved(t *testing.T) {
	g, clk, ms := stable(t, 2)
	leader := g.Join(joinReq(ms[0].id))
	follower := within2(t, "the rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	l, f := answered(t, leader, "the leader"), answered(t, follower, "the follower")
	require.NoError(t, l.Err)
	require.NoError(t, f.Err)
	synced := g.Sync(group.SyncRequest{MemberID: ms[1].id, Generation: f.Generation}) // the follower waits for the leader
	for elapsed := time.Duration(0); elapsed <= rebalance; elapsed += 5 * time.Second {
		clk.Advance(5 * time.Second)
		// The leader is alive, its heartbeats say so: only the missing
		// SyncGroup can get it removed.
		if err := g.Heartbeat(ms[0].id, "", l.Generation); err != nil {
			break
		}
		within(t, "Tick", g.Tick)
	}
	res := answered(t, synced, "the follower's SyncGroup, once the leader is given up on")
	assert.ErrorIs(t, res.Err, kerr.RebalanceInProgress, "the follower must rejoin")
	assert.ErrorIs(t, g.Heartbeat(ms[0].id, "", l.Generation), kerr.UnknownMemberID, "the leader is out")
}

// Heartbeats keep a member in its group: one every 9 s with a 10 s session
// for a minute, and it is still there.
func TestHeartbeatsKeepAMemberIn(t *testing.T) {
	g, clk, ms := stable(t, 2)
	for range 7 {
		clk.Advance(9 * time.Second)
		for _, m := range ms {
			require.NoError(t, g.Heartbeat(m.id, "", m.generation), "a member of a Stable group heartbeats")
		}
		within(t, "Tick", g.Tick)
	}
	assert.Equal(t, group.Stable, g.State())
	assert.Len(t, g.Describe().Members, 2)
}

// A member whose heartbeats stop for session.timeout.ms is removed; the
// other learns from its next heartbeat that it must rejoin.
func TestAMemberWhoseHeartbeatsStopIsRemoved(t *testing.T) {
	g, clk, ms := stable(t, 2)
	clk.Advance(6 * time.Second)
	require.NoError(t, g.Heartbeat(ms[1].id, "", ms[1].generation))
	clk.Advance(5 * time.Second) // 11 s since the leader's last sign of life
	within(t, "Tick", g.Tick)
	assert.ErrorIs(t, g.Heartbeat(ms[0].id, "", ms[0].generation), kerr.UnknownMemberID)
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", ms[1].generation), kerr.RebalanceInProgress, "the survivor must rejoin")
}

// A heartbeat says what the member must do: REBALANCE_IN_PROGRESS while
// the group waits for rejoins; nothing special between its JoinGroup
// answer and its SyncGroup (CompletingRebalance is part of the member's
// normal life); ILLEGAL_GENERATION from an older generation;
// UNKNOWN_MEMBER_ID from a stranger.
func TestAHeartbeatSaysWhatTheMemberMustDo(t *testing.T) {
	g, _, ms := stable(t, 2)
	gen := ms[0].generation
	leader := g.Join(joinReq(ms[0].id))
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", gen), kerr.RebalanceInProgress, "PreparingRebalance")
	follower := within2(t, "the rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(ms[1].id)) })
	answered(t, leader, "the leader")
	f := answered(t, follower, "the follower")
	require.NoError(t, f.Err)
	require.Equal(t, group.CompletingRebalance, g.State())
	assert.NoError(t, g.Heartbeat(ms[1].id, "", f.Generation), "CompletingRebalance: no error")
	assert.ErrorIs(t, g.Heartbeat(ms[1].id, "", gen), kerr.IllegalGeneration, "the generation before")
	assert.ErrorIs(t, g.Heartbeat("stranger", "", f.Generation), kerr.UnknownMemberID)
}

// within runs f and fails the test if it does not return within 5 s: a
// join phase that answers a member that is not waiting blocks forever.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s: is the group answering a member that does not wait (a nil channel blocks forever)?", what)
	}
}

// within2 is within for a call that returns a join's answer channel.
func within2(t *testing.T, what string, f func() <-chan group.JoinResult) <-chan group.JoinResult {
	t.Helper()
	var ch <-chan group.JoinResult
	within(t, what, func() { ch = f() })
	return ch
}

// group.initial.rebalance.delay.ms holds the first rebalance of an empty
// group, so that consumers started together form one generation instead
// of one rebalance each. It applies to that first rebalance only: later
// ones end as soon as every member has rejoined.
func TestTheInitialDelayHoldsOnlyTheFirstRebalance(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := group.DefaultConfig() // a 3 s initial delay
	cfg.Now = clk.Now
	g := group.NewGroup("g", cfg)
	first := g.Join(joinReq(""))
	clk.Advance(2 * time.Second)
	second := g.Join(joinReq(""))
	within(t, "Tick", g.Tick)
	waiting(t, first, "the first member, during the initial delay")
	clk.Advance(3 * time.Second) // each newcomer pushes the delay back, 3 s from the last one
	within(t, "Tick after the delay", g.Tick)
	a, b := answered(t, first, "the first member"), answered(t, second, "the second member")
	require.NoError(t, a.Err)
	require.NoError(t, b.Err)
	assert.Equal(t, a.Generation, b.Generation, "one generation for both")
	syncAll(t, g, []member{{a.Leader, a.Generation}, {otherThan(a.Leader, a.MemberID, b.MemberID), a.Generation}})

	third := g.Join(joinReq(""))
	rejoins := []<-chan group.JoinResult{g.Join(joinReq(a.MemberID))}
	rejoins = append(rejoins, within2(t, "the last rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(b.MemberID)) }))
	res := answered(t, third, "the newcomer, once everyone rejoined: no delay this time")
	require.NoError(t, res.Err)
	assert.Equal(t, a.Generation+1, res.Generation)
	for _, r := range rejoins {
		require.NoError(t, answered(t, r, "a rejoin").Err)
	}
}

// otherThan returns whichever of a and b is not leader.
func otherThan(leader, a, b string) string {
	if a == leader {
		return b
	}
	return a
}
