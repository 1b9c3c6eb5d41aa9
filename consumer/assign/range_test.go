package assign

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRange(t *testing.T) {
	tests := []struct {
		name       string
		members    []Member
		partitions map[string]int32
		want       Plan
	}{{
		// The example of RangeAssignor's javadoc.
		name:       "java example",
		members:    []Member{mem("C1", "t0", "t1"), mem("C0", "t0", "t1")},
		partitions: map[string]int32{"t0": 3, "t1": 3},
		want: Plan{
			"C0": tps("t0", 0, 1, "t1", 0, 1),
			"C1": tps("t0", 2, "t1", 2),
		},
	}, {
		name:       "first n%m members get one more",
		members:    []Member{mem("a", "t"), mem("b", "t"), mem("c", "t")},
		partitions: map[string]int32{"t": 7},
		want: Plan{
			"a": tps("t", 0, 1, 2),
			"b": tps("t", 3, 4),
			"c": tps("t", 5, 6),
		},
	}, {
		name:       "uneven subscriptions: each topic among its own subscribers",
		members:    []Member{mem("C0", "t0"), mem("C1", "t0", "t1"), mem("C2", "t1")},
		partitions: map[string]int32{"t0": 3, "t1": 2},
		want: Plan{
			"C0": tps("t0", 0, 1),
			"C1": tps("t0", 2, "t1", 0),
			"C2": tps("t1", 1),
		},
	}, {
		name:       "more members than partitions",
		members:    []Member{mem("a", "t"), mem("b", "t"), mem("c", "t")},
		partitions: map[string]int32{"t": 2},
		want:       Plan{"a": tps("t", 0), "b": tps("t", 1), "c": tps()},
	}, {
		// Static members come first, by instance id, whatever their
		// member ids; then dynamic ones by member id.
		name: "static members ordered by group.instance.id",
		members: []Member{
			mem("m-0", "t"),
			static("m-b", "i-1", "t"),
			static("m-a", "i-2", "t"),
		},
		partitions: map[string]int32{"t": 3},
		want:       Plan{"m-b": tps("t", 0), "m-a": tps("t", 1), "m-0": tps("t", 2)},
	}, {
		name:       "a topic not created yet is left out",
		members:    []Member{mem("a", "t", "missing")},
		partitions: map[string]int32{"t": 1, "other": 4},
		want:       Plan{"a": tps("t", 0)},
	}, {
		name:       "co-partitioned topics line up",
		members:    []Member{mem("a", "x", "y"), mem("b", "x", "y")},
		partitions: map[string]int32{"x": 5, "y": 5},
		want: Plan{
			"a": tps("x", 0, 1, 2, "y", 0, 1, 2),
			"b": tps("x", 3, 4, "y", 3, 4),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Range{}.Assign(tt.members, tt.partitions)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestByName(t *testing.T) {
	for _, name := range []string{"range", "roundrobin", "cooperative-sticky"} {
		a, ok := ByName(name)
		if !ok || a.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, a, ok)
		}
	}
	if _, ok := ByName("sticky"); ok {
		t.Error(`ByName("sticky") found an assignor`)
	}
}
