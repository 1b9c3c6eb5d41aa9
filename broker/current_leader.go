package broker

import (
	"net"
	"strconv"
)

// KIP-951: a broker that refuses a Produce or a Fetch because it does not
// lead the partition (NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH) says,
// in the same answer, who does as far as it knows — the leader's id and
// epoch (CurrentLeader) and where it listens (NodeEndpoints) — so that
// the client goes there at once instead of asking for metadata first.
// franz-go moves the partition on the spot; without the hint it waits for
// its next metadata refresh, which it asks for at most every
// metadata.min.age (5 s).

// leaderHint is who leads a partition, by this broker's metadata, and
// where it listens.
type leaderHint struct {
	id, epoch int32
	host      string
	port      int32
	rack      *string
	known     bool // a live broker other than this one leads
}

// currentLeader is the hint for a partition: known only when another
// broker, alive, leads it in this broker's metadata. This broker need not
// hold a replica of it.
func (b *Broker) currentLeader(topic string, index int32) leaderHint {
	t := b.ctrl.Image().Topic(topic)
	if t == nil || index < 0 || int(index) >= len(t.Partitions) {
		return leaderHint{id: -1, epoch: -1}
	}
	leader, epoch := t.Partitions[index].Leader, t.Partitions[index].LeaderEpoch
	if leader < 0 || leader == b.cfg.NodeID {
		return leaderHint{id: -1, epoch: -1}
	}
	m, alive := b.members.Alive()[leader]
	if !alive {
		return leaderHint{id: -1, epoch: -1}
	}
	host, portText, err := net.SplitHostPort(m.Addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		return leaderHint{id: -1, epoch: -1}
	}
	h := leaderHint{id: leader, epoch: epoch, host: host, port: int32(port), known: true}
	if m.Rack != "" {
		rack := m.Rack
		h.rack = &rack
	}
	return h
}
