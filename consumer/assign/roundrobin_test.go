package assign

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name       string
		members    []Member
		partitions map[string]int32
		want       Plan
	}{{
		// The first example of RoundRobinAssignor's javadoc.
		name:       "java example",
		members:    []Member{mem("C1", "t0", "t1"), mem("C0", "t0", "t1")},
		partitions: map[string]int32{"t0": 3, "t1": 3},
		want: Plan{
			"C0": tps("t0", 0, 2, "t1", 1),
			"C1": tps("t0", 1, "t1", 0, 2),
		},
	}, {
		// The javadoc's second example: unequal subscriptions, and how
		// uneven round robin then is.
		name: "java example, uneven subscriptions",
		members: []Member{
			mem("C0", "t0"),
			mem("C1", "t0", "t1"),
			mem("C2", "t0", "t1", "t2"),
		},
		partitions: map[string]int32{"t0": 1, "t1": 2, "t2": 3},
		want: Plan{
			"C0": tps("t0", 0),
			"C1": tps("t1", 0),
			"C2": tps("t1", 1, "t2", 0, 1, 2),
		},
	}, {
		name:       "more members than partitions",
		members:    []Member{mem("a", "t"), mem("b", "t"), mem("c", "t")},
		partitions: map[string]int32{"t": 2},
		want:       Plan{"a": tps("t", 0), "b": tps("t", 1), "c": tps()},
	}, {
		name: "static members ordered by group.instance.id",
		members: []Member{
			mem("m-0", "t"),
			static("m-b", "i-1", "t"),
			static("m-a", "i-2", "t"),
		},
		partitions: map[string]int32{"t": 4},
		want:       Plan{"m-b": tps("t", 0, 3), "m-a": tps("t", 1), "m-0": tps("t", 2)},
	}, {
		name:       "the turn carries on across topics",
		members:    []Member{mem("a", "x", "y"), mem("b", "x", "y"), mem("c", "x", "y")},
		partitions: map[string]int32{"x": 2, "y": 2},
		want:       Plan{"a": tps("x", 0, "y", 1), "b": tps("x", 1), "c": tps("y", 0)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RoundRobin{}.Assign(tt.members, tt.partitions)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
