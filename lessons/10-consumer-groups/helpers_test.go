package groups_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/group"
)

// clock is a clock the tests move by hand, so that session and rebalance
// timeouts pass without waiting for them.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Timeouts the tests' members ask for: Kafka's session.timeout.ms and
// max.poll.interval.ms, shortened.
const (
	session   = 10 * time.Second
	rebalance = 60 * time.Second
)

// newGroup returns an Empty group on a clock of its own, with no initial
// rebalance delay: the first member's join completes at once.
func newGroup() (*group.Group, *clock) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg := group.DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	cfg.Now = clk.Now
	return group.NewGroup("g", cfg), clk
}

// joinReq is a consumer's JoinGroup: member id "" on its first join,
// protocols "range" unless given.
func joinReq(memberID string, protocols ...string) group.JoinRequest {
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	req := group.JoinRequest{
		MemberID: memberID, ClientID: "client", ProtocolType: "consumer",
		SessionTimeout: session, RebalanceTimeout: rebalance,
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, group.Protocol{Name: p, Metadata: []byte("subscription of " + p)})
	}
	return req
}

// answered returns the answer waiting on ch, failing the test if there is
// none: the group answers under its lock, so an answer is there as soon as
// the call that produced it returned.
func answered[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatalf("%s: no answer yet; the group should have answered", what)
		panic("unreachable")
	}
}

// waiting checks that ch has no answer yet.
func waiting[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: answered %+v; it should still wait", what, v)
	default:
	}
}

// joinOK is a join whose answer must come at once, without error.
func joinOK(t *testing.T, g *group.Group, req group.JoinRequest) group.JoinResult {
	t.Helper()
	res := answered(t, within2(t, "JoinGroup", func() <-chan group.JoinResult { return g.Join(req) }), "JoinGroup")
	require.NoError(t, res.Err, "JoinGroup of %q", req.MemberID)
	return res
}

// member is a member the tests drive: its id and generation.
type member struct {
	id         string
	generation int32
}

// stable returns a Stable group of n members, the first the leader, each
// assigned "its own" partitions.
func stable(t *testing.T, n int) (*group.Group, *clock, []member) {
	t.Helper()
	g, clk := newGroup()
	first := joinOK(t, g, joinReq(""))
	members := []member{{first.MemberID, first.Generation}}
	for i := 1; i < n; i++ {
		newcomer := within2(t, "a newcomer's JoinGroup", func() <-chan group.JoinResult { return g.Join(joinReq("")) })
		var rejoins []<-chan group.JoinResult
		for _, m := range members {
			rejoins = append(rejoins, within2(t, "a rejoin", func() <-chan group.JoinResult { return g.Join(joinReq(m.id)) }))
		}
		for j, r := range rejoins { // the last rejoin completed the join phase
			res := answered(t, r, "a rejoin")
			require.NoError(t, res.Err)
			members[j].generation = res.Generation
		}
		got := answered(t, newcomer, "the newcomer's join")
		require.NoError(t, got.Err)
		members = append(members, member{got.MemberID, got.Generation})
	}
	syncAll(t, g, members)
	require.Equal(t, group.Stable, g.State())
	return g, clk, members
}

// syncAll sends every member's SyncGroup, the leader (members[0]) first
// with an assignment for each, and checks each gets its own.
func syncAll(t *testing.T, g *group.Group, members []member) {
	t.Helper()
	assignments := map[string][]byte{}
	for _, m := range members {
		assignments[m.id] = []byte("partitions of " + m.id)
	}
	for i, m := range members {
		req := group.SyncRequest{MemberID: m.id, Generation: m.generation}
		if i == 0 {
			req.Assignments = assignments
		}
		res := answered(t, g.Sync(req), "SyncGroup")
		require.NoError(t, res.Err, "SyncGroup of %s", m.id)
		require.Equal(t, "partitions of "+m.id, string(res.Assignment))
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}
