package assign

import (
	"slices"
	"sort"
)

// Member is one consumer of the group as the leader sees it in the
// JoinGroup response: its ids and what it said in its subscription.
type Member struct {
	// ID is the member id the coordinator gave it.
	ID string
	// InstanceID is its group.instance.id, "" for a dynamic member. A
	// static member keeps its instance id across restarts while its
	// member id changes, so assignors order static members by it: the
	// same process gets the same partitions back.
	InstanceID string
	// Topics are the topics it subscribes to.
	Topics []string
	// Owned are the partitions it owns now, topic to partitions (v1+ of
	// the subscription). Only the cooperative-sticky assignor reads it.
	Owned map[string][]int32
	// Generation is the generation in which it was given Owned, -1 when
	// unknown (v2+ of the subscription). When two members claim the same
	// partition, the newer generation wins: the other is a zombie that
	// missed a rebalance.
	Generation int32
}

// Plan is an assignor's answer: member id to topic to partitions. Every
// member has an entry, empty when it gets nothing; partitions are sorted.
type Plan map[string]map[string][]int32

// Assignor decides which member consumes which partition, as Kafka's
// ConsumerPartitionAssignor does. The group leader runs it in the classic
// group protocol; the coordinator only relays the answer.
type Assignor interface {
	// Name is the protocol name the member puts in JoinGroup, spelled as
	// Kafka's: all members must share one for the group to use it.
	Name() string
	// Assign assigns the partitions of partitions (topic to partition
	// count) to members. Topics nobody subscribes to, and subscribed
	// topics missing from partitions (not created yet), are left out.
	Assign(members []Member, partitions map[string]int32) Plan
}

// UserDataAssignor is an Assignor that also gives each member bytes of
// its own, the user data of its ConsumerProtocol assignment, as Kafka
// Streams' assignor tells each member which tasks it runs. The leader
// calls AssignUserData instead of Assign when its assignor has it.
type UserDataAssignor interface {
	Assignor
	// AssignUserData is Assign, with each member's user data by member
	// id (none for a member left out).
	AssignUserData(members []Member, partitions map[string]int32) (Plan, map[string][]byte)
}

// sortMembers orders members as Kafka's AbstractPartitionAssignor.MemberInfo
// does: static members first, by group.instance.id, then dynamic members by
// member id. Ordering by instance id is what makes a restarted static
// member (new member id, same instance id) land in the same place.
func sortMembers(members []Member) []Member {
	s := slices.Clone(members)
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		switch {
		case a.InstanceID != "" && b.InstanceID != "":
			return a.InstanceID < b.InstanceID
		case a.InstanceID != "":
			return true
		case b.InstanceID != "":
			return false
		default:
			return a.ID < b.ID
		}
	})
	return s
}

// newPlan returns a plan with an empty entry for every member.
func newPlan(members []Member) Plan {
	p := make(Plan, len(members))
	for _, m := range members {
		p[m.ID] = map[string][]int32{}
	}
	return p
}

// add gives member id partition p of topic.
func (p Plan) add(id, topic string, partition int32) {
	p[id][topic] = append(p[id][topic], partition)
}

// sortPartitions sorts every member's partitions, so that a plan reads
// the same whatever order an assignor built it in.
func (p Plan) sortPartitions() {
	for _, topics := range p {
		for _, parts := range topics {
			slices.Sort(parts)
		}
	}
}

// subscribes reports whether m subscribes to topic.
func (m Member) subscribes(topic string) bool {
	return slices.Contains(m.Topics, topic)
}

// subscribedTopics is the sorted set of topics some member subscribes to
// and that exist in partitions.
func subscribedTopics(members []Member, partitions map[string]int32) []string {
	seen := map[string]bool{}
	var topics []string
	for _, m := range members {
		for _, t := range m.Topics {
			if _, ok := partitions[t]; ok && !seen[t] {
				seen[t] = true
				topics = append(topics, t)
			}
		}
	}
	slices.Sort(topics)
	return topics
}

// The assignors, checked to be Assignors.
var (
	_ Assignor = Range{}
	_ Assignor = RoundRobin{}
	_ Assignor = CooperativeSticky{}
)

// ByName returns the assignor Kafka calls name, as a JoinGroup response
// names the protocol the coordinator chose: "range", "roundrobin" or
// "cooperative-sticky".
func ByName(name string) (Assignor, bool) {
	for _, a := range []Assignor{Range{}, RoundRobin{}, CooperativeSticky{}} {
		if a.Name() == name {
			return a, true
		}
	}
	return nil, false
}
