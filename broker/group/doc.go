// Package group is the classic consumer-group coordinator's state machine
// (Kafka's GroupCoordinator and GroupMetadata): who is in a group, which
// generation it is at, who leads it, and when it must rebalance. It is a
// pure unit: no network, no disk. The JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, DescribeGroups and ListGroups handlers call it; requests that
// must wait (JoinGroup until the rebalance's join phase ends, a follower's
// SyncGroup until the leader's) get a channel that receives their answer.
//
// # States
//
//	           first JoinGroup
//	+-------+  ---------------->  +--------------------+
//	| Empty |                     | PreparingRebalance | <--------+
//	+-------+  <----------------  +--------------------+          |
//	            join ends with         |                          |
//	            no members             | every member rejoined,   |
//	                                   | or rebalance timeout     |
//	                                   v                          |
//	                        +---------------------+  a member     |
//	                        | CompletingRebalance | ------------->+
//	                        +---------------------+  joins,       |
//	                                   |             leaves, dies,|
//	                                   | leader's    or changes   |
//	                                   | SyncGroup   protocols    |
//	                                   v                          |
//	                              +--------+                      |
//	                              | Stable | -------------------->+
//	                              +--------+
//
//	any state --- this broker stops coordinating the group (Unload) ---> Dead
//
// A rebalance has two phases. In the join phase (PreparingRebalance) every
// member sends JoinGroup and waits; the phase ends when all known members
// have rejoined, or when the rebalance timeout (the longest of the
// members' max.poll.interval.ms, KIP-62) passes, and then the members that
// did not rejoin are dropped. The generation advances, the protocol (the
// assignor) is chosen, and every JoinGroup is answered; the leader's answer
// carries all members' subscriptions. In the sync phase
// (CompletingRebalance) the leader runs the assignor on its side and sends
// the result in its SyncGroup; every member's SyncGroup is answered with its
// own share, and the group is Stable.
//
// The first rebalance of an Empty group waits group.initial.rebalance.delay.ms
// (3 s), pushed back by each newcomer, so that consumers started together
// form one generation instead of rebalancing once per arrival.
//
// JoinGroup v4+ (KIP-394) gives a member without an id one, answered
// MEMBER_ID_REQUIRED; the member joins again with it. A static member
// (group.instance.id, KIP-345) is known by its instance id across restarts:
// when it comes back to a Stable group, and its protocols would not change
// the group's choice, it gets a new member id and keeps its assignment,
// with no rebalance. (A leader that rejoins under its current member id,
// on the other hand, always rebalances a Stable group: that is how a
// leader asks for a new assignment.)
//
// # Liveness, and what the seed notes get wrong
//
// The seed notes say a group's "in-sync consumers were contacted in the
// last ten seconds". Two corrections. "In-sync" belongs to replicas: the
// ISR is the set of followers caught up with a partition's leader; consumers
// are members of a group, not in sync with anything. And a consumer stays
// in its group on two conditions, not one clock: its heartbeats (sent by a
// background thread) must arrive within session.timeout.ms — 10 s before
// Kafka 3.0, 45 s since KIP-735 — or the coordinator removes it; and its
// application must call poll within max.poll.interval.ms (KIP-62), or the
// client itself leaves the group, and a rebalance waits at most that long
// for it to rejoin. Here, Heartbeat resets the session deadline and
// JoinRequest.RebalanceTimeout carries max.poll.interval.ms.
//
// After the join phase, every member must send SyncGroup within the
// rebalance timeout; those that do not (a leader that never assigns, above
// all) are removed and the others rebalance, as in Kafka.
//
// # Files
//
//   - join.go: JoinGroup, and the rebalance's join phase (prepareRebalance,
//     completeJoin), the heart of the state machine;
//   - sync.go: SyncGroup, the sync phase;
//   - heartbeat.go: Heartbeat and LeaveGroup;
//   - tick.go: the deadlines (sessions, rebalance and sync timeouts), and
//     Unload;
//   - protocol.go: choosing the assignor;
//   - group.go, member.go, state.go: the data, and DescribeGroups;
//   - manager.go: the broker's groups, and ListGroups;
//   - await.go: how a handler waits for an answer.
//
// # Time
//
// No goroutines and no timers: deadlines are checked by Group.Tick (and
// Manager.Tick), which the coordinator calls periodically, against the
// clock in Config.Now, which tests replace with one they move by hand.
package group
