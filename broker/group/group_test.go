package group

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestTwoMembersFormOneGenerationWithInitialDelay(t *testing.T) {
	g, clk := newTestGroup(3 * time.Second)
	chA := g.Join(joinReq("", "range"))
	clk.Advance(time.Second)
	chB := g.Join(joinReq("", "range"))
	assert.Equal(t, PreparingRebalance, g.State())
	notAnswered(t, chA) // both joined, but the initial delay waits for more
	notAnswered(t, chB)

	clk.Advance(2 * time.Second) // 3 s after A, but B pushed the delay to 4 s
	g.Tick()
	notAnswered(t, chA)

	clk.Advance(time.Second)
	g.Tick()
	ra, rb := answered(t, chA), answered(t, chB)
	require.NoError(t, ra.Err)
	require.NoError(t, rb.Err)
	assert.Equal(t, int32(1), ra.Generation)
	assert.Equal(t, ra.Generation, rb.Generation)
	assert.Equal(t, ra.MemberID, ra.Leader, "the first member to join leads")
	assert.Equal(t, ra.Leader, rb.Leader)
	assert.Equal(t, "range", ra.Protocol)
	assert.Equal(t, "consumer", ra.ProtocolType)
	require.Len(t, ra.Members, 2, "the leader gets every member's metadata")
	assert.Equal(t, "meta-range", string(ra.Members[0].Metadata))
	assert.Empty(t, rb.Members, "a follower gets none")
	assert.Equal(t, CompletingRebalance, g.State())

	syncAll(t, g, 1, ra.MemberID, rb.MemberID)
	assert.NoError(t, g.Heartbeat(ra.MemberID, "", 1))
	assert.NoError(t, g.Heartbeat(rb.MemberID, "", 1))
}

func TestInitialDelayIsCappedByRebalanceTimeout(t *testing.T) {
	g, clk := newTestGroup(3 * time.Second)
	first := g.Join(joinReq("", "range")) // rebalance timeout 30 s
	var all []<-chan JoinResult
	for range 14 { // a newcomer every 2 s keeps pushing the delay back
		clk.Advance(2 * time.Second)
		g.Tick()
		notAnswered(t, first)
		all = append(all, g.Join(joinReq("", "range")))
	}
	clk.Advance(2 * time.Second) // 30 s: the last newcomer's delay runs to 31 s, the cap to 30 s
	g.Tick()
	r := answered(t, first)
	require.NoError(t, r.Err)
	assert.Len(t, r.Members, 15)
	for _, ch := range all {
		assert.Equal(t, int32(1), answered(t, ch).Generation)
	}
}

func TestNewMemberTriggersRebalanceAllRejoin(t *testing.T) {
	g, _ := newTestGroup(0)
	a, b := stableGroup(t, g)
	gen := g.Generation()

	chC := g.Join(joinReq("", "range"))
	assert.Equal(t, PreparingRebalance, g.State())
	notAnswered(t, chC)
	assert.ErrorIs(t, g.Heartbeat(a, "", gen), kerr.RebalanceInProgress, "the heartbeat tells A to rejoin")
	assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.RebalanceInProgress)
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen})).Err, kerr.RebalanceInProgress)

	chA := g.Join(joinReq(a, "range"))
	notAnswered(t, chA) // B has not rejoined yet
	chB := g.Join(joinReq(b, "range"))
	ra, rb, rc := answered(t, chA), answered(t, chB), answered(t, chC)
	for _, r := range []JoinResult{ra, rb, rc} {
		require.NoError(t, r.Err)
		assert.Equal(t, gen+1, r.Generation)
		assert.Equal(t, a, r.Leader, "the leader stays")
	}
	assert.Len(t, ra.Members, 3)
	syncAll(t, g, gen+1, a, b, rc.MemberID)
	assert.ErrorIs(t, g.Heartbeat(a, "", gen), kerr.IllegalGeneration, "the old generation is over")
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	g, clk := newTestGroup(0)
	a, b := stableGroup(t, g)
	gen := g.Generation()

	clk.Advance(testSessionTimeout / 2)
	require.NoError(t, g.Heartbeat(a, "", gen))
	clk.Advance(testSessionTimeout/2 - time.Millisecond)
	g.Tick()
	assert.Equal(t, Stable, g.State(), "B's session has a millisecond left")

	clk.Advance(time.Millisecond)
	g.Tick() // B's session expired; A heartbeat 5 s ago
	assert.Equal(t, PreparingRebalance, g.State())
	assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.UnknownMemberID)
	assert.ErrorIs(t, g.Heartbeat(a, "", gen), kerr.RebalanceInProgress)

	r := answered(t, g.Join(joinReq(a, "range"))) // A was the only one left to wait for
	require.NoError(t, r.Err)
	assert.Equal(t, gen+1, r.Generation)
	require.Len(t, r.Members, 1)
	assert.Equal(t, a, r.Members[0].MemberID)
}

func TestRebalanceTimeoutDropsMembersThatDoNotRejoin(t *testing.T) {
	g, clk := newTestGroup(0)
	a, b := stableGroup(t, g)
	gen := g.Generation()

	chA := g.Join(joinReq(a, "range")) // the leader rejoining forces a rebalance
	assert.Equal(t, PreparingRebalance, g.State())
	for elapsed := time.Duration(0); elapsed < testRebalanceTimeout-time.Second; elapsed += time.Second {
		clk.Advance(time.Second)
		// B heartbeats, so its session lives, but it never rejoins
		// (its application stopped polling: KIP-62).
		assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.RebalanceInProgress)
		g.Tick()
	}
	notAnswered(t, chA)
	clk.Advance(time.Second)
	g.Tick()
	r := answered(t, chA)
	require.NoError(t, r.Err)
	assert.Len(t, r.Members, 1)
	assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.UnknownMemberID)
}

func TestLeaveTriggersRebalance(t *testing.T) {
	g, _ := newTestGroup(0)
	a, b := stableGroup(t, g)
	gen := g.Generation()

	require.NoError(t, g.Leave(a, "")) // the leader leaves
	assert.Equal(t, PreparingRebalance, g.State())
	assert.ErrorIs(t, g.Leave(a, ""), kerr.UnknownMemberID)

	r := answered(t, g.Join(joinReq(b, "range")))
	require.NoError(t, r.Err)
	assert.Equal(t, gen+1, r.Generation)
	assert.Equal(t, b, r.Leader, "a remaining member leads")

	require.NoError(t, g.Leave(b, ""))
	assert.Equal(t, Empty, g.State(), "the last member leaving empties the group")
	assert.Equal(t, gen+2, g.Generation())
}

func TestLeaveWhileWaitingInJoin(t *testing.T) {
	g, _ := newTestGroup(0)
	a, b := stableGroup(t, g)
	chA := g.Join(joinReq(a, "range"))
	notAnswered(t, chA)
	require.NoError(t, g.Leave(b, "")) // A waited only for B
	require.NoError(t, answered(t, chA).Err)
}

func TestMemberIDRequired(t *testing.T) {
	g, clk := newTestGroup(0)
	req := joinReq("", "range")
	req.RequireKnownMemberID = true
	r := answered(t, g.Join(req))
	require.ErrorIs(t, r.Err, kerr.MemberIDRequired)
	require.NotEmpty(t, r.MemberID)
	assert.Equal(t, Empty, g.State(), "a handed-out id is not a member yet")

	req.MemberID = r.MemberID
	r2 := answered(t, g.Join(req))
	require.NoError(t, r2.Err)
	assert.Equal(t, r.MemberID, r2.MemberID)
	assert.Equal(t, int32(1), r2.Generation)

	// An id handed out and never used is forgotten after the session timeout.
	req.MemberID = ""
	r3 := answered(t, g.Join(req))
	require.ErrorIs(t, r3.Err, kerr.MemberIDRequired)
	clk.Advance(testSessionTimeout)
	g.Tick()
	req.MemberID = r3.MemberID
	assert.ErrorIs(t, answered(t, g.Join(req)).Err, kerr.UnknownMemberID)
}

func TestPendingMemberHoldsRebalance(t *testing.T) {
	g, _ := newTestGroup(0)
	a, b := stableGroup(t, g)
	req := joinReq("", "range")
	req.RequireKnownMemberID = true
	pending := answered(t, g.Join(req)).MemberID
	assert.Equal(t, Stable, g.State(), "handing out an id starts no rebalance")

	// A rebalance starts; it waits for the member that was handed an id too.
	chA := g.Join(joinReq(a, "range"))
	require.NoError(t, g.Leave(b, ""))
	notAnswered(t, chA)

	req.MemberID = pending
	chP := g.Join(req)
	ra, rp := answered(t, chA), answered(t, chP)
	require.NoError(t, ra.Err)
	require.NoError(t, rp.Err)
	assert.Len(t, ra.Members, 2)
}

func TestIllegalGenerationAndUnknownMember(t *testing.T) {
	g, _ := newTestGroup(0)
	a, _ := stableGroup(t, g)
	gen := g.Generation()

	assert.ErrorIs(t, g.Heartbeat(a, "", gen-1), kerr.IllegalGeneration)
	assert.ErrorIs(t, g.Heartbeat(a, "", gen+1), kerr.IllegalGeneration)
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen - 1})).Err, kerr.IllegalGeneration)
	assert.ErrorIs(t, g.Heartbeat("nobody", "", gen), kerr.UnknownMemberID)
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: "nobody", Generation: gen})).Err, kerr.UnknownMemberID)
	assert.ErrorIs(t, answered(t, g.Join(joinReq("nobody", "range"))).Err, kerr.UnknownMemberID)
	assert.ErrorIs(t, g.Leave("nobody", ""), kerr.UnknownMemberID)

	// In Stable, a follower syncing late still gets its assignment.
	r := answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen}))
	require.NoError(t, r.Err)
	assert.Equal(t, "assign-"+a, string(r.Assignment))
}

func TestInvalidSessionTimeout(t *testing.T) {
	for _, d := range []time.Duration{6*time.Second - time.Millisecond, 30*time.Minute + time.Millisecond} {
		g, _ := newTestGroup(0)
		req := joinReq("", "range")
		req.SessionTimeout = d
		assert.ErrorIs(t, answered(t, g.Join(req)).Err, kerr.InvalidSessionTimeout, "%v", d)
	}
	for _, d := range []time.Duration{6 * time.Second, 30 * time.Minute} {
		g, _ := newTestGroup(0)
		req := joinReq("", "range")
		req.SessionTimeout = d
		assert.NoError(t, answered(t, g.Join(req)).Err, "%v", d)
	}
}

func TestProtocolSelection(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members [][]string
		want    string
	}{
		{"one member's first choice", [][]string{{"range", "roundrobin"}}, "range"},
		{"most first choices", [][]string{{"range", "roundrobin"}, {"roundrobin", "range"}, {"roundrobin", "range"}}, "roundrobin"},
		{"only the common one", [][]string{{"sticky", "range"}, {"roundrobin", "range"}}, "range"},
		{"a vote goes to the first common choice", [][]string{{"sticky", "roundrobin", "range"}, {"range", "roundrobin"}, {"roundrobin", "range"}}, "roundrobin"},
		{"a tie goes to the name that sorts first", [][]string{{"roundrobin", "range"}, {"range", "roundrobin"}}, "range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newTestGroup(0)
			for i, ps := range tc.members {
				g.members[string(rune('a'+i))] = &member{id: string(rune('a' + i)), protocols: joinReq("", ps...).Protocols}
			}
			assert.Equal(t, tc.want, g.selectProtocol())
		})
	}
}

func TestInconsistentGroupProtocol(t *testing.T) {
	g, _ := newTestGroup(0)
	stableGroup(t, g)
	assert.ErrorIs(t, answered(t, g.Join(joinReq("", "roundrobin"))).Err, kerr.InconsistentGroupProtocol)
	other := joinReq("", "range")
	other.ProtocolType = "connect"
	assert.ErrorIs(t, answered(t, g.Join(other)).Err, kerr.InconsistentGroupProtocol)
	assert.ErrorIs(t, answered(t, g.Join(joinReq(""))).Err, kerr.InconsistentGroupProtocol, "no protocols at all")
	assert.Equal(t, Stable, g.State(), "a rejected join changes nothing")
	notAnswered(t, g.Join(joinReq("", "roundrobin", "range")))
	assert.Equal(t, PreparingRebalance, g.State(), "a member with range among its protocols may join")
}

func TestFollowerSyncInterruptedByRebalance(t *testing.T) {
	g, _ := newTestGroup(0)
	a := answered(t, g.Join(joinReq("", "range"))).MemberID
	chB := g.Join(joinReq("", "range"))
	chA := g.Join(joinReq(a, "range"))
	answered(t, chA)
	b := answered(t, chB).MemberID
	gen := g.Generation()

	syncB := g.Sync(SyncRequest{MemberID: b, Generation: gen})
	notAnswered(t, syncB)
	assert.NoError(t, g.Heartbeat(b, "", gen), "heartbeats are fine while the leader assigns")
	chC := g.Join(joinReq("", "range"))
	assert.ErrorIs(t, answered(t, syncB).Err, kerr.RebalanceInProgress)
	notAnswered(t, chC)
}

// staticGroup forms a Stable group of static member "consumer-1" (the
// leader) and a dynamic member; both support range and roundrobin, ranked
// differently, so the tie goes to range.
func staticGroup(t *testing.T, g *Group) (static JoinRequest, a, b string) {
	t.Helper()
	static = joinReq("", "range", "roundrobin")
	static.InstanceID = "consumer-1"
	a = answered(t, g.Join(static)).MemberID
	chB := g.Join(joinReq("", "roundrobin", "range"))
	rejoin := static
	rejoin.MemberID = a
	ra := answered(t, g.Join(rejoin))
	b = answered(t, chB).MemberID
	require.Equal(t, a, ra.Leader)
	syncAll(t, g, ra.Generation, a, b)
	return static, a, b
}

func TestStaticMemberRejoinKeepsAssignment(t *testing.T) {
	g, _ := newTestGroup(0)
	static, a, b := staticGroup(t, g)
	gen := g.Generation()

	// consumer-1 restarts: it lost its member id, but not its instance id.
	static.SupportsSkipAssignment = true
	r := answered(t, g.Join(static))
	require.NoError(t, r.Err)
	assert.NotEqual(t, a, r.MemberID, "a new incarnation gets a new member id")
	assert.Equal(t, gen, r.Generation, "no rebalance")
	assert.Equal(t, r.MemberID, r.Leader, "it led, and still does")
	assert.True(t, r.SkipAssignment, "the leader must not assign again")
	assert.Len(t, r.Members, 2)
	assert.Equal(t, Stable, g.State())

	s := answered(t, g.Sync(SyncRequest{MemberID: r.MemberID, InstanceID: "consumer-1", Generation: gen}))
	require.NoError(t, s.Err)
	assert.Equal(t, "assign-"+a, string(s.Assignment), "the assignment survives the restart")
	assert.NoError(t, g.Heartbeat(b, "", gen), "the other member noticed nothing")
	assert.ErrorIs(t, g.Heartbeat(a, "consumer-1", gen), kerr.FencedInstanceID, "the old incarnation is fenced")
	assert.ErrorIs(t, g.Heartbeat(r.MemberID, "consumer-2", gen), kerr.UnknownMemberID, "an unknown instance id")

	// An older client (JoinGroup < v9) is told the old id leads, so that it
	// acts as a follower.
	static.SupportsSkipAssignment = false
	r2 := answered(t, g.Join(static))
	require.NoError(t, r2.Err)
	assert.Equal(t, r.MemberID, r2.Leader)
	assert.NotEqual(t, r2.MemberID, r2.Leader)
	assert.Empty(t, r2.Members)
	assert.Equal(t, gen, g.Generation())
}

func TestStaticMemberRejoinChangingProtocolRebalances(t *testing.T) {
	g, _ := newTestGroup(0)
	static, _, b := staticGroup(t, g)

	// Now preferring roundrobin, it tips the vote: the protocol would change.
	static.Protocols = joinReq("", "roundrobin", "range").Protocols
	ch := g.Join(static)
	assert.Equal(t, PreparingRebalance, g.State())
	notAnswered(t, ch)

	// Leaving by instance id.
	require.ErrorIs(t, g.Leave("wrong", "consumer-1"), kerr.FencedInstanceID)
	require.NoError(t, g.Leave("", "consumer-1"))
	assert.ErrorIs(t, answered(t, ch).Err, kerr.UnknownMemberID)
	r := answered(t, g.Join(joinReq(b, "roundrobin", "range")))
	require.NoError(t, r.Err)
	assert.Equal(t, "roundrobin", r.Protocol)
}

func TestStaticMemberRejoinWhileCompletingRebalance(t *testing.T) {
	g, _ := newTestGroup(0)
	static, a, b := staticGroup(t, g)
	rejoin := static
	rejoin.MemberID = a
	chA := g.Join(rejoin) // the leader rejoining starts a rebalance
	notAnswered(t, chA)
	require.NoError(t, answered(t, g.Join(joinReq(b, "roundrobin", "range"))).Err)
	require.NoError(t, answered(t, chA).Err)
	assert.Equal(t, CompletingRebalance, g.State())

	// It restarts before the leader synced: the leader assigns to the old
	// member id, so the group rebalances.
	ch := g.Join(static)
	assert.Equal(t, PreparingRebalance, g.State())
	notAnswered(t, ch)
}

func TestSyncDeadlineRemovesMembersThatDoNotSync(t *testing.T) {
	g, clk := newTestGroup(0)
	a := answered(t, g.Join(joinReq("", "range"))).MemberID
	chB := g.Join(joinReq("", "range"))
	chA := g.Join(joinReq(a, "range"))
	answered(t, chA)
	b := answered(t, chB).MemberID
	gen := g.Generation()

	syncB := g.Sync(SyncRequest{MemberID: b, Generation: gen})
	// The leader heartbeats, but never sends its SyncGroup.
	clk.Advance(testRebalanceTimeout - time.Second)
	require.NoError(t, g.Heartbeat(a, "", gen))
	g.Tick()
	notAnswered(t, syncB)
	clk.Advance(time.Second)
	g.Tick()
	assert.ErrorIs(t, answered(t, syncB).Err, kerr.RebalanceInProgress)
	assert.ErrorIs(t, g.Heartbeat(a, "", gen), kerr.UnknownMemberID)
	r := answered(t, g.Join(joinReq(b, "range")))
	require.NoError(t, r.Err)
	assert.Equal(t, b, r.Leader)
}

func TestSyncInconsistentProtocol(t *testing.T) {
	g, _ := newTestGroup(0)
	a, _ := stableGroup(t, g)
	gen := g.Generation()
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen, Protocol: "roundrobin"})).Err, kerr.InconsistentGroupProtocol)
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen, ProtocolType: "connect"})).Err, kerr.InconsistentGroupProtocol)
	assert.NoError(t, answered(t, g.Sync(SyncRequest{MemberID: a, Generation: gen, ProtocolType: "consumer", Protocol: "range"})).Err)
}

func TestDescribeAndList(t *testing.T) {
	clk := newFakeClock()
	cfg := DefaultConfig()
	cfg.Now = clk.Now
	cfg.InitialRebalanceDelay = 0
	mg := NewManager(cfg)
	_, ok := mg.Lookup("g")
	assert.False(t, ok)
	g := mg.Group("g")
	mg.Group("empty")
	a, b := stableGroup(t, g)

	d := g.Describe()
	assert.Equal(t, Stable, d.State)
	assert.Equal(t, "consumer", d.ProtocolType)
	assert.Equal(t, "range", d.Protocol)
	require.Len(t, d.Members, 2)
	for _, m := range d.Members {
		assert.Contains(t, []string{a, b}, m.MemberID)
		assert.Equal(t, "assign-"+m.MemberID, string(m.Assignment))
		assert.Equal(t, "meta-range", string(m.Metadata))
		assert.Equal(t, "client", m.ClientID)
	}
	assert.Equal(t, []Listing{
		{GroupID: "empty", State: Empty},
		{GroupID: "g", ProtocolType: "consumer", State: Stable},
	}, mg.List())

	clk.Advance(testSessionTimeout)
	mg.Tick() // both sessions expire: the group empties
	assert.Equal(t, Empty, g.State())
	mg.Unload("g")
	assert.Equal(t, Dead, g.State())
	_, ok = mg.Lookup("g")
	assert.False(t, ok)
	assert.ErrorIs(t, answered(t, g.Join(joinReq("", "range"))).Err, kerr.CoordinatorNotAvailable)
}

func TestRejoinWithoutChangeKeepsGeneration(t *testing.T) {
	g, _ := newTestGroup(0)
	a := answered(t, g.Join(joinReq("", "range"))).MemberID
	chB := g.Join(joinReq("", "range"))
	ra := answered(t, g.Join(joinReq(a, "range")))
	rb := answered(t, chB)
	gen := ra.Generation

	// CompletingRebalance: a retried JoinGroup (its answer was lost) gets
	// the same answer again, members and all for the leader.
	again := answered(t, g.Join(joinReq(a, "range")))
	require.NoError(t, again.Err)
	assert.Equal(t, gen, again.Generation)
	assert.Len(t, again.Members, 2)
	assert.Equal(t, CompletingRebalance, g.State())

	syncAll(t, g, gen, a, rb.MemberID)

	// Stable: a follower rejoining with the same protocols changes nothing.
	rf := answered(t, g.Join(joinReq(rb.MemberID, "range")))
	require.NoError(t, rf.Err)
	assert.Equal(t, gen, rf.Generation)
	assert.Equal(t, Stable, g.State())
}

func TestLeavePendingMember(t *testing.T) {
	g, _ := newTestGroup(0)
	a, _ := stableGroup(t, g)
	req := joinReq("", "range")
	req.RequireKnownMemberID = true
	pending := answered(t, g.Join(req)).MemberID

	chA := g.Join(joinReq(a, "range"))
	require.NoError(t, g.Leave(pending, "")) // the rebalance no longer waits for it
	notAnswered(t, chA)                      // but it still waits for the follower
	req.MemberID = pending
	assert.ErrorIs(t, answered(t, g.Join(req)).Err, kerr.UnknownMemberID)
}

func TestUnloadAnswersWaitingRequests(t *testing.T) {
	g, _ := newTestGroup(0)
	a, b := stableGroup(t, g)
	gen := g.Generation()
	chA := g.Join(joinReq(a, "range"))
	notAnswered(t, chA)
	g.Unload()
	assert.ErrorIs(t, answered(t, chA).Err, kerr.NotCoordinator)
	assert.Equal(t, Dead, g.State())
	assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.CoordinatorNotAvailable)
	assert.ErrorIs(t, answered(t, g.Sync(SyncRequest{MemberID: b, Generation: gen})).Err, kerr.CoordinatorNotAvailable)
	assert.ErrorIs(t, g.Leave(b, ""), kerr.CoordinatorNotAvailable)
}

func TestExpiriesInOneTickRebalanceOnce(t *testing.T) {
	g, clk := newTestGroup(0)
	a := answered(t, g.Join(joinReq("", "range"))).MemberID
	chB := g.Join(joinReq("", "range"))
	chA := g.Join(joinReq(a, "range"))
	answered(t, chA)
	b := answered(t, chB).MemberID
	chC := g.Join(joinReq("", "range")) // a third member: A and B must rejoin
	notAnswered(t, chC)
	gen := g.Generation()

	// Neither A nor B rejoins or heartbeats; the rebalance timeout (30 s)
	// outlasts their sessions (10 s).
	clk.Advance(testRebalanceTimeout)
	g.Tick()
	r := answered(t, chC)
	require.NoError(t, r.Err)
	assert.Equal(t, gen+1, r.Generation)
	assert.Equal(t, r.MemberID, r.Leader)
	assert.Equal(t, CompletingRebalance, g.State(), "one rebalance, not one per expiry")
	assert.ErrorIs(t, g.Heartbeat(a, "", gen), kerr.UnknownMemberID)
	assert.ErrorIs(t, g.Heartbeat(b, "", gen), kerr.UnknownMemberID)
}

func TestGroupMaxSize(t *testing.T) {
	g, _ := newTestGroup(0)
	g.cfg.MaxSize = 2
	a, b := stableGroup(t, g)
	r := answered(t, g.Join(joinReq("", "range")))
	assert.ErrorIs(t, r.Err, kerr.GroupMaxSizeReached, "a third member")
	assert.Equal(t, Stable, g.State())

	// The limit drops to 1: of the two members, the first to rejoin stays.
	g.cfg.MaxSize = 1
	chA := g.Join(joinReq(a, "range"))
	notAnswered(t, chA)
	assert.ErrorIs(t, answered(t, g.Join(joinReq(b, "range"))).Err, kerr.GroupMaxSizeReached)
	ra := answered(t, chA)
	require.NoError(t, ra.Err)
	assert.Len(t, ra.Members, 1)
}
