package consumer

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/consumer/assign"
)

// Config is a consumer's configuration. Set takes the Java client's names.
type Config struct {
	// BootstrapServers is bootstrap.servers.
	BootstrapServers []string
	// ClientID is client.id.
	ClientID string
	// AutoOffsetReset is auto.offset.reset: where to start a partition with
	// no valid position: "earliest", "latest" or "none" (Poll fails).
	AutoOffsetReset string
	// FetchMinBytes is fetch.min.bytes: the broker waits for this much data.
	FetchMinBytes int32
	// FetchMaxWait is fetch.max.wait.ms: how long it waits for it.
	FetchMaxWait time.Duration
	// FetchMaxBytes is fetch.max.bytes: the most one Fetch answer holds.
	FetchMaxBytes int32
	// MaxPartitionFetchBytes is max.partition.fetch.bytes: the most one
	// partition gives to one Fetch (but always one whole batch).
	MaxPartitionFetchBytes int32
	// MaxPollRecords is max.poll.records: the most records one Poll returns.
	MaxPollRecords int
	// RequestTimeout is request.timeout.ms.
	RequestTimeout time.Duration
	// RetryBackoff is retry.backoff.ms, between attempts after an error.
	RetryBackoff time.Duration

	// GroupID is group.id: the consumer group Subscribe joins, and the
	// group commits are made for. "" for none: then only Assign works.
	GroupID string
	// GroupInstanceID is group.instance.id, "" for a dynamic member. A
	// static member (KIP-345) keeps its place in the group across restarts:
	// it does not leave on Close, and the coordinator gives it its old
	// partitions back, with no rebalance, if it returns within the session
	// timeout.
	GroupInstanceID string
	// SessionTimeout is session.timeout.ms: the coordinator removes a
	// member it has not heard a heartbeat from for this long.
	SessionTimeout time.Duration
	// HeartbeatInterval is heartbeat.interval.ms: how often the heartbeat
	// goroutine tells the coordinator the member is alive, a third of the
	// session timeout or less, so that one lost heartbeat is not fatal.
	HeartbeatInterval time.Duration
	// MaxPollInterval is max.poll.interval.ms (KIP-62): a member that does
	// not call Poll for this long is stuck, and leaves the group so that
	// others take its partitions. It is also the rebalance timeout: how
	// long the coordinator waits for members to rejoin.
	MaxPollInterval time.Duration
	// EnableAutoCommit is enable.auto.commit: Poll commits the positions of
	// what it returned every AutoCommitInterval, and they are committed
	// again before partitions are revoked and on Close.
	EnableAutoCommit bool
	// AutoCommitInterval is auto.commit.interval.ms.
	AutoCommitInterval time.Duration
	// PartitionAssignmentStrategy is partition.assignment.strategy: the
	// assignors this member can run, preferred first ("range",
	// "roundrobin", "cooperative-sticky"). The coordinator picks, among the
	// assignors every member lists, the one most members prefer. The
	// rebalance is cooperative only if every
	// assignor listed is: the default list is eager, and lets a group move
	// to cooperative-sticky with one rolling restart that removes "range".
	PartitionAssignmentStrategy []string
	// Assignors are assignors of the application's own, which
	// PartitionAssignmentStrategy may name besides this package's, as the
	// Java client's partition.assignment.strategy takes a class: Kafka
	// Streams assigns tasks, not partitions, with one (package streams).
	Assignors []assign.Assignor

	// OnPartitionsAssigned is called from Poll after a rebalance with the
	// partitions it added to the assignment (all of them with an eager
	// assignor, only the new ones with a cooperative one), possibly none.
	// Their positions are the committed offsets: Seek here to start
	// elsewhere.
	OnPartitionsAssigned func([]TopicPartition)
	// OnPartitionsRevoked is called from Poll before the consumer gives
	// partitions up in a rebalance, and from Close: the last moment to
	// commit what was processed of them. With auto commit on, their
	// positions were just committed.
	OnPartitionsRevoked func([]TopicPartition)
	// OnPartitionsLost is called from Poll when the consumer learns its
	// partitions may already belong to others (KIP-429's onPartitionsLost):
	// its membership ended (session timeout, max.poll.interval.ms, fenced
	// generation) before it could revoke them, so committing them would
	// fail. Nil calls OnPartitionsRevoked instead, as the Java client does.
	OnPartitionsLost func([]TopicPartition)
}

// DefaultConfig is the Java client's defaults.
func DefaultConfig() Config {
	return Config{
		BootstrapServers:       []string{"127.0.0.1:9092"},
		ClientID:               "klab-consumer",
		AutoOffsetReset:        "latest",
		FetchMinBytes:          1,
		FetchMaxWait:           500 * time.Millisecond,
		FetchMaxBytes:          50 << 20,
		MaxPartitionFetchBytes: 1 << 20,
		MaxPollRecords:         500,
		RequestTimeout:         30 * time.Second,
		RetryBackoff:           100 * time.Millisecond,

		SessionTimeout:              45 * time.Second,
		HeartbeatInterval:           3 * time.Second,
		MaxPollInterval:             5 * time.Minute,
		EnableAutoCommit:            true,
		AutoCommitInterval:          5 * time.Second,
		PartitionAssignmentStrategy: []string{"range", "cooperative-sticky"},
	}
}

// Set applies one setting by the Java client's name for it.
func (c *Config) Set(name, value string) error {
	value = strings.TrimSpace(value)
	i32 := func(dst *int32) error {
		n, err := strconv.ParseInt(value, 10, 32)
		*dst = int32(n)
		return err
	}
	ms := func(dst *time.Duration) error {
		n, err := strconv.ParseInt(value, 10, 64)
		*dst = time.Duration(n) * time.Millisecond
		return err
	}
	var err error
	switch name {
	case "bootstrap.servers":
		c.BootstrapServers = strings.Split(value, ",")
	case "client.id":
		c.ClientID = value
	case "auto.offset.reset":
		if value != "earliest" && value != "latest" && value != "none" {
			err = fmt.Errorf("want earliest, latest or none")
		}
		c.AutoOffsetReset = value
	case "fetch.min.bytes":
		err = i32(&c.FetchMinBytes)
	case "fetch.max.wait.ms":
		err = ms(&c.FetchMaxWait)
	case "fetch.max.bytes":
		err = i32(&c.FetchMaxBytes)
	case "max.partition.fetch.bytes":
		err = i32(&c.MaxPartitionFetchBytes)
	case "max.poll.records":
		c.MaxPollRecords, err = strconv.Atoi(value)
	case "request.timeout.ms":
		err = ms(&c.RequestTimeout)
	case "retry.backoff.ms":
		err = ms(&c.RetryBackoff)
	case "group.id":
		c.GroupID = value
	case "group.instance.id":
		c.GroupInstanceID = value
	case "session.timeout.ms":
		err = ms(&c.SessionTimeout)
	case "heartbeat.interval.ms":
		err = ms(&c.HeartbeatInterval)
	case "max.poll.interval.ms":
		err = ms(&c.MaxPollInterval)
	case "enable.auto.commit":
		c.EnableAutoCommit, err = strconv.ParseBool(value)
	case "auto.commit.interval.ms":
		err = ms(&c.AutoCommitInterval)
	case "partition.assignment.strategy":
		c.PartitionAssignmentStrategy, err = assignorNames(value)
	default:
		return fmt.Errorf("unknown consumer config %q", name)
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}

// javaAssignors maps the Java client's assignor classes to the names
// their protocols go by, so that a Java configuration can be pasted in.
var javaAssignors = map[string]string{
	"org.apache.kafka.clients.consumer.RangeAssignor":             "range",
	"org.apache.kafka.clients.consumer.RoundRobinAssignor":        "roundrobin",
	"org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
}

// assignorNames reads partition.assignment.strategy: a comma-separated
// list of assignor names (or Java class names), each one this package has.
func assignorNames(value string) ([]string, error) {
	var names []string
	for _, name := range strings.Split(value, ",") {
		name = strings.TrimSpace(name)
		if java, ok := javaAssignors[name]; ok {
			name = java
		}
		if _, ok := assign.ByName(name); !ok {
			return nil, fmt.Errorf("unknown assignor %q: want range, roundrobin or cooperative-sticky", name)
		}
		names = append(names, name)
	}
	return names, nil
}
