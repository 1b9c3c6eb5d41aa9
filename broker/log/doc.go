// Package log is a partition's commit log: an append-only sequence of Kafka
// v2 record batches, split into segment files, each with a sparse offset
// index and a time index, as Kafka keeps them on disk.
//
// The log assigns offsets, checks every batch's CRC-32C on append and on
// recovery, answers reads by offset, recovers after a crash by scanning only
// its last segment, and deletes or compacts old data by the topic's retention
// and cleanup policy. Lessons 01 (the commit log) and 02 (records and
// batches) are built from this package.
package log
