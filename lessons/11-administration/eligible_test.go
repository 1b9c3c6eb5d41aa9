// The tests of lesson 11, administration. The controller's side of a
// controlled shutdown (Eligible, ShutdownDone) and of a partition
// reassignment (Reassign, CompleteReassignment) are tested as functions,
// case by case, first; then on a cluster of brokers in this process
// (package clustertest, wire_test.go), under an acks=all load.
package controller_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// gossip is who membership says is alive: broker id to the incarnation it
// gossips (a broker gets a new one each time it starts).
func gossip(incarnations map[int32]int64) map[int32]membership.Member {
	alive := map[int32]membership.Member{}
	for id, inc := range incarnations {
		alive[id] = membership.Member{ID: id, Addr: "127.0.0.1:9092", Incarnation: inc}
	}
	return alive
}

// registered is an image whose brokers are registered in the given
// incarnations, none shutting down.
func registered(incarnations map[int32]int64) *metadata.Image {
	im := metadata.Empty()
	for id, inc := range incarnations {
		im.Brokers[id] = metadata.Broker{ID: id, Addr: "127.0.0.1:9092", Incarnation: inc}
	}
	return im
}

// TestEligibleIsAliveRegisteredInThisLifeAndNotLeaving: a broker may lead
// and be in ISRs when gossip says it is alive, in the life the controller
// registered, and it has not asked to stop. Each of the three conditions
// alone makes it ineligible; a broker 0 is a broker like any other.
func TestEligibleIsAliveRegisteredInThisLifeAndNotLeaving(t *testing.T) {
	im := registered(map[int32]int64{0: 5, 1: 10, 2: 20, 3: 30})
	alive := gossip(map[int32]int64{0: 5, 1: 10, 2: 20, 3: 30})
	for _, id := range []int32{0, 1, 2, 3} {
		require.True(t, controller.Eligible(im, alive, id), "broker %d is alive, registered in this life and not shutting down", id)
	}

	delete(alive, 2)
	require.False(t, controller.Eligible(im, alive, 2), "broker 2 is registered, but gossip says it is dead: its partitions must move")
	require.False(t, controller.Eligible(im, alive, 9), "broker 9 is neither alive nor registered")
	require.True(t, controller.Eligible(im, alive, 1), "another broker's death changes nothing for broker 1")
}

// TestABrokerThatStartedAgainIsNotEligibleUntilRegistered: broker 2
// crashed and started again (it gossips a new incarnation) before the
// controller noticed it gone. It is alive, but its ISR memberships and
// leaderships belong to its previous life, whose unflushed records a power
// cut may have taken: until the controller registers the new life, it may
// neither lead nor count as in sync (KRaft's broker epoch).
func TestABrokerThatStartedAgainIsNotEligibleUntilRegistered(t *testing.T) {
	im := registered(map[int32]int64{1: 10, 2: 20})
	alive := gossip(map[int32]int64{1: 10, 2: 21})
	require.False(t, controller.Eligible(im, alive, 2), "broker 2 gossips incarnation 21, but is registered in 20: a new life, not the one in the ISR")
	require.True(t, controller.Eligible(im, alive, 1))

	im = registered(map[int32]int64{1: 10, 2: 21})
	require.True(t, controller.Eligible(im, alive, 2), "registered again in incarnation 21: eligible")

	alive = gossip(map[int32]int64{1: 10, 2: 19})
	require.False(t, controller.Eligible(im, alive, 2), "an incarnation that differs is another life, whether its number is higher or lower")
}

// TestAShuttingDownBrokerIsNotEligible: a broker that asked to stop
// (InControlledShutdown) is still alive and registered, but it must lead
// nothing and leave the ISRs, or the controller could never finish moving
// its work away; the flag belongs to one life only.
func TestAShuttingDownBrokerIsNotEligible(t *testing.T) {
	im := registered(map[int32]int64{1: 10, 2: 20, 3: 30})
	b := im.Brokers[2]
	b.InControlledShutdown = true
	im.Brokers[2] = b
	alive := gossip(map[int32]int64{1: 10, 2: 20, 3: 30})
	require.False(t, controller.Eligible(im, alive, 2), "broker 2 is shutting down: no leadership, no ISR")
	require.True(t, controller.Eligible(im, alive, 1), "only the broker that asked is shutting down")
	require.True(t, controller.Eligible(im, alive, 3))

	alive = gossip(map[int32]int64{1: 10, 2: 21, 3: 30})
	require.False(t, controller.Eligible(im, alive, 2), "broker 2 restarted: ineligible until its new life is registered")
}

// TestAnAliveBrokerNotRegisteredYetIsEligible: a broker gossip knows and
// the metadata log does not (it just joined; its registration is the
// controller's next record) counts as eligible, as in lesson 07, so that
// a topic created at once, or a reassignment onto it, can use it. Only a
// registration in another life, or a shutdown, rules it out.
func TestAnAliveBrokerNotRegisteredYetIsEligible(t *testing.T) {
	im := registered(map[int32]int64{1: 10})
	alive := gossip(map[int32]int64{1: 10, 4: 40})
	require.True(t, controller.Eligible(im, alive, 4), "broker 4 is alive and not registered yet: eligible")
	require.True(t, controller.Eligible(metadata.Empty(), alive, 1), "a new cluster's image knows no broker yet; its live brokers are eligible")
}

// topic is a topic of the given partitions, for an image.
func topic(name string, partitions ...metadata.Partition) *metadata.Topic {
	return &metadata.Topic{Name: name, Partitions: partitions}
}

// imageOf is an image holding the given topics.
func imageOf(topics ...*metadata.Topic) *metadata.Image {
	im := metadata.Empty()
	for _, t := range topics {
		im.Topics[t.Name] = t
	}
	return im
}

// TestShutdownIsDoneWhenTheBrokerLeadsNothingAndIsInNoISR: the stopping
// broker may go once no partition waits for it: it leads nothing, and is
// in no ISR where another replica could take its place. Leading one
// partition, or being in one ISR of two, anywhere in any topic, keeps it.
func TestShutdownIsDoneWhenTheBrokerLeadsNothingAndIsInNoISR(t *testing.T) {
	moved := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{2, 3}}
	done := imageOf(
		topic("orders", moved, moved, moved),
		topic("payments", metadata.Partition{Replicas: []int32{2, 3}, Leader: 3, ISR: []int32{3, 2}}),
	)
	require.True(t, controller.ShutdownDone(done, 1), "broker 1 leads nothing and is in no ISR")
	require.True(t, controller.ShutdownDone(metadata.Empty(), 1), "no partitions: nothing to hand over")

	leads := imageOf(
		topic("orders", moved, moved, metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2, 3}}),
		topic("payments", moved),
	)
	require.False(t, controller.ShutdownDone(leads, 1), "broker 1 still leads orders-2: its producers would lose their leader")

	inISR := imageOf(
		topic("orders", moved),
		topic("payments", moved, metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{2, 1}}),
	)
	require.False(t, controller.ShutdownDone(inISR, 1), "broker 1 still is in payments-1's ISR {2, 1}: acks=all writes would wait for it until replica.lag.time.max.ms")
}

// TestTheLastInSyncReplicaMayStop: a partition whose only in-sync replica
// is the stopping broker has no one to hand over to; the ISR keeps its
// last member (it alone has every acknowledged record), and the partition
// waits for it to come back, as after a crash. Waiting for it to leave
// that ISR would hold the shutdown until its timeout for nothing. But it
// must not lead: the controller has already taken the leadership from a
// broker that is not eligible.
func TestTheLastInSyncReplicaMayStop(t *testing.T) {
	moved := metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 2, ISR: []int32{2, 3}}
	last := imageOf(topic("orders", moved, metadata.Partition{Replicas: []int32{1, 2}, Leader: -1, ISR: []int32{1}}))
	require.True(t, controller.ShutdownDone(last, 1), "broker 1 is the last member of orders-1's ISR, and leads nothing: done")

	leadsAlone := imageOf(topic("orders", moved, metadata.Partition{Replicas: []int32{1, 2}, Leader: 1, ISR: []int32{1}}))
	require.False(t, controller.ShutdownDone(leadsAlone, 1), "broker 1 is the last in-sync replica but still leads orders-1: not done until the controller took the leadership")
}

// TestOtherBrokersWorkDoesNotHoldAShutdown: ShutdownDone is about one
// broker. Partitions led by others, ISRs of others, even offline
// partitions of others, say nothing about whether broker 3 may stop.
func TestOtherBrokersWorkDoesNotHoldAShutdown(t *testing.T) {
	im := imageOf(
		topic("orders",
			metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: 1, ISR: []int32{1, 2}},
			metadata.Partition{Replicas: []int32{2, 1, 3}, Leader: 2, ISR: []int32{2, 1}},
			metadata.Partition{Replicas: []int32{4, 1}, Leader: -1, ISR: []int32{4}},
		),
	)
	require.True(t, controller.ShutdownDone(im, 3), "broker 3 leads nothing and is in no ISR")
	require.False(t, controller.ShutdownDone(im, 1), "broker 1 leads orders-0")
	require.False(t, controller.ShutdownDone(im, 2), "broker 2 leads orders-1")
	require.True(t, controller.ShutdownDone(im, 4), "broker 4 is the last in-sync replica of an offline partition")
}

// TestBrokersStoppingTogetherDoNotWaitForEachOther: when every other
// member of an ISR is shutting down too (a whole cluster stopped at once),
// none of them can take the stopping broker's place: none is eligible, so
// none leaves the ISR. The partition waits for them all, as for a last
// member; waiting for each other would hold every shutdown until its
// timeout, and end it as a crash. A partner still serving does take over:
// then the broker must leave the ISR first.
func TestBrokersStoppingTogetherDoNotWaitForEachOther(t *testing.T) {
	im := imageOf(topic("orders", metadata.Partition{Replicas: []int32{1, 2, 3}, Leader: -1, ISR: []int32{1, 3}}))
	im.Brokers[1] = metadata.Broker{ID: 1, InControlledShutdown: true}
	im.Brokers[2] = metadata.Broker{ID: 2}
	im.Brokers[3] = metadata.Broker{ID: 3, InControlledShutdown: true}
	require.True(t, controller.ShutdownDone(im, 1), "broker 1's only ISR partner, 3, is stopping too: nobody can take its place")
	require.True(t, controller.ShutdownDone(im, 3), "and the same for broker 3")

	im.Brokers[3] = metadata.Broker{ID: 3}
	require.False(t, controller.ShutdownDone(im, 1), "broker 3 is serving: broker 1 must leave the ISR to it first")
}
