package group

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a clock tests move by hand, so deadlines pass without sleeps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the fake time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestGroup returns a group on a fake clock, without the initial
// rebalance delay unless a test asks for it.
func newTestGroup(initialDelay time.Duration) (*Group, *fakeClock) {
	clk := newFakeClock()
	cfg := DefaultConfig()
	cfg.Now = clk.Now
	cfg.InitialRebalanceDelay = initialDelay
	return NewGroup("g", cfg), clk
}

const (
	testSessionTimeout   = 10 * time.Second
	testRebalanceTimeout = 30 * time.Second
)

// joinReq returns a consumer's JoinGroup with these protocols, in order of
// preference, each with its name as metadata.
func joinReq(memberID string, protocols ...string) JoinRequest {
	req := JoinRequest{
		MemberID:         memberID,
		ClientID:         "client",
		ClientHost:       "/127.0.0.1",
		ProtocolType:     "consumer",
		SessionTimeout:   testSessionTimeout,
		RebalanceTimeout: testRebalanceTimeout,
	}
	for _, p := range protocols {
		req.Protocols = append(req.Protocols, Protocol{Name: p, Metadata: []byte("meta-" + p)})
	}
	return req
}

// answered returns the value waiting on ch, failing if there is none. Every
// answer is sent under the group's lock by the call that produced it, so it
// is there as soon as that call returns: no waiting needed.
func answered[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		require.FailNow(t, "no answer yet")
		var zero T
		return zero
	}
}

// notAnswered fails if ch holds an answer.
func notAnswered[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		require.FailNow(t, "unexpected answer", "%+v", v)
	default:
	}
}

// stableGroup forms a Stable group of n dynamic members with the "range"
// protocol; each member's assignment is "assign-<member id>". It returns
// the member ids, the leader first.
func stableGroup(t *testing.T, g *Group) (leader, follower string) {
	t.Helper()
	a := answered(t, g.Join(joinReq("", "range")))
	require.NoError(t, a.Err)
	leader = a.MemberID
	chB := g.Join(joinReq("", "range")) // rebalances generation 1 away
	chA := g.Join(joinReq(leader, "range"))
	ra, rb := answered(t, chA), answered(t, chB)
	require.NoError(t, ra.Err)
	require.NoError(t, rb.Err)
	follower = rb.MemberID
	require.Equal(t, leader, ra.Leader)
	syncAll(t, g, ra.Generation, leader, follower)
	return leader, follower
}

// syncAll sends the followers' SyncGroups, then the leader's, assigning
// each member "assign-<member id>", and checks every answer.
func syncAll(t *testing.T, g *Group, generation int32, leader string, followers ...string) {
	t.Helper()
	var waiting []<-chan SyncResult
	for _, f := range followers {
		ch := g.Sync(SyncRequest{MemberID: f, Generation: generation})
		notAnswered(t, ch) // a follower waits for its leader
		waiting = append(waiting, ch)
	}
	assignments := map[string][]byte{leader: []byte("assign-" + leader)}
	for _, f := range followers {
		assignments[f] = []byte("assign-" + f)
	}
	lr := answered(t, g.Sync(SyncRequest{MemberID: leader, Generation: generation, Assignments: assignments}))
	require.NoError(t, lr.Err)
	require.Equal(t, "assign-"+leader, string(lr.Assignment))
	for i, ch := range waiting {
		r := answered(t, ch)
		require.NoError(t, r.Err)
		require.Equal(t, "assign-"+followers[i], string(r.Assignment))
		require.Equal(t, "range", r.Protocol)
	}
	require.Equal(t, Stable, g.State())
}
