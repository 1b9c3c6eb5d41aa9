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
	s := newStickyRun(sortMembers(members), partitions)
	s.placeFree()
	s.balance()
	return s.plan(members)
}

// stickyRun is one run of CooperativeSticky.Assign: the assignment being
// built, and what it needs to know of the group.
type stickyRun struct {
	sorted     []Member               // the members, in sortMembers order
	rank       map[string]int         // a member's place in sorted, to break ties
	listed     map[tp]map[string]bool // who lists a partition as owned
	candidates map[tp][]string        // the members subscribed to its topic
	owner      map[tp]string          // the assignment being built
	count      map[string]int         // partitions per member in it
	held       map[string][]tp        // each member's partitions in it
	free       []tp                   // partitions no member keeps
}

// newStickyRun starts from what members own. A member keeps an owned
// partition if it still subscribes to the topic, the partition still
// exists, and no one claims it from a newer generation: an older claim is
// from a zombie that missed a rebalance, and the newer owner is the real
// one. Two claims from the same generation are a conflict neither wins.
// These are the rules of Java's general path; its fast path for equal
// subscriptions is stricter and ignores every claim of a member behind the
// newest generation, conflicting or not.
func newStickyRun(sorted []Member, partitions map[string]int32) *stickyRun {
	s := &stickyRun{
		sorted:     sorted,
		rank:       map[string]int{},
		listed:     map[tp]map[string]bool{},
		candidates: map[tp][]string{},
		owner:      map[tp]string{},
		count:      map[string]int{},
		held:       map[string][]tp{},
	}
	type claim struct {
		owner string
		gen   int32
		tie   bool
	}
	claims := map[tp]claim{}
	for i, m := range sorted {
		s.rank[m.ID] = i
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
				if s.listed[k] == nil {
					s.listed[k] = map[string]bool{}
				}
				s.listed[k][m.ID] = true
				if !m.subscribes(topic) {
					continue // to be revoked, not kept
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

	for _, topic := range subscribedTopics(sorted, partitions) {
		var subs []string
		for _, m := range sorted {
			if m.subscribes(topic) {
				subs = append(subs, m.ID)
			}
		}
		for p := int32(0); p < partitions[topic]; p++ {
			k := tp{topic, p}
			s.candidates[k] = subs
			if c, ok := claims[k]; ok && !c.tie {
				s.give(k, c.owner)
			} else {
				s.free = append(s.free, k)
			}
		}
	}
	return s
}

// give assigns k to id in the assignment being built.
func (s *stickyRun) give(k tp, id string) {
	s.owner[k] = id
	s.count[id]++
	s.held[id] = append(s.held[id], k)
}

// take removes k from id in the assignment being built.
func (s *stickyRun) take(k tp, id string) {
	delete(s.owner, k)
	s.count[id]--
	s.held[id] = slices.DeleteFunc(s.held[id], func(x tp) bool { return x == k })
}

// lightest is the member of ids, other than except, with the fewest
// partitions, the first in sortMembers order among equals; "" if none.
func (s *stickyRun) lightest(ids []string, except string) string {
	best := ""
	for _, id := range ids {
		if id == except {
			continue
		}
		if best == "" || s.count[id] < s.count[best] ||
			s.count[id] == s.count[best] && s.rank[id] < s.rank[best] {
			best = id
		}
	}
	return best
}

// placeFree gives each free partition to its least loaded candidate, the
// partitions with the fewest candidates first: placed last, they would
// find their few candidates already loaded by partitions that could have
// gone anywhere.
func (s *stickyRun) placeFree() {
	sort.SliceStable(s.free, func(i, j int) bool {
		return len(s.candidates[s.free[i]]) < len(s.candidates[s.free[j]])
	})
	for _, k := range s.free {
		s.give(k, s.lightest(s.candidates[k], ""))
	}
}

// balance moves one partition at a time from a member to one with at
// least two fewer that subscribes to its topic, until no such move is
// left. Each move lowers the sum of the squared counts, so it ends.
func (s *stickyRun) balance() {
	for s.moveOne() {
	}
}

// moveOne makes one balancing move, from the most loaded member that has
// one to make, and reports whether it found one.
func (s *stickyRun) moveOne() bool {
	givers := slices.Clone(s.sorted)
	sort.SliceStable(givers, func(i, j int) bool {
		return s.count[givers[i].ID] > s.count[givers[j].ID]
	})
	for _, g := range givers {
		// Partitions the giver did not own before first: moving them
		// costs no revocation, moving an owned one costs one.
		parts := slices.Clone(s.held[g.ID])
		sort.SliceStable(parts, func(i, j int) bool {
			return !s.listed[parts[i]][g.ID] && s.listed[parts[j]][g.ID]
		})
		for _, k := range parts {
			to := s.lightest(s.candidates[k], g.ID)
			if to == "" || s.count[to] >= s.count[g.ID]-1 {
				continue
			}
			s.take(k, g.ID)
			s.give(k, to)
			return true
		}
	}
	return false
}

// plan is the assignment built, less the cooperative step: a partition
// some member lists as owned may go only to a member that lists it too.
// Given to anyone else it would be consumed by two members at once until
// the owner revokes it, so it is held back: no one gets it in this
// rebalance, the owner sees it missing and revokes it, and the next
// rebalance assigns it.
func (s *stickyRun) plan(members []Member) Plan {
	plan := newPlan(members)
	for k, id := range s.owner {
		if l := s.listed[k]; len(l) > 0 && !l[id] {
			continue
		}
		plan.add(id, k.topic, k.partition)
	}
	plan.sortPartitions()
	return plan
}
