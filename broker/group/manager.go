package group

import (
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
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

// Delete forgets a group for DeleteGroups: only an Empty group may go
// (NON_EMPTY_GROUP otherwise: its members would rejoin a group with no
// offsets and start over). A group this broker has no state for is not
// an error here; the caller decides from its committed offsets whether
// the group exists at all (GROUP_ID_NOT_FOUND).
func (mg *Manager) Delete(id string) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	g, ok := mg.groups[id]
	if !ok {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != Empty {
		return kerr.NonEmptyGroup
	}
	g.state = Dead // a request still holding it is told to look again
	delete(mg.groups, id)
	return nil
}
