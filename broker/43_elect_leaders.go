package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectLeaders: give partitions back to their preferred leaders, the first
// replica of each, as kafka-leader-election --election-type preferred
// does. The controller does it by itself every
// leader.imbalance.check.interval.seconds when auto.leader.rebalance.enable
// is on; this asks for it now.
//
// Behavior: only the active controller answers; any other broker answers
// NOT_CONTROLLER, at the top and for each partition asked for, as Kafka
// does: a client (franz-go's, for one) looks for it on the first
// partition to know it should find the controller again and retry.
// Each partition gets its own code: ELECTION_NOT_NEEDED when
// its preferred leader already leads, PREFERRED_LEADER_NOT_AVAILABLE when
// that replica is dead or out of sync. A null topic list means every
// partition. Unclean elections (election type 1) are not offered.
//
// Version notes: v1 adds the election type, v2 is flexible.
func init() { register(kmsg.ElectLeaders, 0, 2, handleElectLeaders) }

func handleElectLeaders(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ElectLeadersRequest)
	resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
	if !b.ctrl.Active() {
		resp.ErrorCode = kerr.NotController.Code
		for _, rt := range req.Topics {
			st := kmsg.NewElectLeadersResponseTopic()
			st.Topic = rt.Topic
			for _, partition := range rt.Partitions {
				sp := kmsg.NewElectLeadersResponseTopicPartition()
				sp.Partition, sp.ErrorCode = partition, kerr.NotController.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	if req.ElectionType != 0 {
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
			err := b.ctrl.ElectPreferred(rt.Topic, partition)
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
