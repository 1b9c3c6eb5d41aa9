package groups_test

// The range assignor, as Kafka's RangeAssignor: what the group leader
// computes from the members' subscriptions.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"klab.dev/klab/consumer/assign"
)

// assignRange runs Range.Assign, failing the test with the stub's message
// if it panics (Assign returns no error, so the stub panics).
func assignRange(t *testing.T, members []assign.Member, partitions map[string]int32) (plan assign.Plan) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Range.Assign panicked: %v", r)
		}
	}()
	return assign.Range{}.Assign(members, partitions)
}

func members(topics []string, ids ...string) []assign.Member {
	var ms []assign.Member
	for _, id := range ids {
		ms = append(ms, assign.Member{ID: id, Topics: topics})
	}
	return ms
}

// Seven partitions over three members: 7/3 = 2 each, and the first 7%3 = 1
// member, in member id order, gets one more: consecutive ranges.
func TestRangeGivesConsecutiveRangesTheFirstMembersOneMore(t *testing.T) {
	plan := assignRange(t, members([]string{"t"}, "c", "a", "b"), map[string]int32{"t": 7})
	assert.Equal(t, assign.Plan{
		"a": {"t": {0, 1, 2}},
		"b": {"t": {3, 4}},
		"c": {"t": {5, 6}},
	}, plan)
}

// Range works topic by topic: with two topics of three partitions and two
// members, the first member gets two of each, so partition i of both
// topics lands on the same member (co-partitioning, which joins need) and
// the imbalance adds up: 4 against 2.
func TestRangeSplitsEachTopicTheSameWay(t *testing.T) {
	plan := assignRange(t, members([]string{"orders", "payments"}, "m1", "m2"), map[string]int32{"orders": 3, "payments": 3})
	assert.Equal(t, assign.Plan{
		"m1": {"orders": {0, 1}, "payments": {0, 1}},
		"m2": {"orders": {2}, "payments": {2}},
	}, plan)
}

// A topic's partitions go only to the members subscribed to it; a member
// with nothing to do still has an entry, empty; more members than
// partitions leaves the last ones idle.
func TestRangeAssignsOnlySubscribersAndLeavesExtraMembersIdle(t *testing.T) {
	ms := []assign.Member{
		{ID: "a", Topics: []string{"t", "u"}},
		{ID: "b", Topics: []string{"t"}},
		{ID: "c", Topics: []string{"t"}},
		{ID: "d", Topics: []string{"t"}},
	}
	plan := assignRange(t, ms, map[string]int32{"t": 2, "u": 2, "nobody": 5})
	assert.Equal(t, []int32{0}, plan["a"]["t"])
	assert.Equal(t, []int32{0, 1}, plan["a"]["u"], "only a subscribes to u")
	assert.Equal(t, []int32{1}, plan["b"]["t"])
	assert.Empty(t, plan["c"]["t"], "more members than partitions: c is idle")
	assert.Empty(t, plan["d"]["t"])
	assert.Contains(t, plan, "d", "an idle member still gets an (empty) assignment")
	for id, topics := range plan {
		assert.NotContains(t, topics, "nobody", "%s got a topic nobody subscribes to", id)
	}
}

// Static members (group.instance.id) are ordered by instance id, not by
// their member id, which changes at every restart: a restarted member gets
// the same partitions back.
func TestRangeOrdersStaticMembersByInstanceID(t *testing.T) {
	ms := []assign.Member{
		{ID: "zzz-after-restart", InstanceID: "worker-1", Topics: []string{"t"}},
		{ID: "aaa", InstanceID: "worker-2", Topics: []string{"t"}},
	}
	plan := assignRange(t, ms, map[string]int32{"t": 4})
	assert.Equal(t, []int32{0, 1}, plan["zzz-after-restart"]["t"], "worker-1 sorts first")
	assert.Equal(t, []int32{2, 3}, plan["aaa"]["t"])
}

// For many shapes, every partition of every subscribed topic is assigned
// exactly once, to a subscriber, and the counts of any two subscribers of
// a topic differ by at most one.
func TestRangeAssignsEveryPartitionOnceAndEvenly(t *testing.T) {
	for nMembers := 1; nMembers <= 5; nMembers++ {
		for nParts := int32(1); nParts <= 11; nParts++ {
			var ids []string
			for i := range nMembers {
				ids = append(ids, fmt.Sprintf("member-%d", i))
			}
			plan := assignRange(t, members([]string{"t"}, ids...), map[string]int32{"t": nParts})
			owner := map[int32]string{}
			lo, hi := int(nParts), 0
			for id, topics := range plan {
				n := len(topics["t"])
				lo, hi = min(lo, n), max(hi, n)
				for _, p := range topics["t"] {
					assert.Empty(t, owner[p], "%d members, %d partitions: partition %d twice", nMembers, nParts, p)
					owner[p] = id
				}
			}
			assert.Len(t, owner, int(nParts), "%d members, %d partitions: every partition assigned", nMembers, nParts)
			assert.LessOrEqual(t, hi-lo, 1, "%d members, %d partitions: balanced", nMembers, nParts)
		}
	}
}
