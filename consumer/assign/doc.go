// Package assign holds the partition assignors of consumer groups: the
// code that decides which member of a group consumes which partition. It
// is the first piece of lesson 10, "Consumer groups".
//
// # Who assigns
//
// In the classic group protocol (JoinGroup, SyncGroup, Heartbeat) the
// broker does not assign partitions. Each member sends JoinGroup with the
// protocol type "consumer" and a list of assignors it can run, each with
// its subscription: the bytes of EncodeSubscription, its topics and, for
// cooperative assignors, the partitions it owns now. The coordinator picks
// an assignor every member listed, makes one member the leader, and
// answers the leader, and only the leader, with every member's
// subscription. The leader looks up the topics' partition counts in
// metadata, runs Assignor.Assign, and sends each member's share, the
// bytes of EncodeAssignment, in its SyncGroup; the coordinator hands each
// member its share in the SyncGroup answers. To the broker all these
// bytes are opaque: that is what lets a client bring a new assignor
// without a broker upgrade, and why a group's members must agree on one.
// KIP-848's consumer protocol (ConsumerGroupHeartbeat, Kafka 4.0) turns
// this around: the coordinator assigns, with server-side assignors
// ("uniform", "range"), and members only heartbeat.
//
// # The three assignors
//
// Range ("range"; Java's default, alone before 3.0 and first of range and
// cooperative-sticky since) assigns topic by topic: each topic's partitions are cut into consecutive
// ranges among the members subscribed to it. Partition i of two topics
// with the same count and subscribers lands on the same member, which
// joins of co-partitioned topics need; but the first members get the
// extra partition of every topic, so with many topics it is lopsided.
//
// RoundRobin ("roundrobin") deals all partitions of all topics in turn,
// which balances counts to within one when subscriptions are equal. It
// ignores who had what: any change to the group reshuffles nearly every
// partition.
//
// Both are eager: before joining, every member revokes all its partitions
// (commits, drops its fetch state), and the whole group stops consuming
// until the new assignment arrives, even for partitions that end where
// they were.
//
// CooperativeSticky ("cooperative-sticky", KIP-429) is balanced like
// round robin and sticky besides: members keep what they own as far as
// balance allows, so a member joining or leaving moves only the
// partitions it must. And it is cooperative: members keep consuming
// through a rebalance, and only a partition that changes owner stops; it
// is held back from everyone in one rebalance, so that its owner revokes
// it, and assigned in the next. The price is that second rebalance, and
// that the members must report what they own (subscription v1+).
//
// # Order of members
//
// Range and round robin depend on the order of members. Like Java's
// AbstractPartitionAssignor.MemberInfo, this package orders static
// members (those with a group.instance.id, KIP-345) first, by instance
// id, then dynamic members by member id. A static member's member id
// changes when it restarts but its instance id does not, so it gets the
// same partitions back; a dynamic member's id is the coordinator's, and
// the order among dynamic members is arbitrary but the same on every
// leader.
//
// Not here: rack-aware assignment (KIP-881; the subscription carries the
// rack, the assignors ignore it), the eager "sticky" assignor and its
// user data, and the wiring into the consumer and the group protocol.
package assign
