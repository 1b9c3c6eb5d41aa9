package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers: what a partition's leader knows of the idempotent
// producers writing to it (KIP-664): for each producer id, its epoch, the
// last sequence it wrote and when. kafka-transactions.sh describe-producers
// sends it; here it shows the state the leader checks every idempotent
// batch against (lesson 09).
//
// Behavior: answered by the partition's leader only; another broker
// answers NOT_LEADER_OR_FOLLOWER, an unknown partition
// UNKNOWN_TOPIC_OR_PARTITION. Transactions arrive in lesson 16, so the
// coordinator epoch and the open transaction's start offset are -1.
func init() { register(kmsg.DescribeProducers, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, index := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = index
			p, err := b.partitionOf(rt.Topic, index)
			if err == nil {
				if leader, _ := p.isLeader(); !leader {
					err = fmt.Errorf("%w: broker %d does not lead %s", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
				}
			}
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			if err == nil {
				for _, pr := range p.log.Producers() {
					last := pr.Last()
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch = pr.ID, int32(pr.Epoch)
					ap.LastSequence, ap.LastTimestamp = last.LastSequence, last.Timestamp
					ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
