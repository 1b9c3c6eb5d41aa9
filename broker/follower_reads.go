package broker

import (
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// rackAwareSelector is the replica.selector.class that lets consumers read
// from the replica in their rack (KIP-392). Kafka's default, and klab's,
// is to serve consumers from leaders only.
const rackAwareSelector = "org.apache.kafka.common.replica.RackAwareReplicaSelector"

// preferredReadReplica is the replica a consumer in rack should read p
// from, when the broker's replica.selector.class is the rack-aware one: an
// in-sync replica in the consumer's rack, on a live broker. It is -1 when
// the consumer should read here: the leader is in its rack, no replica is,
// or the selector is off.
//
// Reading from a replica in the same rack (or availability zone) keeps the
// bytes off the links between racks, which clouds charge for. The price is
// latency: a follower learns the high watermark one fetch after the leader.
func (b *Broker) preferredReadReplica(p *partition, rack string) (int32, error) {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	return selectReadReplica(b.cfg.ReplicaSelector, st, b.cfg.NodeID, rack, b.ctrl.Image(), b.members.Alive())
}

// selectReadReplica picks, when selector (the broker's
// replica.selector.class) is the rack-aware one, among the partition's
// in-sync replicas on live brokers, one whose broker is in rack. The
// leader (self) keeps the consumer if it is in that rack itself, or if no
// replica is, or if the selector is another: -1.
func selectReadReplica(selector string, st metadata.Partition, self int32, rack string, im *metadata.Image, alive map[int32]membership.Member) (int32, error) {
	//klab:lesson 08 begin selectReadReplica
	if selector != rackAwareSelector || im.Brokers[self].Rack == rack {
		return -1, nil
	}
	for _, id := range st.Replicas {
		if _, ok := alive[id]; !ok || id == self || !st.InSync(id) {
			continue
		}
		if im.Brokers[id].Rack == rack {
			return id, nil
		}
	}
	return -1, nil
	//klab:lesson 08 stub
	// return -1, lessons.Todo("08", "selectReadReplica")
	//klab:lesson 08 end
}
