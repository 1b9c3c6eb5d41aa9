package group

import "github.com/twmb/franz-go/pkg/kerr"

// SyncRequest is what a SyncGroup request carries.
type SyncRequest struct {
	MemberID   string
	InstanceID string // "" for a dynamic member
	Generation int32
	// ProtocolType and Protocol (SyncGroup v5+) must be the group's when
	// given; "" means not given.
	ProtocolType string
	Protocol     string
	// Assignments is the leader's result, by member id; followers send none.
	Assignments map[string][]byte
}

// SyncResult is the SyncGroup answer.
type SyncResult struct {
	Err          error // nil or a kerr error
	ProtocolType string
	Protocol     string
	Assignment   []byte // the member's partitions, encoded by the leader's assignor
}

// Sync handles one member's SyncGroup. The answer comes on the returned
// channel, which receives exactly one value: at once, or for a follower
// that syncs before its leader, when the leader's assignments arrive (or a
// new rebalance makes them moot: REBALANCE_IN_PROGRESS).
func (g *Group) Sync(req SyncRequest) <-chan SyncResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	m, err := g.checkMember(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return answerSync(SyncResult{Err: err})
	}
	if req.ProtocolType != "" && req.ProtocolType != g.protocolType || req.Protocol != "" && req.Protocol != g.protocol {
		return answerSync(SyncResult{Err: kerr.InconsistentGroupProtocol})
	}
	// Syncing proves the member alive, as a heartbeat does.
	m.sessionDeadline = now.Add(m.sessionTimeout)
	delete(g.pendingSync, m.id)
	switch g.state {
	case PreparingRebalance:
		return answerSync(SyncResult{Err: kerr.RebalanceInProgress})
	case Stable:
		// A follower that syncs after its leader, or a retry.
		return answerSync(g.syncResultFor(m))
	}
	// CompletingRebalance.
	ch := make(chan SyncResult, 1)
	if m.awaitingSync != nil {
		m.awaitingSync <- SyncResult{Err: kerr.RebalanceInProgress} // superseded by this retry
	}
	m.awaitingSync = ch
	if m.id == g.leader {
		// Kafka first writes the assignments to __consumer_offsets and
		// answers once that is durable; persistence is a later step.
		for _, o := range g.members {
			o.assignment = req.Assignments[o.id] // a member the leader left out gets nothing
		}
		g.state = Stable
		for _, o := range g.members {
			if o.awaitingSync != nil {
				o.awaitingSync <- g.syncResultFor(o)
				o.awaitingSync = nil
			}
		}
	}
	return ch
}

// syncResultFor returns m's SyncGroup answer in the current generation.
func (g *Group) syncResultFor(m *member) SyncResult {
	return SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
}

// checkMember finds the member a SyncGroup or Heartbeat names and checks
// that it speaks for the current generation.
func (g *Group) checkMember(memberID, instanceID string, generation int32) (*member, error) {
	if g.state == Dead {
		return nil, kerr.CoordinatorNotAvailable
	}
	m, err := g.validateMember(memberID, instanceID)
	if err != nil {
		return nil, err
	}
	if generation != g.generation {
		return nil, kerr.IllegalGeneration
	}
	return m, nil
}

// validateMember finds the member a request names. A static member's
// instance id must be known (UNKNOWN_MEMBER_ID) and map to this member id:
// a different one means a newer incarnation replaced it
// (FENCED_INSTANCE_ID).
func (g *Group) validateMember(memberID, instanceID string) (*member, error) {
	if instanceID != "" {
		owner, ok := g.byInstance[instanceID]
		if !ok {
			return nil, kerr.UnknownMemberID
		}
		if owner != memberID {
			return nil, kerr.FencedInstanceID
		}
	}
	m, ok := g.members[memberID]
	if !ok {
		return nil, kerr.UnknownMemberID
	}
	return m, nil
}

// answerSync returns a channel already holding res.
func answerSync(res SyncResult) <-chan SyncResult {
	ch := make(chan SyncResult, 1)
	ch <- res
	return ch
}
