package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders: give partitions back to their preferred leaders, the first
// replica of each, as kafka-leader-election --election-type preferred
// does; or, with --election-type unclean, give a partition that has no
// leader to any live replica, in sync or not, accepting the loss of what
// that replica lacks. The controller does preferred elections by itself
// every leader.imbalance.check.interval.seconds when
// auto.leader.rebalance.enable is on; this asks for one now.
//
// Behavior: a broker that is not the active controller passes the request
// on to it (KIP-590); if it cannot, it answers NOT_CONTROLLER, at the top
// and for each partition asked for, as Kafka does: a client (franz-go's,
// for one) looks for it on the first partition to know it should find the
// controller again and retry. Each partition gets its own code:
// ELECTION_NOT_NEEDED when its preferred leader already leads (preferred)
// or it has a leader (unclean), PREFERRED_LEADER_NOT_AVAILABLE when that
// replica is dead or out of sync, ELIGIBLE_LEADERS_NOT_AVAILABLE when no
// replica is alive. A null topic list means every partition.
//
// Version notes: v1 adds the election type, v2 is flexible.
func init() { register(kmsg.ElectLeaders, 0, 2, handleElectLeaders) }

func handleElectLeaders(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			for _, rt := range req.Topics {
				st := kmsg.NewElectLeadersResponseTopic()
				st.Topic = rt.Topic
				for _, partition := range rt.Partitions {
					sp := kmsg.NewElectLeadersResponseTopicPartition()
					sp.Partition, sp.ErrorCode = partition, code
					st.Partitions = append(st.Partitions, sp)
				}
				resp.Topics = append(resp.Topics, st)
			}
			return resp
		})
	}
	elect := b.ctrl.ElectPreferred
	switch req.ElectionType {
	case 0:
	case 1:
		elect = b.ctrl.ElectUnclean
	default:
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	topics := req.Topics
	if topics == nil { // every partition of every topic
		for _, t := range b.ctrl.Image().SortedTopics() {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic = t.Name
			for i := range t.Partitions {
				rt.Partitions = append(rt.Partitions, int32(i))
			}
			topics = append(topics, rt)
		}
	}
	for _, rt := range topics {
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = rt.Topic
		for _, partition := range rt.Partitions {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition = partition
			err := elect(rt.Topic, partition)
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
