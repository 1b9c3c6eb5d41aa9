package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Tick applies every deadline that has passed: members whose session
// expired are removed (and the others rebalance), member ids handed out
// with MEMBER_ID_REQUIRED and never used are forgotten, a rebalance whose
// timeout passed completes without the members that did not rejoin, and
// members that did not send SyncGroup within the rebalance timeout after
// the join phase are removed (and the others rebalance).
//
// Deadlines are checked by this tick rather than by one timer each: the
// coordinator calls Tick (through Manager.Tick) every few hundred
// milliseconds, tests call it after moving a fake clock, and no timer
// goroutine ever races with a request for the group's lock. The price is
// that a deadline is noticed up to one tick late, which a session timeout
// of seconds does not mind.
func (g *Group) Tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Dead {
		return
	}
	now := g.cfg.Now()
	for id, deadline := range g.pending {
		if !now.Before(deadline) {
			delete(g.pending, id)
		}
	}
	for _, m := range g.sortedMembers() {
		if g.members[m.id] != m {
			continue // removed by a join phase an earlier removal completed
		}
		// A member waiting in JoinGroup cannot heartbeat; the rebalance
		// timeout bounds its wait instead. One waiting in SyncGroup waits
		// for its leader, which must sync by the sync deadline.
		if m.awaitingJoin != nil || m.awaitingSync != nil {
			continue
		}
		if !now.Before(m.sessionDeadline) {
			g.removeAndRebalance(m, now)
		}
	}
	g.tryCompleteJoin(now)
	g.expirePendingSync(now)
}

// expirePendingSync removes the members that owe a SyncGroup past the
// sync deadline, and rebalances the others.
func (g *Group) expirePendingSync(now time.Time) {
	if len(g.pendingSync) == 0 || now.Before(g.syncDeadline) {
		return
	}
	if g.state != CompletingRebalance && g.state != Stable {
		return
	}
	for _, m := range g.sortedMembers() {
		if g.pendingSync[m.id] {
			g.remove(m)
		}
	}
	g.prepareRebalance(now)
	g.tryCompleteJoin(now)
}

// Unload marks the group Dead, as when this broker stops being its
// coordinator: waiting requests are answered NOT_COORDINATOR so that their
// clients look for the new one.
func (g *Group) Unload() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m.awaitingJoin != nil {
			m.awaitingJoin <- JoinResult{Err: kerr.NotCoordinator, Generation: -1, MemberID: m.id}
			m.awaitingJoin = nil
		}
		if m.awaitingSync != nil {
			m.awaitingSync <- SyncResult{Err: kerr.NotCoordinator}
			m.awaitingSync = nil
		}
	}
	g.members = make(map[string]*member)
	g.byInstance = make(map[string]string)
	g.pending = make(map[string]time.Time)
	g.pendingSync = make(map[string]bool)
	g.leader, g.protocol = "", ""
	g.state = Dead
}
