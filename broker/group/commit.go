package group

import "github.com/twmb/franz-go/pkg/kerr"

// ValidateCommit checks that an OffsetCommit may store offsets for this
// group, as Kafka's classic coordinator does. Two kinds of committer exist:
//
//   - a member of the group, which names itself (member id, instance id)
//     and the generation it consumes in. It must be a current member of the
//     current generation: a member the group removed (UNKNOWN_MEMBER_ID) or
//     one from an older generation (ILLEGAL_GENERATION) may no longer own
//     the partitions it commits for; its commit could move an offset that
//     another member now advances. Between JoinGroup and the leader's
//     SyncGroup the member has no assignment yet: REBALANCE_IN_PROGRESS.
//   - a client outside group management (kafka-consumer-groups.sh
//     --reset-offsets, a consumer that assigns partitions itself), which
//     sends generation -1 and no member id. It may commit only while the
//     group has no members; otherwise UNKNOWN_MEMBER_ID, or it would fight
//     the members over the same offsets.
func (g *Group) ValidateCommit(memberID, instanceID string, generation int32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	//klab:lesson 10 begin (*Group).ValidateCommit
	switch {
	case g.state == Dead:
		return kerr.CoordinatorNotAvailable
	case generation < 0 && g.state == Empty:
		return nil
	case generation >= 0 || memberID != "" || instanceID != "":
		if _, err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return kerr.IllegalGeneration
		}
	case g.state != Empty:
		return kerr.UnknownMemberID
	}
	if g.state == CompletingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
	//klab:lesson 10 stub
	// return lessons.Todo("10", "(*Group).ValidateCommit")
	//klab:lesson 10 end
}

// ValidateFetch checks an OffsetFetch (v9+, KIP-848's member epochs aside)
// that names a member: classic groups accept any reader, so only a Dead
// group is refused.
func (g *Group) ValidateFetch() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable
	}
	return nil
}
