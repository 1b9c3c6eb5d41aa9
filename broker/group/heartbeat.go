package group

import "github.com/twmb/franz-go/pkg/kerr"

// Heartbeat handles a Heartbeat request: it resets the member's session
// deadline. It answers nil, or a kerr error:
//   - REBALANCE_IN_PROGRESS while the group prepares a rebalance: this is
//     how a member learns it must send JoinGroup again;
//   - UNKNOWN_MEMBER_ID for a member the group does not have (removed after
//     its session expired, say): it must join from scratch;
//   - ILLEGAL_GENERATION for a member of an older generation;
//   - FENCED_INSTANCE_ID for a static member replaced by a newer
//     incarnation.
func (g *Group) Heartbeat(memberID, instanceID string, generation int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	//klab:lesson 10 begin (*Group).Heartbeat
	m, err := g.checkMember(memberID, instanceID, generation)
	if err != nil {
		return err
	}
	m.sessionDeadline = g.cfg.Now().Add(m.sessionTimeout)
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress
	}
	// CompletingRebalance counts as fine: a member heartbeats between its
	// JoinGroup answer and its SyncGroup answer.
	return nil
	//klab:lesson 10 stub
	// return lessons.Todo("10", "(*Group).Heartbeat")
	//klab:lesson 10 end
}

// Leave handles one member of a LeaveGroup request: named by member id, or
// (v3+, KIP-345) by group.instance.id, with or without its member id. The
// member is removed and the others rebalance.
func (g *Group) Leave(memberID, instanceID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	now := g.cfg.Now()
	if instanceID != "" {
		owner, ok := g.byInstance[instanceID]
		if !ok {
			return kerr.UnknownMemberID
		}
		if memberID != "" && memberID != owner {
			return kerr.FencedInstanceID
		}
		memberID = owner
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		g.tryCompleteJoin(now) // the rebalance may have waited only for it
		return nil
	}
	m, ok := g.members[memberID]
	if !ok {
		return kerr.UnknownMemberID
	}
	g.removeAndRebalance(m, now)
	return nil
}
