package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// AlterPartition: a partition's leader asks the active controller to change
// its ISR: to drop a follower that has fallen behind for
// replica.lag.time.max.ms, or to add one that caught up (KIP-497). The
// leader never changes the ISR itself; the controller writes the change to
// the metadata log, and every broker, the leader included, learns it there.
//
// Behavior: a broker that is not the active controller forwards the
// request to it and relays the answer, so that a leader cut off from the
// controller, but not from every broker, can still shrink its ISR (Kafka's
// brokers reach the controller quorum directly; here every broker is in
// it). A forwarded request is not forwarded again: NOT_CONTROLLER. It is
// refused with NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH from a broker that no
// longer leads, INVALID_UPDATE_VERSION when the partition changed since the
// leader saw it, INELIGIBLE_REPLICA for a broker that is not alive. The
// partition's state after the request is in the answer.
//
// Only brokers send it: ApiVersions does not list it to clients
// (registerBetweenBrokers).
//
// Version notes: v1 adds the leader recovery state, v2 names topics by id,
// v3 carries each new ISR member's broker epoch (KIP-903).
func init() { registerBetweenBrokers(kmsg.AlterPartition, 0, 3, handleAlterPartition) }

func handleAlterPartition(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			return resp
		})
	}
	im := b.ctrl.Image()
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID
		name := rt.Topic
		if r.version >= 2 {
			if t := im.TopicByID(rt.TopicID); t != nil {
				name = t.Name
			}
		}
		for _, rp := range rt.Partitions {
			isr := rp.NewISR
			if r.version >= 3 {
				isr = nil
				for _, m := range rp.NewEpochISR {
					isr = append(isr, m.BrokerID)
				}
			}
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			var p metadata.Partition
			var err error
			if name == "" {
				err = fmt.Errorf("%w: no topic with id %x", kerr.UnknownTopicID, rt.TopicID)
			} else {
				p, err = b.ctrl.AlterPartition(req.BrokerID, name, rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch, isr)
			}
			sp.ErrorCode = b.code(err)
			sp.LeaderID, sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch = p.Leader, p.LeaderEpoch, p.ISR, p.PartitionEpoch
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
