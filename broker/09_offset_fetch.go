package broker

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/offsets"
)

// OffsetFetch: a group's committed offsets, as a consumer reads them when
// it is given partitions, and as kafka-consumer-groups --describe shows
// them.
//
// Behavior: the coordinator errors of JoinGroup, for the group. A
// partition without a commit has offset -1 and no error (the consumer
// falls back on auto.offset.reset); no topics (null, v2+) means every
// partition the group committed for. Only acknowledged commits are seen:
// a commit is in the answer once every in-sync replica has it.
//
// Version notes: v1 reads what OffsetCommit v1+ wrote (v0 read ZooKeeper
// in old Kafka; here they are the same), v2 adds a group error code and
// "all topics", v3 the throttle time, v5 the leader epoch, v6 is flexible,
// v7 require_stable (KIP-447: only matters with transactions, which klab
// does not have yet), v8 many groups in one request.
func init() { register(kmsg.OffsetFetch, 0, 8, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.version >= 8 {
		for _, rg := range req.Groups {
			var asked []kmsg.OffsetFetchRequestTopic // the same shape before v8
			if rg.Topics != nil {
				asked = []kmsg.OffsetFetchRequestTopic{}
				for _, t := range rg.Topics {
					asked = append(asked, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			topics, code := b.fetchOffsets(rg.Group, asked)
			if code != 0 {
				topics = nil
			}
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group, sg.ErrorCode = rg.Group, code
			for _, t := range topics {
				st := kmsg.NewOffsetFetchResponseGroupTopic()
				st.Topic = t.Topic
				for _, p := range t.Partitions {
					sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
					st.Partitions = append(st.Partitions, sp)
				}
				sg.Topics = append(sg.Topics, st)
			}
			resp.Groups = append(resp.Groups, sg)
		}
		return resp, nil
	}
	topics, code := b.fetchOffsets(req.Group, req.Topics)
	resp.Topics, resp.ErrorCode = topics, code
	switch {
	case code != 0 && r.version < 2:
		// No group error code before v2: every partition carries it.
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				resp.Topics[i].Partitions[j].ErrorCode = code
			}
		}
	case code != 0:
		resp.Topics = nil // the group's error says it all, as in Kafka
	}
	return resp, nil
}

// fetchOffsets answers one group: the asked partitions (nil: every one
// with a commit), or the group's error code.
func (b *Broker) fetchOffsets(groupID string, asked []kmsg.OffsetFetchRequestTopic) ([]kmsg.OffsetFetchResponseTopic, int16) {
	// On an error the asked partitions are echoed without offsets, so that
	// a client before v2 sees the error on each (handleOffsetFetch keeps
	// them only there).
	op, err := b.coord.coordinating(groupID)
	var committed map[offsets.TopicPartition]offsets.Commit
	if err == nil {
		committed = op.store.Committed(groupID)
	}
	if err == nil && asked == nil {
		byTopic := map[string][]int32{}
		for tp := range committed {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		for topic, ps := range byTopic {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			asked = append(asked, kmsg.OffsetFetchRequestTopic{Topic: topic, Partitions: ps})
		}
		sort.Slice(asked, func(i, j int) bool { return asked[i].Topic < asked[j].Topic })
	}
	out := make([]kmsg.OffsetFetchResponseTopic, 0, len(asked))
	for _, t := range asked {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch = p, -1, -1
			sp.Metadata = kmsg.StringPtr("")
			if c, ok := committed[offsets.TopicPartition{Topic: t.Topic, Partition: p}]; ok {
				sp.Offset, sp.LeaderEpoch, sp.Metadata = c.Offset, c.LeaderEpoch, kmsg.StringPtr(c.Metadata)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out, b.code(err)
}
