// Package consumer is the course's own Kafka consumer, built on the wire
// protocol (package broker/client): it works against klab and against any
// Kafka cluster.
//
// The application either assigns itself partitions (Assign) or subscribes
// to topics as a member of a consumer group (group.id, Subscribe), and
// calls Poll in a loop. For each partition the consumer keeps a position:
// the offset of the next record Poll will return. A position it does not
// know yet, or one that has fallen out of the log (OFFSET_OUT_OF_RANGE), is
// reset by auto.offset.reset: earliest, latest, or none (an error). Fetches
// go to each partition's leader, one request per broker for all its
// partitions, and wait on the broker for fetch.min.bytes up to
// fetch.max.wait.ms. While the application works through what one Poll
// returned, the next fetch is already on its way. Lesson 05, "The
// consumer", is built from this package. A topic deleted while its
// partitions are assigned is not waited on for ever: Poll reports it
// (ErrTopicDeleted), or, for a subscription, the group assigns again
// without it.
//
// # Consumer groups
//
// A group shares out the partitions of the topics its members subscribe
// to, in Kafka's classic group protocol (group.go): the member finds its
// group's coordinator (FindCoordinator), joins (JoinGroup; KIP-394's
// MEMBER_ID_REQUIRED makes it join again with the id it was given), and
// the member the coordinator picks as leader runs the assignor (package
// consumer/assign) over everyone's subscription; SyncGroup hands each
// member its share. A goroutine of its own sends a Heartbeat every
// heartbeat.interval.ms, which is how the member hears that a rebalance
// began; and, if Poll is not called for max.poll.interval.ms, it leaves
// the group (KIP-62). Joining, and the rebalance callbacks
// (OnPartitionsAssigned, OnPartitionsRevoked, OnPartitionsLost), happen in
// Poll, in the application's goroutine.
//
// With an eager assignor (range, roundrobin) a member revokes all it owns
// before it rejoins; with cooperative-sticky (KIP-429) it keeps consuming
// through the rebalance and revokes only what is taken away, then rejoins
// once more so that the others get it. A static member (group.instance.id,
// KIP-345) keeps its place through a restart within the session timeout.
//
// The group also keeps its members' offsets (commit.go): the offset of the
// next record to read, per partition, committed with OffsetCommit and read
// back with OffsetFetch when a partition is assigned. enable.auto.commit
// commits every auto.commit.interval.ms from Poll, before partitions are
// revoked, and on Close; CommitSync, CommitOffsets and CommitAsync commit
// by hand. Lesson 10, "Consumer groups", is built from this.
package consumer
