package assign

import (
	"slices"
	"sort"
)

// CooperativeSticky is Kafka's CooperativeStickyAssignor
// ("cooperative-sticky", KIP-429). It aims for two things at once: balance
// (with equal subscriptions, member counts differ by at most one) and
// stickiness (a member keeps the partitions it owns, as far as balance
// allows, so little state moves and few caches go cold). And it is
// cooperative: a partition that must move from one member to another is
// not handed over in one rebalance. In the first it is left out of
// everyone's assignment, so its owner revokes it (commits, stops fetching)
// while keeping all its other partitions; the owner's consumer then
// rejoins at once, and in that second rebalance nobody owns the partition
// and it is assigned. Nobody stops the world, but a move takes two
// rebalances.
//
// The algorithm is this course's, simpler than Java's AbstractStickyAssignor
// but held to the same promises: members keep what they validly own;
// free partitions go, those with the fewest candidate members first, to
// the least loaded member subscribed to them; then, while a member has two
// more partitions than another member that could take one of them, one
// moves (a partition the giver did not own before, if it has one: that
// costs no revocation). With unequal subscriptions the result is balanced
// only as far as such single moves can take it, as with Java's.
type CooperativeSticky struct{}

// Name is "cooperative-sticky".
func (CooperativeSticky) Name() string { return "cooperative-sticky" }

// tp is a topic partition, a map key.
type tp struct {
	topic     string
	partition int32
}

// Assign balances the partitions, keeping what members own where it can and
// holding back the partitions that change hands.
func (CooperativeSticky) Assign(members []Member, partitions map[string]int32) Plan {
	sorted := sortMembers(members)
	rank := map[string]int{} // place in sortMembers order, to break ties
	byID := map[string]Member{}
	for i, m := range sorted {
		rank[m.ID] = i
		byID[m.ID] = m
	}

	// Who listed what, and who keeps it. A member keeps an owned partition
	// if it still subscribes to the topic, the partition still exists, and
	// no one claims it from a newer generation: an older claim is from a
	// zombie that missed a rebalance, and the newer owner is the real one.
	// Two claims from the same generation are a conflict neither wins.
	// These are the rules of Java's general path; its fast path for equal
	// subscriptions is stricter and ignores every claim of a member behind
	// the newest generation, conflicting or not.
	listed := map[tp]map[string]bool{}
	type claim struct {
		owner string
		gen   int32
		tie   bool
	}
	claims := map[tp]claim{}
	for _, m := range sorted {
		for topic, parts := range m.Owned {
			n, ok := partitions[topic]
			if !ok {
				continue // deleted: nothing to keep nor to revoke
			}
			for _, p := range parts {
				if p < 0 || p >= n {
					continue
				}
				k := tp{topic, p}
				if listed[k] == nil {
					listed[k] = map[string]bool{}
				}
				listed[k][m.ID] = true
				if !m.subscribes(topic) {
					continue
				}
				c, seen := claims[k]
				switch {
				case !seen || m.Generation > c.gen:
					claims[k] = claim{owner: m.ID, gen: m.Generation}
				case m.Generation == c.gen && c.owner != m.ID:
					c.tie = true
					claims[k] = c
				}
			}
		}
	}

	owner := map[tp]string{}        // the assignment being built
	count := map[string]int{}       // partitions per member in it
	held := map[string][]tp{}       // each member's partitions in it
	candidates := map[tp][]string{} // members subscribed to the topic
	var free []tp
	for _, topic := range subscribedTopics(members, partitions) {
		var subs []string
		for _, m := range sorted {
			if m.subscribes(topic) {
				subs = append(subs, m.ID)
			}
		}
		for p := int32(0); p < partitions[topic]; p++ {
			k := tp{topic, p}
			candidates[k] = subs
			if c, ok := claims[k]; ok && !c.tie {
				owner[k] = c.owner
				count[c.owner]++
				held[c.owner] = append(held[c.owner], k)
			} else {
				free = append(free, k)
			}
		}
	}

	// Free partitions with the fewest candidates first: placed last, they
	// would find their few candidates already loaded by partitions that
	// could have gone anywhere.
	sort.SliceStable(free, func(i, j int) bool {
		return len(candidates[free[i]]) < len(candidates[free[j]])
	})
	lightest := func(ids []string, except string) string {
		best := ""
		for _, id := range ids {
			if id == except {
				continue
			}
			if best == "" || count[id] < count[best] ||
				count[id] == count[best] && rank[id] < rank[best] {
				best = id
			}
		}
		return best
	}
	for _, k := range free {
		id := lightest(candidates[k], "")
		owner[k] = id
		count[id]++
		held[id] = append(held[id], k)
	}

	// Balance: move one partition at a time from a member to one with at
	// least two fewer. Each move lowers the sum of the squared counts, so
	// the loop ends.
	for moved := true; moved; {
		moved = false
		givers := slices.Clone(sorted)
		sort.SliceStable(givers, func(i, j int) bool {
			return count[givers[i].ID] > count[givers[j].ID]
		})
	search:
		for _, g := range givers {
			// Partitions the giver did not own before first: moving
			// them costs no revocation, moving an owned one costs one.
			parts := slices.Clone(held[g.ID])
			sort.SliceStable(parts, func(i, j int) bool {
				return !listed[parts[i]][g.ID] && listed[parts[j]][g.ID]
			})
			for _, k := range parts {
				to := lightest(candidates[k], g.ID)
				if to == "" || count[to] >= count[g.ID]-1 {
					continue
				}
				owner[k] = to
				count[g.ID]--
				count[to]++
				held[g.ID] = slices.DeleteFunc(held[g.ID], func(x tp) bool { return x == k })
				held[to] = append(held[to], k)
				moved = true
				break search
			}
		}
	}

	// The cooperative step: a partition listed as owned by some member may
	// go only to a member that listed it too. Given to anyone else it would
	// be consumed by two members at once until the owner revokes it, so it
	// is held back: no one gets it in this rebalance, the owner sees it
	// missing and revokes it, and the next rebalance assigns it.
	plan := newPlan(members)
	for k, id := range owner {
		if l := listed[k]; len(l) > 0 && !l[id] {
			continue
		}
		plan.add(id, k.topic, k.partition)
	}
	plan.sortPartitions()
	return plan
}
