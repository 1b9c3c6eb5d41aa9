package group

import (
	"sort"
	"sync"
	"time"
)

// Group is one consumer group's membership and rebalance state.
//
// Every method locks mu for its whole run, so each operation is one atomic
// step of the state machine. Answers to waiting JoinGroup and SyncGroup
// requests go out on channels with room for exactly one answer, so sending
// them under mu never blocks. Lock order: Manager.mu before Group.mu; a
// Group never calls back into its Manager.
type Group struct {
	id  string
	cfg Config

	mu           sync.Mutex // guards everything below
	state        State
	generation   int32
	protocolType string // "consumer" for consumers; set by the first member
	protocol     string // the chosen assignor; "" until a generation has members
	leader       string // member id; "" when there are no members
	members      map[string]*member
	// byInstance maps group.instance.id to the static member's current
	// member id (KIP-345).
	byInstance map[string]string
	// pending holds the member ids handed out with MEMBER_ID_REQUIRED
	// (KIP-394) and when each expires if its owner does not rejoin.
	pending map[string]time.Time
	// joinDeadline is when the running rebalance stops waiting for members
	// to rejoin; zero when not PreparingRebalance.
	joinDeadline time.Time
	// initialDelay is true while the first rebalance of an empty group waits
	// out group.initial.rebalance.delay.ms; it then completes on the
	// deadline only, not as soon as everyone has joined.
	initialDelay bool
	// initialDelayEnd is the latest the initial delay may be pushed to: the
	// rebalance timeout from its start.
	initialDelayEnd time.Time
	// pendingSync holds the members that have not sent SyncGroup since the
	// last join phase ended, and syncDeadline is when they are removed
	// (Kafka's pending-sync expiration): without it, a leader that
	// heartbeats but never syncs would stall the group forever.
	pendingSync  map[string]bool
	syncDeadline time.Time
}

// NewGroup returns an Empty group at generation 0.
func NewGroup(id string, cfg Config) *Group {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Group{
		id:          id,
		cfg:         cfg,
		members:     make(map[string]*member),
		byInstance:  make(map[string]string),
		pending:     make(map[string]time.Time),
		pendingSync: make(map[string]bool),
	}
}

// ID returns the group id (group.id).
func (g *Group) ID() string { return g.id }

// State returns the group's current state.
func (g *Group) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// Generation returns the current generation id.
func (g *Group) Generation() int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generation
}

// MemberDescription is one member as DescribeGroups shows it.
type MemberDescription struct {
	MemberID   string
	InstanceID string // "" for a dynamic member
	ClientID   string
	ClientHost string
	// Metadata is the member's metadata for the chosen protocol.
	Metadata   []byte
	Assignment []byte
}

// Description is a group as DescribeGroups shows it.
type Description struct {
	GroupID      string
	State        State
	ProtocolType string
	Protocol     string
	Members      []MemberDescription // sorted by member id
}

// Describe returns the group for DescribeGroups. As in Kafka, the protocol
// and the members' metadata and assignments are shown only when Stable:
// while rebalancing, they belong to a generation that is being replaced.
func (g *Group) Describe() Description {
	g.mu.Lock()
	defer g.mu.Unlock()
	d := Description{GroupID: g.id, State: g.state, ProtocolType: g.protocolType}
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == Stable {
			md.Metadata = m.metadataFor(g.protocol)
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// sortedMembers returns the members by member id, so answers are stable.
func (g *Group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
	return ms
}
