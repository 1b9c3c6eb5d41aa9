package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LogDir is one log directory of one broker (Kafka's log.dirs; a klab
// broker has one, its data directory).
type LogDir struct {
	Broker int32
	Dir    string
	// Err is the directory's error, KAFKA_STORAGE_ERROR for a failed disk.
	Err error
	// TotalBytes and UsableBytes are the disk's size and free space, or -1
	// when the broker does not say.
	TotalBytes, UsableBytes int64
	Partitions              []LogDirPartition
}

// LogDirPartition is one partition's log in a log directory.
type LogDirPartition struct {
	TopicPartition
	// Size is the bytes of the partition's segments on disk.
	Size int64
	// OffsetLag is how far this replica is behind the partition's log end
	// (0 on the leader, and on a follower that has caught up).
	OffsetLag int64
	// IsFuture marks a copy being moved to this directory from another
	// directory of the same broker (kafka-reassign-partitions'
	// --replica-log-dirs moves).
	IsFuture bool
}

// DescribeLogDirs describes the log directories of the given brokers, or of
// every broker when none is given: each broker knows only its own disks,
// so each is asked in turn. A broker that cannot be asked gets a LogDir
// with only its error, and that error is in the one returned.
func (c *Client) DescribeLogDirs(ctx context.Context, brokers ...int32) ([]LogDir, error) {
	if len(brokers) == 0 {
		d, err := c.DescribeCluster(ctx)
		if err != nil {
			return nil, err
		}
		for _, b := range d.Brokers {
			brokers = append(brokers, b.ID)
		}
	}
	var out []LogDir
	var errs []error
	for _, id := range brokers {
		dirs, err := c.describeLogDirs(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", id, err))
			dirs = []LogDir{{Broker: id, Err: err}}
		}
		out = append(out, dirs...)
	}
	return out, errors.Join(errs...)
}

// describeLogDirs asks one broker for its log directories.
func (c *Client) describeLogDirs(ctx context.Context, broker int32) ([]LogDir, error) {
	var dirs []LogDir
	err := c.retry(ctx, func(ctx context.Context) error {
		conn, err := c.brokerConn(ctx, broker)
		if err != nil {
			return err
		}
		req := kmsg.NewPtrDescribeLogDirsRequest() // no topics: every partition
		resp, err := request[*kmsg.DescribeLogDirsResponse](ctx, conn, req)
		if err != nil {
			return err
		}
		if err := kafkaError(resp.ErrorCode, nil); err != nil {
			return err
		}
		dirs = nil
		for _, d := range resp.Dirs {
			dirs = append(dirs, logDirOf(broker, d))
		}
		return nil
	})
	return dirs, err
}

// logDirOf turns one directory of a DescribeLogDirs answer into a LogDir,
// its partitions in order.
func logDirOf(broker int32, d kmsg.DescribeLogDirsResponseDir) LogDir {
	ld := LogDir{Broker: broker, Dir: d.Dir, Err: kafkaError(d.ErrorCode, nil), TotalBytes: d.TotalBytes, UsableBytes: d.UsableBytes}
	for _, t := range d.Topics {
		for _, p := range t.Partitions {
			ld.Partitions = append(ld.Partitions, LogDirPartition{
				TopicPartition: TopicPartition{Topic: t.Topic, Partition: p.Partition},
				Size:           p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture,
			})
		}
	}
	slices.SortFunc(ld.Partitions, func(a, b LogDirPartition) int { return compareTP(a.TopicPartition, b.TopicPartition) })
	return ld
}

// compareTP orders partitions by topic, then number.
func compareTP(a, b TopicPartition) int {
	if a.Topic != b.Topic {
		if a.Topic < b.Topic {
			return -1
		}
		return 1
	}
	return int(a.Partition - b.Partition)
}
