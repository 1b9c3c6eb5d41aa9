package offsets

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// Topic is the internal topic that holds committed offsets.
const Topic = "__consumer_offsets"

// PartitionFor is the partition of Topic that holds a group's offsets, and
// so whose leader coordinates the group: abs(hash) % partitions, where hash
// is Java's String.hashCode (31·h + c over the UTF-16 code units), so that
// the group lands where a Kafka broker would put it. Kafka's abs maps the
// one value without a positive counterpart, math.MinInt32, to 0.
func PartitionFor(group string, partitions int32) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(c)
	}
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// TopicPartition names a partition a group commits for.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Commit is one committed offset.
type Commit struct {
	// Offset is the next offset the group will read: one past the last
	// record it processed.
	Offset int64
	// LeaderEpoch is the leader epoch of the last record processed, -1 if
	// unknown: with it a consumer that resumes can tell whether the log was
	// truncated under it (KIP-320).
	LeaderEpoch int32
	// Metadata is whatever the committer attached (often empty).
	Metadata string
	// Time is when the coordinator took the commit; retention counts from it.
	Time time.Time
}

// Key versions, as Kafka numbers them: 0 and 1 are offset commits, 2 a
// group's metadata.
const (
	offsetCommitKeyVersion  = 1
	groupMetadataKeyVersion = 2
	// offsetCommitValueVersion 3 is the first with the leader epoch.
	offsetCommitValueVersion = 3
)

// CommitRecord is the record that stores c for a group's partition.
func CommitRecord(group string, tp TopicPartition, c Commit) log.Record {
	key := kmsg.NewOffsetCommitKey()
	key.Version, key.Group, key.Topic, key.Partition = offsetCommitKeyVersion, group, tp.Topic, tp.Partition
	value := kmsg.NewOffsetCommitValue()
	value.Version = offsetCommitValueVersion
	value.Offset, value.LeaderEpoch, value.Metadata = c.Offset, c.LeaderEpoch, c.Metadata
	value.CommitTimestamp = c.Time.UnixMilli()
	return log.Record{Timestamp: c.Time, Key: key.AppendTo(nil), Value: value.AppendTo(nil)}
}

// CommitTombstone is the record that deletes a group's commit for tp.
func CommitTombstone(group string, tp TopicPartition, now time.Time) log.Record {
	key := kmsg.NewOffsetCommitKey()
	key.Version, key.Group, key.Topic, key.Partition = offsetCommitKeyVersion, group, tp.Topic, tp.Partition
	return log.Record{Timestamp: now, Key: key.AppendTo(nil)}
}

// GroupTombstone is the record that deletes a group's metadata, written
// when the group is deleted, so that Kafka's tools reading the topic see it
// go.
func GroupTombstone(group string, now time.Time) log.Record {
	key := kmsg.NewGroupMetadataKey()
	key.Version, key.Group = groupMetadataKeyVersion, group
	return log.Record{Timestamp: now, Key: key.AppendTo(nil)}
}

// entry is a commit as the store holds it, with the log offset of the
// record that made it, so that commits applied out of log order (two
// writes whose acknowledgements raced) cannot let the older win.
type entry struct {
	Commit
	at      int64
	deleted bool // a tombstone: kept, while the store runs, to order later applies against
}

// Store is the committed offsets of the groups of one partition of Topic:
// what replaying its records gives. It is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	groups map[string]map[TopicPartition]entry
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{groups: make(map[string]map[TopicPartition]entry)}
}

// Apply takes one record of the topic, at its log offset. A record older
// than what the store already has for its key changes nothing. Records of
// kinds the store does not keep (group metadata) are skipped, as are key
// versions it does not know, as Kafka skips them; a record it cannot
// decode is an error.
func (s *Store) Apply(r log.Record) error {
	if len(r.Key) < 2 {
		return fmt.Errorf("offset %d: a key of %d bytes has no version", r.Offset, len(r.Key))
	}
	version := int16(r.Key[0])<<8 | int16(r.Key[1])
	if version > offsetCommitKeyVersion {
		return nil // group metadata (2), or a kind newer than klab
	}
	key := kmsg.NewOffsetCommitKey()
	if err := key.ReadFrom(r.Key); err != nil {
		return fmt.Errorf("offset %d: offset commit key: %w", r.Offset, err)
	}
	tp := TopicPartition{Topic: key.Topic, Partition: key.Partition}
	e := entry{at: r.Offset, deleted: r.Value == nil}
	if !e.deleted {
		value := kmsg.NewOffsetCommitValue()
		if err := value.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("offset %d: offset commit value: %w", r.Offset, err)
		}
		e.Commit = Commit{Offset: value.Offset, LeaderEpoch: value.LeaderEpoch, Metadata: value.Metadata, Time: time.UnixMilli(value.CommitTimestamp)}
		if value.Version < 3 {
			e.LeaderEpoch = -1
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	commits := s.groups[key.Group]
	if old, ok := commits[tp]; ok && old.at >= e.at {
		return nil
	}
	if commits == nil {
		commits = make(map[TopicPartition]entry)
		s.groups[key.Group] = commits
	}
	commits[tp] = e
	return nil
}

// Compact forgets tombstones, once the records are replayed in log order
// and nothing older can arrive: a store loaded from the log calls it at the
// end of the load.
func (s *Store) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for g, commits := range s.groups {
		for tp, e := range commits {
			if e.deleted {
				delete(commits, tp)
			}
		}
		if len(commits) == 0 {
			delete(s.groups, g)
		}
	}
}

// Committed returns a group's committed offsets.
func (s *Store) Committed(group string) map[TopicPartition]Commit {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[TopicPartition]Commit)
	for tp, e := range s.groups[group] {
		if !e.deleted {
			out[tp] = e.Commit
		}
	}
	return out
}

// Has reports whether the group has a committed offset.
func (s *Store) Has(group string) bool {
	return len(s.Committed(group)) > 0
}

// Groups returns the groups with a committed offset, sorted.
func (s *Store) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for g, commits := range s.groups {
		for _, e := range commits {
			if !e.deleted {
				out = append(out, g)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Expired returns a group's commits made before cutoff, sorted: with
// offsets.retention.minutes, a group without members loses the offsets it
// has not committed for that long.
func (s *Store) Expired(group string, cutoff time.Time) []TopicPartition {
	return OlderThan(s.Committed(group), cutoff)
}

// OlderThan returns the partitions of commits made before cutoff, sorted.
func OlderThan(commits map[TopicPartition]Commit, cutoff time.Time) []TopicPartition {
	var out []TopicPartition
	for _, tp := range Sorted(commits) {
		if commits[tp].Time.Before(cutoff) {
			out = append(out, tp)
		}
	}
	return out
}

// Sorted returns the partitions of commits by topic, then partition.
func Sorted(commits map[TopicPartition]Commit) []TopicPartition {
	out := make([]TopicPartition, 0, len(commits))
	for tp := range commits {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
