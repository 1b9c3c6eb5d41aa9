package assign

// RoundRobin is Kafka's RoundRobinAssignor ("roundrobin"). All subscribed
// partitions, sorted by topic then partition, are dealt one at a time to
// the members in sortMembers order, going round; a member not subscribed
// to a partition's topic is skipped for it. With equal subscriptions the
// counts differ by at most one across all topics, which range cannot
// promise; with unequal ones it can still be uneven, and a member joining
// or leaving reshuffles nearly everything.
type RoundRobin struct{}

// Name is "roundrobin".
func (RoundRobin) Name() string { return "roundrobin" }

// Assign deals the partitions round the members.
func (RoundRobin) Assign(members []Member, partitions map[string]int32) Plan {
	plan := newPlan(members)
	sorted := sortMembers(members)
	next := 0 // the member the next partition is offered to first
	for _, topic := range subscribedTopics(members, partitions) {
		for p := int32(0); p < partitions[topic]; p++ {
			// Someone subscribes to topic (subscribedTopics says so),
			// so this finds a member within one turn round.
			for !sorted[next].subscribes(topic) {
				next = (next + 1) % len(sorted)
			}
			plan.add(sorted[next].ID, topic, p)
			next = (next + 1) % len(sorted)
		}
	}
	return plan
}
