package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// Decide is the controller's rule for one partition, given which brokers
// are alive: the leader and ISR it should have. The error, LEADER_NOT_AVAILABLE,
// says the partition is offline: no replica may lead it.
//
//   - A dead broker leaves the ISR, so that acks=all stops waiting for it
//     (KRaft fences a broker that stops heartbeating and does the same) —
//     except the last ISR member, which stays: it is the one replica known
//     to have every committed record, and the partition waits for it.
//   - A partition whose leader is dead, or that has none, gets the first
//     live replica that is in the ISR, in replica order, so the preferred
//     leader wins when it can. Only an ISR member may lead: any other
//     replica could be missing acknowledged records.
//   - With no live ISR member the partition stays offline (leader -1),
//     unless unclean is set (unclean.leader.election.enable): then the
//     first live replica leads, and records it lacks are lost.
func Decide(p metadata.Partition, alive func(int32) bool, unclean bool) (leader int32, isr []int32, err error) {
	//klab:lesson 07 begin Decide
	isr = slices.DeleteFunc(slices.Clone(p.ISR), func(id int32) bool { return !alive(id) })
	leader = p.Leader
	if leader < 0 || !alive(leader) {
		leader = -1
		for _, id := range p.Replicas {
			if alive(id) && slices.Contains(isr, id) {
				leader = id
				break
			}
		}
		if leader < 0 && unclean {
			for _, id := range p.Replicas {
				if alive(id) {
					leader, isr = id, []int32{id}
					break
				}
			}
		}
	}
	if len(isr) == 0 {
		isr = p.ISR // keep the last in-sync replica: the partition waits for it
	}
	if leader < 0 {
		return leader, isr, fmt.Errorf("%w: no live in-sync replica among %v (ISR %v)", kerr.LeaderNotAvailable, p.Replicas, p.ISR)
	}
	return leader, isr, nil
	//klab:lesson 07 stub
	// return 0, nil, lessons.Todo("07", "Decide")
	//klab:lesson 07 end
}

// preferred returns the partition's preferred leader if it should take the
// leadership back: it is alive, in sync, and not leading now.
func preferred(p metadata.Partition, alive func(int32) bool) (int32, bool) {
	if len(p.Replicas) == 0 {
		return 0, false
	}
	want := p.Replicas[0]
	return want, p.Leader != want && alive(want) && p.InSync(want)
}

// ImbalancedBrokers are the brokers whose leadership the automatic
// rebalance should give back: those for which more than percentage percent
// of the partitions they are the preferred leader of (the first replica)
// are led by another broker, while they are eligible to lead them again.
// The threshold is leader.imbalance.per.broker.percentage (10): a broker
// back from a restart gets all its leaderships back in one go, rather than
// each partition moving on its own and clients chasing every move.
func ImbalancedBrokers(im *metadata.Image, eligible func(int32) bool, percentage int) map[int32]bool {
	preferredOf := map[int32]int{} // partitions each broker is the preferred leader of
	ledByOthers := map[int32]int{}
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			want := p.Replicas[0]
			preferredOf[want]++
			if p.Leader != want {
				ledByOthers[want]++
			}
		}
	}
	out := map[int32]bool{}
	for id, n := range ledByOthers {
		if eligible(id) && n*100 > percentage*preferredOf[id] {
			out[id] = true
		}
	}
	return out
}
