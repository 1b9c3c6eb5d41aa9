package assign

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// randomGroup is a random group: up to six members, some static, each
// subscribed to a random set of up to four topics (sometimes one not
// created yet), the topics with up to eight partitions. With equal set,
// every member subscribes to every topic.
func randomGroup(r *rand.Rand, equal bool) ([]Member, map[string]int32) {
	partitions := map[string]int32{}
	var topics []string
	for i := range 1 + r.IntN(4) {
		t := fmt.Sprintf("t%d", i)
		partitions[t] = int32(r.IntN(9))
		topics = append(topics, t)
	}
	members := make([]Member, 1+r.IntN(6))
	for i := range members {
		m := mem(fmt.Sprintf("m%d", r.IntN(1000)*10+i)) // unique, random order
		if r.IntN(3) == 0 {
			m.InstanceID = fmt.Sprintf("i%d", r.IntN(1000)*10+i)
		}
		for _, t := range topics {
			if equal || r.IntN(2) == 0 {
				m.Topics = append(m.Topics, t)
			}
		}
		if !equal && r.IntN(5) == 0 {
			m.Topics = append(m.Topics, "not-yet")
		}
		members[i] = m
	}
	return members, partitions
}

// randomOwned gives members random claims, as a group in the middle of
// things might: overlapping, from different generations, some on topics
// they left or past a topic's partition count.
func randomOwned(r *rand.Rand, members []Member, partitions map[string]int32) {
	for i := range members {
		members[i].Generation = int32(r.IntN(3))
		members[i].Owned = map[string][]int32{}
		for t, n := range partitions {
			for p := range n + 1 {
				if r.IntN(3) == 0 {
					members[i].Owned[t] = append(members[i].Owned[t], p)
				}
			}
		}
	}
}

// owners maps each assigned partition to the members given it, and fails
// t if a member was given a partition of a topic it does not subscribe
// to, or that does not exist.
func owners(t *testing.T, members []Member, partitions map[string]int32, plan Plan) map[tp][]string {
	t.Helper()
	if len(plan) != len(members) {
		t.Fatalf("plan has %d members, the group %d", len(plan), len(members))
	}
	out := map[tp][]string{}
	for _, m := range members {
		share, ok := plan[m.ID]
		if !ok {
			t.Fatalf("%s has no entry in the plan", m.ID)
		}
		for topic, ps := range share {
			if !m.subscribes(topic) {
				t.Fatalf("%s given %s, which it does not subscribe to", m.ID, topic)
			}
			for _, p := range ps {
				if p < 0 || p >= partitions[topic] {
					t.Fatalf("%s given %s-%d, which does not exist", m.ID, topic, p)
				}
				out[tp{topic, p}] = append(out[tp{topic, p}], m.ID)
			}
		}
	}
	return out
}

// subscribedPartitions lists every partition of a subscribed topic.
func subscribedPartitions(members []Member, partitions map[string]int32) []tp {
	var all []tp
	for _, topic := range subscribedTopics(members, partitions) {
		for p := range partitions[topic] {
			all = append(all, tp{topic, p})
		}
	}
	return all
}

// spread is the largest count minus the smallest.
func spread(plan Plan) int {
	lo, hi := -1, 0
	for _, share := range plan {
		n := 0
		for _, ps := range share {
			n += len(ps)
		}
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return hi - lo
}

// Range and round robin: every partition of a subscribed topic goes to
// exactly one member subscribed to it.
func TestPropertyExactlyOnce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		equal := i%2 == 0
		members, partitions := randomGroup(r, equal)
		for _, a := range []Assignor{Range{}, RoundRobin{}} {
			plan := a.Assign(members, partitions)
			got := owners(t, members, partitions, plan)
			for _, k := range subscribedPartitions(members, partitions) {
				if len(got[k]) != 1 {
					t.Fatalf("%s, case %d: %s-%d given to %v", a.Name(), i, k.topic, k.partition, got[k])
				}
			}
			// Round robin's promise with equal subscriptions.
			if equal && a.Name() == "roundrobin" && spread(plan) > 1 {
				t.Fatalf("roundrobin, case %d: counts differ by %d", i, spread(plan))
			}
		}
	}
}

// Cooperative sticky: never a partition to two members; a partition left
// out only while some member that lists it must revoke it; and, rebalance
// after rebalance with members owning what they were given, all assigned
// within a few rounds, balanced when subscriptions are equal, and then
// stable (stickiness: a balanced group keeps its assignment).
func TestPropertyCooperativeSticky(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		equal := i%2 == 0
		members, partitions := randomGroup(r, equal)
		if i%3 != 0 {
			randomOwned(r, members, partitions)
		}
		var plan Plan
		for round := 0; ; round++ {
			if round == 10 {
				t.Fatalf("case %d: not complete after 10 rebalances", i)
			}
			plan = CooperativeSticky{}.Assign(members, partitions)
			got := owners(t, members, partitions, plan)
			for _, k := range subscribedPartitions(members, partitions) {
				switch len(got[k]) {
				case 1:
				case 0:
					if !listedByAny(members, k) {
						t.Fatalf("case %d round %d: %s-%d held back, owned by nobody", i, round, k.topic, k.partition)
					}
				default:
					t.Fatalf("case %d round %d: %s-%d given to %v", i, round, k.topic, k.partition, got[k])
				}
			}
			// Two-phase: no member is given a partition another
			// member still lists as its own.
			for k, ids := range got {
				for _, m := range members {
					if m.ID != ids[0] && owns(m, k) && !owns(memberByID(members, ids[0]), k) {
						t.Fatalf("case %d round %d: %s-%d moved from %s to %s in one rebalance", i, round, k.topic, k.partition, m.ID, ids[0])
					}
				}
			}
			members = nextRound(members, plan)
			if complete(members, partitions, plan) {
				break
			}
		}
		if equal && spread(plan) > 1 {
			t.Fatalf("case %d: equal subscriptions, counts differ by %d: %v", i, spread(plan), plan)
		}
		again := CooperativeSticky{}.Assign(members, partitions)
		if fmt.Sprint(again) != fmt.Sprint(plan) {
			t.Fatalf("case %d: a complete assignment changed on the next rebalance:\n%v\n%v", i, plan, again)
		}
	}
}

// owns reports whether m lists k among its owned partitions.
func owns(m Member, k tp) bool {
	for _, p := range m.Owned[k.topic] {
		if p == k.partition {
			return true
		}
	}
	return false
}

// listedByAny reports whether some member lists k as owned.
func listedByAny(members []Member, k tp) bool {
	for _, m := range members {
		if owns(m, k) {
			return true
		}
	}
	return false
}

// memberByID finds a member.
func memberByID(members []Member, id string) Member {
	for _, m := range members {
		if m.ID == id {
			return m
		}
	}
	return Member{}
}
