package group

// State is where a group is in its rebalance cycle; doc.go draws the
// transitions.
type State int8

const (
	// Empty: no members (the group may still have committed offsets).
	Empty State = iota
	// PreparingRebalance: waiting for every member to (re)send JoinGroup.
	PreparingRebalance
	// CompletingRebalance: JoinGroup answered; waiting for the leader's
	// SyncGroup with the assignments.
	CompletingRebalance
	// Stable: every member has its assignment; members only heartbeat.
	Stable
	// Dead: the group is gone from this coordinator (unloaded); its
	// requests should go elsewhere.
	Dead
)

// String returns the state's name as DescribeGroups and ListGroups spell it.
func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return "Unknown"
}
