package group

import "sort"

// candidateProtocols returns the protocols every member supports, sorted
// by name; none when the group has no members.
func (g *Group) candidateProtocols() []string {
	var common map[string]bool
	for _, m := range g.members {
		mine := make(map[string]bool, len(m.protocols))
		for _, p := range m.protocols {
			if common == nil || common[p.Name] {
				mine[p.Name] = true
			}
		}
		common = mine
	}
	names := make([]string, 0, len(common))
	for n := range common {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// supports reports whether a member with these protocols may join: the
// protocol type must match the group's, and while the group has members, at
// least one protocol must be one they all support, or no assignor could
// serve everyone. (INCONSISTENT_GROUP_PROTOCOL otherwise.)
func (g *Group) supports(protocolType string, protocols []Protocol) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	if len(g.members) == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	common := g.candidateProtocols()
	for _, p := range protocols {
		for _, c := range common {
			if p.Name == c {
				return true
			}
		}
	}
	return false
}

// selectProtocol picks the generation's assignor as Kafka does: among the
// protocols every member supports, each member votes for the one it ranks
// highest, and the most votes win. Kafka breaks a tie arbitrarily; here the
// name that sorts first wins, so tests and replays are deterministic.
func (g *Group) selectProtocol() string {
	candidates := g.candidateProtocols()
	if len(candidates) == 0 {
		return ""
	}
	isCandidate := make(map[string]bool, len(candidates))
	for _, c := range candidates {
		isCandidate[c] = true
	}
	votes := make(map[string]int, len(candidates))
	for _, m := range g.members {
		for _, p := range m.protocols {
			if isCandidate[p.Name] {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates[1:] {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}
