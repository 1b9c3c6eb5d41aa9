package broker

import (
	"context"
	"path/filepath"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeLogDirs: the broker's log directories and the partition replicas
// in each, as kafka-log-dirs.sh --describe shows them, and as tools that
// balance disks read them.
//
// Behavior: klab has one log directory, log.dirs (its absolute path, as
// Kafka reports it), holding every replica the broker has. For each
// replica asked for (null topics: all; a replica the broker does not hold
// is left out, as Kafka leaves it out), its size in bytes (every segment
// file) and its offset lag: 0 on the leader; on a follower, how far its
// log end is behind the leader's high watermark as the leader last
// reported it (see partition.offsetLag). is_future is always false: klab
// does not move replicas between directories (KIP-113).
//
// Version notes: v1 is v0 (a throttle change), v2 is flexible, v3 adds a
// top-level error code, v4 the directory's filesystem's total and usable
// bytes (-1 where the platform cannot tell).
func init() { register(kmsg.DescribeLogDirs, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir = b.logDir()
	d.Topics = b.describeReplicas(replicaFilter(req.Topics))
	if r.version >= 4 {
		d.TotalBytes, d.UsableBytes = diskSpace(d.Dir)
	}
	resp.Dirs = append(resp.Dirs, d)
	return resp, nil
}

// logDir is log.dirs as an absolute path.
func (b *Broker) logDir() string {
	if dir, err := filepath.Abs(b.cfg.DataDir); err == nil {
		return dir
	}
	return b.cfg.DataDir
}

// replicaFilter turns the topics a DescribeLogDirs asks for into a set,
// nil for all. A request may name a partition twice; the answer names it
// once.
func replicaFilter(topics []kmsg.DescribeLogDirsRequestTopic) map[string]map[int32]bool {
	if topics == nil {
		return nil
	}
	filter := make(map[string]map[int32]bool, len(topics))
	for _, t := range topics {
		if filter[t.Topic] == nil {
			filter[t.Topic] = map[int32]bool{}
		}
		for _, p := range t.Partitions {
			filter[t.Topic][p] = true
		}
	}
	return filter
}

// describeReplicas describes the replicas this broker holds that filter
// names (all when filter is nil), by topic name and partition.
func (b *Broker) describeReplicas(filter map[string]map[int32]bool) []kmsg.DescribeLogDirsResponseDirTopic {
	var out []kmsg.DescribeLogDirsResponseDirTopic
	for _, t := range b.heldTopics() {
		st := kmsg.NewDescribeLogDirsResponseDirTopic()
		st.Topic = t.name
		for _, p := range t.partitions {
			if p == nil || (filter != nil && !filter[t.name][p.index]) {
				continue
			}
			sp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			sp.Partition, sp.Size, sp.OffsetLag = p.index, p.log.Size(), p.offsetLag()
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			out = append(out, st)
		}
	}
	return out
}

// heldTopic is a topic this broker holds replicas of, as it was when
// heldTopics looked.
type heldTopic struct {
	name       string
	partitions []*partition
}

// heldTopics lists the topics this broker holds replicas of, by name,
// each with its partitions as they are now: the caller reads them without
// b.mu.
func (b *Broker) heldTopics() []heldTopic {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]heldTopic, 0, len(b.topics))
	for name, t := range b.topics {
		out = append(out, heldTopic{name: name, partitions: slices.Clone(t.partitions)})
	}
	slices.SortFunc(out, func(x, y heldTopic) int {
		if x.name < y.name {
			return -1
		}
		if x.name > y.name {
			return 1
		}
		return 0
	})
	return out
}
