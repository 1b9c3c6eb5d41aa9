package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Produce: the client sends record batches for partitions it believes this
// broker leads; the broker appends each partition's batches to its log and
// answers with the offset of the first record.
//
// Behavior: every partition gets its own error code, so one bad partition
// (unknown, a batch over max.message.bytes, a CRC mismatch) fails alone.
// acks=0 gets no response at all; acks=1 and acks=-1 (all) are answered
// once the batches are in the leader's log, which, with one broker and
// replication factor 1, is the whole in-sync replica set. acks=all fails
// with NOT_ENOUGH_REPLICAS when the in-sync replicas are fewer than the
// topic's min.insync.replicas.
//
// Version notes: v3 is the first to carry v2 record batches and the
// transactional id; v5 adds the log start offset to the response, v8 the
// error message, v9 is flexible.
func init() { register(kmsg.Produce, 3, 9, handleProduce) }

func handleProduce(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	appended := false
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			var base int64
			p, err := b.partitionOf(rt.Topic, rp.Partition)
			switch {
			case req.TransactionID != nil:
				err = fmt.Errorf("%w: transactions arrive in lesson 16", kerr.TransactionalIDAuthorizationFailed)
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				err = fmt.Errorf("%w: acks=%d; acks is 0, 1 or -1 (all)", kerr.InvalidRequiredAcks, req.Acks)
			case err == nil:
				base, err = b.producePartition(p, rp.Records, req.Acks)
			}
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			if err == nil {
				sp.BaseOffset = base
				sp.LogStartOffset = p.log.StartOffset()
				appended = true
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if appended {
		b.notifyAppend()
	}
	if req.Acks == 0 {
		return nil, nil // the client asked for no answer
	}
	return resp, nil
}

// producePartition appends a partition's record batches to its log and
// returns the offset the log gave the first record.
func (b *Broker) producePartition(p *partition, records []byte, acks int16) (int64, error) {
	//klab:lesson 03 begin (*Broker).producePartition
	if acks == -1 {
		// With one broker the in-sync replica set is the leader alone.
		inSync, minInSync := int64(1), b.cfg.intConfig(p.topic.configs, "min.insync.replicas")
		if inSync < minInSync {
			return 0, fmt.Errorf("%w: %d in-sync replica, min.insync.replicas is %d", kerr.NotEnoughReplicas, inSync, minInSync)
		}
	}
	return p.log.Append(records)
	//klab:lesson 03 stub
	// return 0, lessons.Todo("03", "(*Broker).producePartition")
	//klab:lesson 03 end
}
