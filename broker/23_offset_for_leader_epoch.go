package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: where does a leader epoch end in this replica's
// log? A follower asks its leader before fetching, to find where its own
// log diverges and cut it there (KIP-101, KIP-279); a consumer asks after
// a leader change, to check that its position is still in the log
// (KIP-320).
//
// Behavior: the answer is the largest epoch at or below the one asked that
// the log has, and the offset where it ends: where the next epoch starts,
// or the log end offset for the latest epoch. An epoch older than any the
// log has is answered with epoch -1 and offset -1. Only the leader
// answers; current_leader_epoch is checked as Fetch checks it.
//
// Version notes: v1 adds the epoch to the answer, v2 the current leader
// epoch, v3 the replica id, v4 is flexible.
func init() { register(kmsg.OffsetForLeaderEpoch, 2, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			epoch, end, err := b.endOffsetForEpoch(rt.Topic, rp)
			sp.ErrorCode, sp.LeaderEpoch, sp.EndOffset = b.code(err), epoch, end
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) endOffsetForEpoch(topic string, rp kmsg.OffsetForLeaderEpochRequestTopicPartition) (int32, int64, error) {
	p, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return -1, -1, err
	}
	leader, epoch := p.isLeader()
	if !leader {
		return -1, -1, fmt.Errorf("%w: broker %d does not lead %s", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
	}
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch, epoch); err != nil {
		return -1, -1, err
	}
	e, end := p.log.EndOffsetForEpoch(rp.LeaderEpoch)
	return e, end, nil
}
