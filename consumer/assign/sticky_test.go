package assign

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// owning is m owning owned from generation gen.
func owning(m Member, gen int32, owned map[string][]int32) Member {
	m.Owned = owned
	m.Generation = gen
	return m
}

// nextRound is the group after members got plan: each now owns what it
// was given, one generation later, as its next subscription will say.
func nextRound(members []Member, plan Plan) []Member {
	next := make([]Member, len(members))
	for i, m := range members {
		next[i] = owning(m, m.Generation+1, plan[m.ID])
	}
	return next
}

// complete reports whether plan gives every partition of a subscribed
// topic to someone: whether no revocation is pending.
func complete(members []Member, partitions map[string]int32, plan Plan) bool {
	given := 0
	for _, topics := range plan {
		for _, ps := range topics {
			given += len(ps)
		}
	}
	want := 0
	for _, t := range subscribedTopics(members, partitions) {
		want += int(partitions[t])
	}
	return given == want
}

func TestCooperativeSticky(t *testing.T) {
	tests := []struct {
		name       string
		members    []Member
		partitions map[string]int32
		want       Plan // the first rebalance
		then       Plan // the next, if the first held partitions back
	}{{
		// The examples of Java's StickyAssignor javadoc (its
		// AbstractStickyAssignor is the cooperative one's too): four
		// topics of two partitions among three members, as round robin.
		name: "java example 1",
		members: []Member{
			mem("C0", "t0", "t1", "t2", "t3"),
			mem("C1", "t0", "t1", "t2", "t3"),
			mem("C2", "t0", "t1", "t2", "t3"),
		},
		partitions: map[string]int32{"t0": 2, "t1": 2, "t2": 2, "t3": 2},
		want: Plan{
			"C0": tps("t0", 0, "t1", 1, "t3", 0),
			"C1": tps("t0", 1, "t2", 0, "t3", 1),
			"C2": tps("t1", 0, "t2", 1),
		},
	}, {
		// Then C1 leaves: C0 and C2 keep all they had, unlike round
		// robin, and share C1's.
		name: "java example 1, C1 removed",
		members: []Member{
			owning(mem("C0", "t0", "t1", "t2", "t3"), 1, tps("t0", 0, "t1", 1, "t3", 0)),
			owning(mem("C2", "t0", "t1", "t2", "t3"), 1, tps("t1", 0, "t2", 1)),
		},
		partitions: map[string]int32{"t0": 2, "t1": 2, "t2": 2, "t3": 2},
		want: Plan{
			"C0": tps("t0", 0, "t1", 1, "t2", 0, "t3", 0),
			"C2": tps("t0", 1, "t1", 0, "t2", 1, "t3", 1),
		},
	}, {
		// Unequal subscriptions: balanced where round robin gives C2 four.
		name:       "java example 2",
		members:    []Member{mem("C0", "t0"), mem("C1", "t0", "t1"), mem("C2", "t0", "t1", "t2")},
		partitions: map[string]int32{"t0": 1, "t1": 2, "t2": 3},
		want: Plan{
			"C0": tps("t0", 0),
			"C1": tps("t1", 0, 1),
			"C2": tps("t2", 0, 1, 2),
		},
	}, {
		// Then C0 leaves: all five others stay (round robin keeps three).
		name: "java example 2, C0 removed",
		members: []Member{
			owning(mem("C1", "t0", "t1"), 1, tps("t1", 0, 1)),
			owning(mem("C2", "t0", "t1", "t2"), 1, tps("t2", 0, 1, 2)),
		},
		partitions: map[string]int32{"t0": 1, "t1": 2, "t2": 3},
		want: Plan{
			"C1": tps("t0", 0, "t1", 0, 1),
			"C2": tps("t2", 0, 1, 2),
		},
	}, {
		name:       "fresh group: balanced",
		members:    []Member{mem("a", "t0", "t1"), mem("b", "t0", "t1"), mem("c", "t0", "t1")},
		partitions: map[string]int32{"t0": 3, "t1": 3},
		want: Plan{
			"a": tps("t0", 0, "t1", 0),
			"b": tps("t0", 1, "t1", 1),
			"c": tps("t0", 2, "t1", 2),
		},
	}, {
		name: "sticky: balanced owners keep exactly what they own",
		members: []Member{
			owning(mem("a", "t"), 4, tps("t", 5, 1)),
			owning(mem("b", "t"), 4, tps("t", 0, 3)),
			owning(mem("c", "t"), 4, tps("t", 2, 4)),
		},
		partitions: map[string]int32{"t": 6},
		want:       Plan{"a": tps("t", 1, 5), "b": tps("t", 0, 3), "c": tps("t", 2, 4)},
	}, {
		// c left the group: its partitions are nobody's, and go at once,
		// with a and b keeping all of theirs.
		name: "a member leaves",
		members: []Member{
			owning(mem("a", "t"), 4, tps("t", 0, 1, 2)),
			owning(mem("b", "t"), 4, tps("t", 3, 4, 5)),
		},
		partitions: map[string]int32{"t": 9},
		want:       Plan{"a": tps("t", 0, 1, 2, 6, 8), "b": tps("t", 3, 4, 5, 7)},
	}, {
		// c joins: a and b each give up one partition, but first only
		// revoke it (nobody gets t-0 or t-3); c gets them next time.
		name: "a member joins: two-phase move",
		members: []Member{
			owning(mem("a", "t"), 4, tps("t", 0, 1, 2)),
			owning(mem("b", "t"), 4, tps("t", 3, 4, 5)),
			mem("c", "t"),
		},
		partitions: map[string]int32{"t": 6},
		want:       Plan{"a": tps("t", 1, 2), "b": tps("t", 4, 5), "c": tps()},
		then:       Plan{"a": tps("t", 1, 2), "b": tps("t", 4, 5), "c": tps("t", 0, 3)},
	}, {
		name: "one owner of everything: moves in two phases to balance",
		members: []Member{
			owning(mem("a", "t"), 1, tps("t", 0, 1, 2, 3, 4, 5)),
			mem("b", "t"),
			mem("c", "t"),
		},
		partitions: map[string]int32{"t": 6},
		want:       Plan{"a": tps("t", 4, 5), "b": tps(), "c": tps()},
		then:       Plan{"a": tps("t", 4, 5), "b": tps("t", 0, 2), "c": tps("t", 1, 3)},
	}, {
		// t1's partitions can only go to b, so they are placed first;
		// a, subscribed to t0 only, then gets all of t0. (Taken in topic
		// order instead, t0 would be split and b would end with five.)
		name:       "uneven subscriptions: fewest candidates first",
		members:    []Member{mem("a", "t0"), mem("b", "t0", "t1")},
		partitions: map[string]int32{"t0": 2, "t1": 4},
		want:       Plan{"a": tps("t0", 0, 1), "b": tps("t1", 0, 1, 2, 3)},
	}, {
		// a no longer subscribes to t1, but owns t1-0 until it revokes
		// it: b, the only one subscribed, gets it only after.
		name: "unsubscribed topic: revoked before it moves",
		members: []Member{
			owning(mem("a", "t0"), 2, tps("t0", 0, "t1", 0)),
			owning(mem("b", "t0", "t1"), 2, tps("t0", 1)),
		},
		partitions: map[string]int32{"t0": 2, "t1": 1},
		want:       Plan{"a": tps("t0", 0), "b": tps("t0", 1)},
		then:       Plan{"a": tps("t0", 0), "b": tps("t0", 1, "t1", 0)},
	}, {
		// b claims t-0 from generation 3, a from 5: b is a zombie that
		// missed a rebalance; a keeps it, b is not given it.
		name: "two claims: the newer generation wins",
		members: []Member{
			owning(mem("a", "t"), 5, tps("t", 0)),
			owning(mem("b", "t"), 3, tps("t", 0, 1)),
		},
		partitions: map[string]int32{"t": 2},
		want:       Plan{"a": tps("t", 0), "b": tps("t", 1)},
	}, {
		name: "owned partitions of a deleted topic or past the count are dropped",
		members: []Member{
			owning(mem("a", "t"), 2, tps("t", 0, 7, "gone", 0)),
			owning(mem("b", "t"), 2, tps("t", 1)),
		},
		partitions: map[string]int32{"t": 2},
		want:       Plan{"a": tps("t", 0), "b": tps("t", 1)},
	}, {
		name:       "more members than partitions",
		members:    []Member{mem("a", "t"), mem("b", "t"), mem("c", "t")},
		partitions: map[string]int32{"t": 2},
		want:       Plan{"a": tps("t", 0), "b": tps("t", 1), "c": tps()},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CooperativeSticky{}.Assign(tt.members, tt.partitions)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("first rebalance (-want +got):\n%s", diff)
			}
			then := tt.then
			if then == nil {
				then = tt.want // nothing held back: the next is the same
			}
			got = CooperativeSticky{}.Assign(nextRound(tt.members, got), tt.partitions)
			if diff := cmp.Diff(then, got); diff != "" {
				t.Fatalf("next rebalance (-want +got):\n%s", diff)
			}
			if !complete(tt.members, tt.partitions, got) {
				t.Error("partitions still unassigned after the second rebalance")
			}
		})
	}
}
