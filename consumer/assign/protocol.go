package assign

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProtocolType is the protocol type of consumer groups in JoinGroup: the
// coordinator only checks that all members agree on it, the bytes of each
// protocol are the clients' business (ConsumerProtocol in Kafka).
const ProtocolType = "consumer"

// SubscriptionVersion is the version of the subscription this package
// writes, the Java client's latest: v1 added the owned partitions
// (KIP-429), v2 the generation they were owned in (KIP-792), v3 the
// member's rack (KIP-881).
const SubscriptionVersion int16 = 3

// AssignmentVersion is the version of the assignment this package
// writes. The assignment's fields are the same in every version (0 to 3:
// its version was bumped along with the subscription's); the Java client
// writes its highest, and so do we.
const AssignmentVersion int16 = 3

// Subscription is what a member puts in its JoinGroup metadata.
type Subscription struct {
	// Topics are the topics it subscribes to.
	Topics []string
	// UserData is for the assignor; the built-in ones here send none.
	UserData []byte
	// Owned are the partitions it owns, topic to partitions (v1+).
	Owned map[string][]int32
	// Generation is the generation it got Owned in, -1 if unknown (v2+).
	Generation int32
	// Rack is its client.rack, "" if unset (v3+).
	Rack string
}

// EncodeSubscription writes s in the ConsumerProtocol subscription format
// at version (0 to 3); fields newer than version are dropped.
func EncodeSubscription(s Subscription, version int16) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = version
	m.Topics = s.Topics
	m.UserData = s.UserData
	// Sorted, so that the same subscription always makes the same bytes
	// (a map's order is random): the coordinator compares a rejoining
	// member's metadata with what it had to tell whether anything changed.
	for _, t := range slices.Sorted(maps.Keys(s.Owned)) {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = t
		op.Partitions = slices.Sorted(slices.Values(s.Owned[t]))
		m.OwnedPartitions = append(m.OwnedPartitions, op)
	}
	m.Generation = s.Generation
	if s.Rack != "" {
		m.Rack = &s.Rack
	}
	return m.AppendTo(nil)
}

// DecodeSubscription reads a ConsumerProtocol subscription of any version.
// A version newer than 3 is read as 3 and its extra fields ignored, as the
// Java client does, so that a newer member does not break an older leader.
func DecodeSubscription(b []byte) (Subscription, error) {
	var m kmsg.ConsumerMemberMetadata
	if err := m.ReadFrom(b); err != nil {
		return Subscription{}, fmt.Errorf("consumer subscription: %w", err)
	}
	if m.Version < 0 {
		return Subscription{}, fmt.Errorf("consumer subscription: version %d", m.Version)
	}
	s := Subscription{Topics: m.Topics, UserData: m.UserData, Generation: m.Generation}
	if m.Version < 2 {
		s.Generation = -1 // kmsg's default, made explicit: v0/v1 have none
	}
	for _, op := range m.OwnedPartitions {
		if s.Owned == nil {
			s.Owned = map[string][]int32{}
		}
		s.Owned[op.Topic] = append(s.Owned[op.Topic], op.Partitions...)
	}
	if m.Rack != nil {
		s.Rack = *m.Rack
	}
	return s, nil
}

// Member is the member id and instance id's member with this subscription,
// ready for an Assignor.
func (s Subscription) Member(id, instanceID string) Member {
	return Member{ID: id, InstanceID: instanceID, Topics: s.Topics, Owned: s.Owned, Generation: s.Generation}
}

// EncodeAssignment writes one member's share of a Plan, topic to
// partitions, in the ConsumerProtocol assignment format, with topics
// sorted. The leader sends it in SyncGroup.
func EncodeAssignment(a map[string][]int32, userData []byte) []byte {
	m := kmsg.NewConsumerMemberAssignment()
	m.Version = AssignmentVersion
	for _, t := range slices.Sorted(maps.Keys(a)) {
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic = t
		at.Partitions = a[t]
		m.Topics = append(m.Topics, at)
	}
	m.UserData = userData
	return m.AppendTo(nil)
}

// DecodeAssignment reads a ConsumerProtocol assignment, as a member finds
// it in its SyncGroup response. An empty one (no bytes at all) is an empty
// assignment: the coordinator sends that to a member the leader left out.
func DecodeAssignment(b []byte) (map[string][]int32, []byte, error) {
	a := map[string][]int32{}
	if len(b) == 0 {
		return a, nil, nil
	}
	var m kmsg.ConsumerMemberAssignment
	if err := m.ReadFrom(b); err != nil {
		return nil, nil, fmt.Errorf("consumer assignment: %w", err)
	}
	if m.Version < 0 {
		return nil, nil, fmt.Errorf("consumer assignment: version %d", m.Version)
	}
	for _, t := range m.Topics {
		a[t.Topic] = append(a[t.Topic], t.Partitions...)
	}
	return a, m.UserData, nil
}
