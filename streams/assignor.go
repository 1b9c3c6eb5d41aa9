package streams

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"klab.dev/klab/consumer/assign"
)

// streamsAssignor assigns tasks, not partitions, to the members of an
// application's group (every thread of every instance), as Kafka Streams'
// StreamsPartitionAssignor does: a member gets every source partition of
// each of its tasks, so the co-partitioned partitions a join reads
// together never go to two members.
//
// Tasks are dealt round robin to the members in a stable order (static
// members by group.instance.id, then by member id), so each member gets
// as many as the next, give or take one. Kafka's assignor does more: it is
// sticky (a task stays where its state is, so rebalances restore little),
// it balances per instance before per thread, and it places standby
// replicas of stores on other instances, to fail over without a restore.
type streamsAssignor struct {
	topo  *Topology
	appID string
	// fail is told when the tasks cannot be computed (inputs that must be
	// co-partitioned are not): the leader's application stops with it.
	fail func(error)
}

// Name is the protocol name Kafka Streams' assignor goes by.
func (a *streamsAssignor) Name() string { return "stream" }

// Assign is AssignUserData without the user data.
func (a *streamsAssignor) Assign(members []assign.Member, partitions map[string]int32) assign.Plan {
	plan, _ := a.AssignUserData(members, partitions)
	return plan
}

// AssignUserData deals the topology's tasks to the members, and tells
// each member its tasks in its assignment's user data (AssignmentInfo).
func (a *streamsAssignor) AssignUserData(members []assign.Member, partitions map[string]int32) (assign.Plan, map[string][]byte) {
	plan := assign.Plan{}
	tasks := map[string][]AssignedTask{}
	for _, m := range members {
		plan[m.ID] = map[string][]int32{}
	}
	ids, err := a.topo.Tasks(a.appID, partitions)
	if err != nil {
		a.fail(err)
		ids = nil // everyone gets nothing; the leader's application stops
	}
	order := sortedMembers(members)
	if len(order) == 0 {
		return plan, nil
	}
	subs := a.topo.subtopologies()
	for i, id := range ids {
		m := order[i%len(order)]
		task := AssignedTask{ID: id}
		for _, topic := range subs[id.Subtopology].topics {
			topic = a.topo.resolve(a.appID, topic)
			if n, ok := partitions[topic]; ok && id.Partition < n {
				plan[m.ID][topic] = append(plan[m.ID][topic], id.Partition)
				task.Topics = append(task.Topics, topic)
			}
		}
		tasks[m.ID] = append(tasks[m.ID], task)
	}
	userData := map[string][]byte{}
	for _, m := range members {
		userData[m.ID] = AssignmentInfo{Version: 1, Tasks: tasks[m.ID]}.encode()
	}
	return plan, userData
}

// sortedMembers orders members as package assign's assignors do: static
// members first, by group.instance.id, then the others by member id.
func sortedMembers(members []assign.Member) []assign.Member {
	s := slices.Clone(members)
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if (a.InstanceID != "") != (b.InstanceID != "") {
			return a.InstanceID != ""
		}
		if a.InstanceID != b.InstanceID {
			return a.InstanceID < b.InstanceID
		}
		return a.ID < b.ID
	})
	return s
}

// AssignmentInfo is what the streams assignor puts in a member's
// assignment user data: the tasks it runs. DescribeGroups returns it, so
// `klab streams describe` shows each member's tasks. It is JSON, not the
// binary AssignmentInfo of Kafka Streams: readable, and only klab reads
// it.
type AssignmentInfo struct {
	Version int            `json:"version"`
	Tasks   []AssignedTask `json:"tasks"`
}

// AssignedTask is a task in an AssignmentInfo, with the input topics it
// reads partition ID.Partition of.
type AssignedTask struct {
	ID     TaskID   `json:"id"`
	Topics []string `json:"topics"`
}

func (a AssignmentInfo) encode() []byte {
	b, _ := json.Marshal(a) // cannot fail: ints and strings
	return b
}

// DecodeAssignmentInfo reads the user data of a streams member's
// assignment.
func DecodeAssignmentInfo(userData []byte) (AssignmentInfo, error) {
	var a AssignmentInfo
	if err := json.Unmarshal(userData, &a); err != nil {
		return a, errorf("assignment user data: %w", err)
	}
	return a, nil
}

// MarshalText writes a task id as Kafka does, "0_1".
func (id TaskID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads a task id written "0_1".
func (id *TaskID) UnmarshalText(b []byte) error {
	parsed, err := ParseTaskID(string(b))
	*id = parsed
	return err
}

// ParseTaskID reads a task id written as Kafka writes it, "0_1": the
// sub-topology, an underscore, the partition.
func ParseTaskID(s string) (TaskID, error) {
	sub, part, ok := strings.Cut(s, "_")
	n, err1 := strconv.Atoi(sub)
	p, err2 := strconv.ParseInt(part, 10, 32)
	if !ok || err1 != nil || err2 != nil || n < 0 || p < 0 {
		return TaskID{}, fmt.Errorf("streams: task id %q: want sub-topology_partition, as 0_1", s)
	}
	return TaskID{Subtopology: n, Partition: int32(p)}, nil
}
