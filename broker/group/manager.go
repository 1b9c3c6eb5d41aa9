package group

import (
	"sort"
	"sync"
)

// Manager holds the groups this broker coordinates.
//
// Lock order: Manager.mu, then a Group's mu. Manager.Tick and List copy the
// group list under Manager.mu and release it before locking any group, so
// a slow group never holds up the lookup of another.
type Manager struct {
	cfg Config

	mu     sync.Mutex
	groups map[string]*Group
}

// NewManager returns a Manager with no groups.
func NewManager(cfg Config) *Manager {
	return &Manager{cfg: cfg, groups: make(map[string]*Group)}
}

// Group returns the group with this id, creating it Empty if there is none
// (JoinGroup creates groups; there is no CreateGroup).
func (mg *Manager) Group(id string) *Group {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	g, ok := mg.groups[id]
	if !ok {
		g = NewGroup(id, mg.cfg)
		mg.groups[id] = g
	}
	return g
}

// Lookup returns the group with this id, if there is one: SyncGroup,
// Heartbeat, LeaveGroup and DescribeGroups do not create groups.
func (mg *Manager) Lookup(id string) (*Group, bool) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	g, ok := mg.groups[id]
	return g, ok
}

// Unload marks the group Dead and forgets it, when this broker stops being
// its coordinator (it lost leadership of the group's __consumer_offsets
// partition). Requests still holding the *Group get COORDINATOR_NOT_AVAILABLE
// or NOT_COORDINATOR; later ones find no group here.
func (mg *Manager) Unload(id string) {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if g, ok := mg.groups[id]; ok {
		g.Unload() // Manager.mu, then Group.mu: the documented order
		delete(mg.groups, id)
	}
}

// Listing is one group as ListGroups shows it.
type Listing struct {
	GroupID      string
	ProtocolType string
	State        State
}

// List returns every group, sorted by id, for ListGroups.
func (mg *Manager) List() []Listing {
	var out []Listing
	for _, g := range mg.all() {
		g.mu.Lock()
		out = append(out, Listing{GroupID: g.id, ProtocolType: g.protocolType, State: g.state})
		g.mu.Unlock()
	}
	return out
}

// Tick applies every group's passed deadlines (see Group.Tick). The
// coordinator calls it periodically.
func (mg *Manager) Tick() {
	for _, g := range mg.all() {
		g.Tick()
	}
}

// all returns the groups sorted by id.
func (mg *Manager) all() []*Group {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	gs := make([]*Group, 0, len(mg.groups))
	for _, g := range mg.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].id < gs[j].id })
	return gs
}
