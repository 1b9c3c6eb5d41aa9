package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/offsets"
)

// offsetMetadataMaxBytes is offset.metadata.max.bytes: the most metadata a
// commit may carry.
const offsetMetadataMaxBytes = 4096

// OffsetCommit: a group stores, for each partition, the offset it will
// read next. Consumers commit as they go (enable.auto.commit, or by hand),
// and a member that takes a partition over starts where the group left
// it.
//
// Behavior: the coordinator errors of JoinGroup, for every partition. The
// committer must be a current member of the current generation, or a
// client outside group management (generation -1, no member id) while the
// group has no members (group.ValidateCommit says why). A partition of a
// topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION, metadata over
// offset.metadata.max.bytes OFFSET_METADATA_TOO_LARGE; the rest are
// written together to the group's partition of __consumer_offsets and
// answered once every in-sync replica has them (COORDINATOR_NOT_AVAILABLE
// if that takes over 5 s).
//
// Version notes: v1 adds the generation and member id (and a commit
// timestamp, ignored: the coordinator stamps the time), v2–v4 a retention
// time (klab ignores it: offsets.retention.minutes applies; Kafka still
// honours one that is not -1), v3 the throttle time, v6 the leader epoch of the committed
// position, v7 group.instance.id, v8 is flexible.
func init() { register(kmsg.OffsetCommit, 0, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics)) // by topic, by partition
	for i, rt := range req.Topics {
		codes[i] = make([]int16, len(rt.Partitions))
	}
	if r.version == 0 {
		req.Generation = -1 // v0 is a commit outside group management
	}
	err := b.commitOffsets(ctx, req, codes)
	for i, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for j, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = codes[i][j]
			if err != nil && sp.ErrorCode == 0 {
				sp.ErrorCode = b.code(err)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// commitOffsets checks the committer and writes the partitions it may
// commit; codes gets each partition's own error, the result is the error
// of every partition without one.
func (b *Broker) commitOffsets(ctx context.Context, req *kmsg.OffsetCommitRequest, codes [][]int16) error {
	op, err := b.coord.coordinating(req.Group)
	if err != nil {
		return err
	}
	g, ok := b.coord.groups.Lookup(req.Group)
	if !ok && req.Generation < 0 {
		// A commit from outside group management makes the group, Empty,
		// as in Kafka (the coordinator forgets it again if it ends up
		// with no offsets).
		g, ok = b.coord.groups.Group(req.Group), true
	}
	if ok {
		err = g.ValidateCommit(req.MemberID, deref(req.InstanceID), req.Generation)
		if err == nil && req.MemberID != "" {
			// A member's commit proves it alive, as a heartbeat does (Kafka's
			// classic coordinator counts it as one).
			_ = g.Heartbeat(req.MemberID, deref(req.InstanceID), req.Generation)
		}
	} else {
		// The group is not here (a failover lost it, or it was removed):
		// the committer's generation is over. It joins again.
		err = fmt.Errorf("%w: group %q has no generation %d here", kerr.IllegalGeneration, req.Group, req.Generation)
	}
	if err != nil {
		return err
	}
	now := time.Now()
	im := b.ctrl.Image()
	commits := map[offsets.TopicPartition]offsets.Commit{}
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			switch _, exists := im.Partition(rt.Topic, rp.Partition); {
			case !exists:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > offsetMetadataMaxBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				c := offsets.Commit{Offset: rp.Offset, LeaderEpoch: -1, Metadata: deref(rp.Metadata), Time: now}
				if req.Version >= 6 {
					c.LeaderEpoch = rp.LeaderEpoch
				}
				commits[offsets.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = c
			}
		}
	}
	if len(commits) == 0 {
		return nil
	}
	return b.coord.commit(ctx, op, req.Group, commits)
}
