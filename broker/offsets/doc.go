// Package offsets keeps consumer groups' committed offsets the way Kafka
// does: as records of the internal topic __consumer_offsets, in Kafka's own
// key and value formats, so that Kafka's tools can read them.
//
// A commit is a record keyed by (group, topic, partition) whose value is
// the offset the group will read next there, the leader epoch of the record
// before it, free-form metadata and the time of the commit. The topic is
// compacted: only the latest commit of each key is kept, and a tombstone (a
// key with no value) deletes it. Each group belongs to one partition of the
// topic, abs(javaStringHash(group)) % partitions (PartitionFor), and the
// leader of that partition is the group's coordinator: it appends the
// group's commits there, replicated like any record, and a broker that
// becomes leader replays the partition into a Store to learn them.
//
// The package is pure: it encodes and decodes records and keeps the
// replayed state; the broker reads and writes the log.
package offsets
