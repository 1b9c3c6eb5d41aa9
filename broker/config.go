package broker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/group"
)

// Config is a broker's configuration. Set takes Kafka's names for it, as a
// server.properties file has them.
type Config struct {
	// NodeID is node.id (broker.id before KRaft): the broker's number in the cluster.
	NodeID int32
	// Listen is the address the broker listens on, host:port (from
	// listeners, e.g. PLAINTEXT://127.0.0.1:9092).
	Listen string
	// Advertised is the address clients are told to use (from
	// advertised.listeners); Listen's, with the port it got, if empty.
	Advertised string
	// DataDir is log.dirs: where partitions keep their logs.
	DataDir string
	// Rack is broker.rack: replicas of a partition are placed on distinct
	// racks, and a consumer with the same client.rack reads from the
	// replica in its rack (KIP-392).
	Rack string
	// Console is the host:port the broker's web console and its Prometheus
	// /metrics listen on (HTTP); empty for none. Port 0 picks a free one.
	// Loopback unless the user asks otherwise, as for Listen.
	Console string

	// ReplicaSelector is replica.selector.class: set to
	// org.apache.kafka.common.replica.RackAwareReplicaSelector, a leader
	// sends consumers to the replica in their client.rack (KIP-392).
	ReplicaSelector string

	// Gossip is the host:port the broker gossips on (UDP and TCP), to find
	// the other brokers and notice when one dies. Port 0 picks a free one.
	Gossip string
	// Seeds are other brokers' gossip addresses. A new cluster forms once
	// this broker and every seed have found each other; with no seeds the
	// broker is a cluster of one.
	Seeds []string

	// ReplicaLagTimeMax is replica.lag.time.max.ms: a follower that has
	// not caught up with the leader's log end for this long leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// ReplicaFetchWaitMax is replica.fetch.wait.max.ms: how long a
	// follower's fetch waits at the leader for new records.
	ReplicaFetchWaitMax time.Duration
	// AutoLeaderRebalance is auto.leader.rebalance.enable: give leadership
	// back to preferred leaders, checked every LeaderImbalanceCheckInterval
	// (leader.imbalance.check.interval.seconds).
	AutoLeaderRebalance          bool
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is
	// leader.imbalance.per.broker.percentage: the automatic rebalance
	// gives a broker back the leadership of its partitions only once more
	// than this share of those it is the preferred leader of are led by
	// others (10%), so that leadership does not move back and forth for one
	// partition at a time.
	LeaderImbalancePerBrokerPercentage int
	// QuorumVoters is controller.quorum.voters, "1@host:port,2@host:port,...":
	// the brokers that form the metadata quorum (KRaft's controllers), by
	// node id and listener address. Any minority of them may be down; other
	// brokers are observers, which receive the metadata log but do not
	// vote. Empty: the first brokers to find each other (every seed) are
	// the voters.
	QuorumVoters string
	// ElectionTimeout is how long the metadata quorum waits for its leader
	// before electing another (klab's; KRaft's is
	// controller.quorum.election.timeout.ms). Default 500ms; alone, a
	// broker has no one to wait for and uses 50ms.
	ElectionTimeout time.Duration
	// StartTimeout bounds how long Start waits for the cluster to form.
	StartTimeout time.Duration
	// ControlledShutdownTimeout bounds how long Close waits for the
	// controller to move this broker's partitions before it stops anyway
	// (klab's; a KRaft broker waits for as long as it takes). Default 30s.
	ControlledShutdownTimeout time.Duration

	// Listener, when set, is used instead of listening on Listen.
	Listener net.Listener
	// GossipListener and GossipPacketConn, when set, are the TCP listener
	// and the UDP socket bound to Gossip (membership.HoldLoopback), used
	// instead of binding it: whoever chose the port has held it since.
	GossipListener   net.Listener
	GossipPacketConn net.PacketConn
	// Network, when set, carries the broker's traffic to its peers: tests
	// use a faulty one (package faultnet) to cut and pause brokers.
	Network Network

	// AutoCreateTopics is auto.create.topics.enable. Kafka's default is
	// true; klab's is false, so a typo in a topic name is an error and not
	// a new topic.
	AutoCreateTopics bool
	// NumPartitions is num.partitions, for topics created without a count.
	NumPartitions int32
	// DefaultReplicationFactor is default.replication.factor.
	DefaultReplicationFactor int16
	// SocketRequestMaxBytes is socket.request.max.bytes: a larger request
	// closes the connection before anything is allocated for it. A request
	// within it is read into a buffer that grows as its bytes arrive, so
	// declaring a size costs nothing until the bytes come.
	SocketRequestMaxBytes int32
	// QueuedMaxRequestBytes is queued.max.request.bytes: the bytes of
	// requests read, or being read, but not yet handled that the broker
	// holds at once, across all connections. A connection whose request
	// does not fit stops reading until it does (requestBudget). Kafka's
	// default is -1, no limit; klab's is 200 MiB, twice
	// socket.request.max.bytes, so that clients, hostile or just many,
	// cannot make the broker hold more than that of requests, plus the one
	// request allowed to overdraw it (a request of the largest size still
	// leaves as much again for the others). The process itself may grow to
	// about twice what it holds: the garbage collector lets that much
	// garbage build up before it runs (GOGC). -1 (any negative value) is
	// Kafka's no limit.
	QueuedMaxRequestBytes int64
	// ConnectionsMaxIdle is connections.max.idle.ms (10 minutes, as
	// Kafka's): a client connection on which no byte of a request arrives
	// for this long is closed. Kafka's clients close their own idle
	// connections sooner (their connections.max.idle.ms is 9 minutes), so
	// this catches only the ones that forgot, or never sent anything.
	ConnectionsMaxIdle time.Duration
	// ResponseWriteTimeout is how long writing a response may make no
	// progress before the connection is closed (klab's; default 30 s).
	// Kafka has no such setting: a connection whose client stops reading
	// stops being read too, and is closed once idle for
	// connections.max.idle.ms. klab closes it sooner, because the
	// responses it waits to send (a Fetch's may be tens of megabytes) are
	// held in memory meanwhile. 30 s is a client's own request.timeout.ms:
	// a client that has taken no byte of a response for that long has given
	// up on the request and will close the connection anyway.
	ResponseWriteTimeout time.Duration
	// RetentionCheckInterval is log.retention.check.interval.ms: how often
	// retention, compaction and the expiry of idle producers run.
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration is producer.id.expiration.ms: a partition forgets
	// an idempotent producer that has written nothing to it for this long.
	// Default 1 day. Checked every RetentionCheckInterval (Kafka has its own
	// producer.id.expiration.check.interval.ms, 10 minutes).
	ProducerIDExpiration time.Duration

	// Groups are the group coordinator's settings: group.min.session.timeout.ms
	// (6 s), group.max.session.timeout.ms (30 min),
	// group.initial.rebalance.delay.ms (3 s; a Config built field by field
	// without DefaultConfig has none) and group.max.size (no limit).
	Groups group.Config
	// OffsetsTopicPartitions is offsets.topic.num.partitions: how many
	// partitions __consumer_offsets is created with (50). Groups are spread
	// over them, and so over their leaders, the coordinators.
	OffsetsTopicPartitions int32
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor (3),
	// capped at the cluster's size when the topic is created.
	OffsetsTopicReplicationFactor int16
	// OffsetsRetention is offsets.retention.minutes (7 days, KIP-186): a
	// group without members loses the offsets it has not committed for
	// this long. Checked every OffsetsRetentionCheckInterval
	// (offsets.retention.check.interval.ms, 10 minutes).
	OffsetsRetention              time.Duration
	OffsetsRetentionCheckInterval time.Duration

	// Logger receives what the broker has to say: errors a client sees only
	// as an error code, and why a connection was closed. Default slog.Default().
	Logger *slog.Logger

	// TopicDefaults are the broker-level defaults of topic configs, by the
	// topic config's name (retention.ms, not log.retention.ms).
	TopicDefaults map[string]string
}

// Network is what a broker needs of a network to reach its peers.
// *faultnet.Node is one; without it the broker uses the real one.
type Network interface {
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	Listener(net.Listener) net.Listener
	Transport(memberlist.Transport) memberlist.Transport
}

// DefaultConfig is a broker's configuration before any setting.
func DefaultConfig() Config {
	return Config{
		NodeID:                   1,
		Listen:                   "127.0.0.1:9092",
		DataDir:                  "klab-data",
		NumPartitions:            1,
		DefaultReplicationFactor: 1,
		SocketRequestMaxBytes:    100 << 20,
		QueuedMaxRequestBytes:    200 << 20,
		ConnectionsMaxIdle:       10 * time.Minute,
		ResponseWriteTimeout:     30 * time.Second,
		RetentionCheckInterval:   5 * time.Minute,
		ProducerIDExpiration:     24 * time.Hour,
		TopicDefaults:            map[string]string{},

		Groups:                        group.DefaultConfig(),
		OffsetsTopicPartitions:        50,
		OffsetsTopicReplicationFactor: 3,
		OffsetsRetention:              7 * 24 * time.Hour,
		OffsetsRetentionCheckInterval: 10 * time.Minute,

		ReplicaLagTimeMax:                  30 * time.Second,
		ReplicaFetchWaitMax:                500 * time.Millisecond,
		AutoLeaderRebalance:                true,
		LeaderImbalanceCheckInterval:       300 * time.Second,
		LeaderImbalancePerBrokerPercentage: 10,
		StartTimeout:                       2 * time.Minute,
		ControlledShutdownTimeout:          30 * time.Second,
	}
}

// fillDefaults gives zero fields DefaultConfig's values, so that a Config
// built field by field works.
func (c *Config) fillDefaults() {
	d := DefaultConfig()
	if c.TopicDefaults == nil {
		c.TopicDefaults = map[string]string{}
	}
	if c.RetentionCheckInterval <= 0 {
		c.RetentionCheckInterval = d.RetentionCheckInterval
	}
	if c.ControlledShutdownTimeout <= 0 {
		c.ControlledShutdownTimeout = d.ControlledShutdownTimeout
	}
	if c.ProducerIDExpiration <= 0 {
		c.ProducerIDExpiration = d.ProducerIDExpiration
	}
	if c.SocketRequestMaxBytes <= 0 {
		c.SocketRequestMaxBytes = d.SocketRequestMaxBytes
	}
	if c.QueuedMaxRequestBytes == 0 {
		c.QueuedMaxRequestBytes = d.QueuedMaxRequestBytes
	}
	if c.ConnectionsMaxIdle <= 0 {
		c.ConnectionsMaxIdle = d.ConnectionsMaxIdle
	}
	if c.ResponseWriteTimeout <= 0 {
		c.ResponseWriteTimeout = d.ResponseWriteTimeout
	}
	if c.NumPartitions <= 0 {
		c.NumPartitions = d.NumPartitions
	}
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = d.DefaultReplicationFactor
	}
	if c.ReplicaLagTimeMax <= 0 {
		c.ReplicaLagTimeMax = d.ReplicaLagTimeMax
	}
	if c.ReplicaFetchWaitMax <= 0 {
		c.ReplicaFetchWaitMax = d.ReplicaFetchWaitMax
	}
	if c.LeaderImbalanceCheckInterval <= 0 {
		c.LeaderImbalanceCheckInterval = d.LeaderImbalanceCheckInterval
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = d.StartTimeout
	}
	if c.Groups.MinSessionTimeout <= 0 {
		c.Groups.MinSessionTimeout = d.Groups.MinSessionTimeout
	}
	if c.Groups.MaxSessionTimeout <= 0 {
		c.Groups.MaxSessionTimeout = d.Groups.MaxSessionTimeout
	}
	if c.Groups.Now == nil {
		c.Groups.Now = time.Now
	}
	if c.OffsetsTopicPartitions <= 0 {
		c.OffsetsTopicPartitions = d.OffsetsTopicPartitions
	}
	if c.OffsetsTopicReplicationFactor <= 0 {
		c.OffsetsTopicReplicationFactor = d.OffsetsTopicReplicationFactor
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = d.OffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		c.OffsetsRetentionCheckInterval = d.OffsetsRetentionCheckInterval
	}
	if c.Gossip == "" {
		host, _, err := net.SplitHostPort(c.Listen)
		if err != nil || host == "" {
			host = "127.0.0.1"
		}
		c.Gossip = net.JoinHostPort(host, "0")
	}
	if c.ElectionTimeout <= 0 && len(c.Seeds) == 0 {
		c.ElectionTimeout = 50 * time.Millisecond
	}
}

// brokerTopicConfigs maps broker config names to the topic configs they
// give a default for, as Kafka's log.* settings do.
var brokerTopicConfigs = map[string]string{
	"log.retention.ms":                "retention.ms",
	"log.retention.bytes":             "retention.bytes",
	"log.segment.bytes":               "segment.bytes",
	"log.index.interval.bytes":        "index.interval.bytes",
	"log.cleanup.policy":              "cleanup.policy",
	"log.cleaner.delete.retention.ms": "delete.retention.ms",
	"message.max.bytes":               "max.message.bytes",
	"min.insync.replicas":             "min.insync.replicas",
	"unclean.leader.election.enable":  "unclean.leader.election.enable",
}

// errUnknownBrokerConfig is Set's error for a name it does not know, as
// opposed to a bad value: dynamic configs (dynamic_config.go) tell an
// unknown name from a static config by it.
var errUnknownBrokerConfig = errors.New("unknown broker config")

// Set applies one setting by its Kafka name.
func (c *Config) Set(name, value string) error {
	value = strings.TrimSpace(value)
	var err error
	switch name {
	case "node.id", "broker.id":
		err = parseInt32(value, &c.NodeID)
	case "listeners":
		c.Listen, err = listenerAddress(value)
	case "advertised.listeners":
		c.Advertised, err = listenerAddress(value)
	case "log.dirs", "log.dir":
		c.DataDir = strings.Split(value, ",")[0]
	case "broker.rack":
		c.Rack = value
	case "replica.selector.class":
		c.ReplicaSelector = value
	case "replica.lag.time.max.ms":
		c.ReplicaLagTimeMax, err = parseMillis(value)
	case "replica.fetch.wait.max.ms":
		c.ReplicaFetchWaitMax, err = parseMillis(value)
	case "auto.leader.rebalance.enable":
		c.AutoLeaderRebalance, err = strconv.ParseBool(value)
	case "leader.imbalance.per.broker.percentage":
		var n int32
		if err = parseInt32(value, &n); err == nil && (n < 0 || n > 100) {
			err = fmt.Errorf("%d is not a percentage", n)
		}
		c.LeaderImbalancePerBrokerPercentage = int(n)
	case "controller.quorum.voters":
		if _, err = controller.ParseVoters(value); err == nil {
			c.QuorumVoters = value
		}
	case "leader.imbalance.check.interval.seconds":
		var d time.Duration
		if d, err = parseMillis(value); err == nil {
			c.LeaderImbalanceCheckInterval = d * 1000
		}
	case "auto.create.topics.enable":
		c.AutoCreateTopics, err = strconv.ParseBool(value)
	case "num.partitions":
		err = parseInt32(value, &c.NumPartitions)
	case "default.replication.factor":
		var n int32
		err = parseInt32(value, &n)
		c.DefaultReplicationFactor = int16(n)
	case "socket.request.max.bytes":
		err = parseInt32(value, &c.SocketRequestMaxBytes)
	case "queued.max.request.bytes":
		if c.QueuedMaxRequestBytes, err = strconv.ParseInt(value, 10, 64); err == nil && c.QueuedMaxRequestBytes == 0 {
			err = fmt.Errorf("must be positive, or -1 for no limit")
		}
	case "connections.max.idle.ms":
		c.ConnectionsMaxIdle, err = parseMillis(value)
	case "log.retention.check.interval.ms":
		c.RetentionCheckInterval, err = parseMillis(value)
	case "producer.id.expiration.ms":
		c.ProducerIDExpiration, err = parseMillis(value)
	case "group.min.session.timeout.ms":
		c.Groups.MinSessionTimeout, err = parseMillis(value)
	case "group.max.session.timeout.ms":
		c.Groups.MaxSessionTimeout, err = parseMillis(value)
	case "group.initial.rebalance.delay.ms":
		c.Groups.InitialRebalanceDelay, err = parseMillisOrZero(value)
	case "group.max.size":
		var n int32
		err = parseInt32(value, &n)
		c.Groups.MaxSize = int(n)
	case "offsets.topic.num.partitions":
		err = parseInt32(value, &c.OffsetsTopicPartitions)
	case "offsets.topic.replication.factor":
		var n int32
		err = parseInt32(value, &n)
		c.OffsetsTopicReplicationFactor = int16(n)
	case "offsets.retention.minutes":
		var n int64
		if n, err = strconv.ParseInt(value, 10, 64); err == nil {
			c.OffsetsRetention = time.Duration(n) * time.Minute
		}
	case "offsets.retention.check.interval.ms":
		c.OffsetsRetentionCheckInterval, err = parseMillis(value)
	case "log.retention.hours", "log.retention.minutes":
		var n int64
		if n, err = strconv.ParseInt(value, 10, 64); err == nil {
			unit := time.Hour
			if name == "log.retention.minutes" {
				unit = time.Minute
			}
			c.TopicDefaults["retention.ms"] = strconv.FormatInt((time.Duration(n) * unit).Milliseconds(), 10)
		}
	default:
		topicName, ok := brokerTopicConfigs[name]
		if !ok {
			return fmt.Errorf("%w %q", errUnknownBrokerConfig, name)
		}
		if err = validateTopicConfig(topicName, value); err == nil {
			c.TopicDefaults[topicName] = value
		}
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", name, value, err)
	}
	return nil
}

// LoadProperties applies a Java properties file of Kafka settings: one
// name=value a line, # or ! comments. Every line is checked; an unknown
// name is an error, not a silent no-op.
func (c *Config) LoadProperties(r io.Reader) error {
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == '!' {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			name, value, ok = strings.Cut(text, ":")
		}
		if !ok {
			return fmt.Errorf("line %d: want name=value, got %q", line, text)
		}
		if err := c.Set(strings.TrimSpace(name), value); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	return sc.Err()
}

// listenerAddress takes the first listener's host:port from a listeners
// value such as PLAINTEXT://127.0.0.1:9092.
func listenerAddress(v string) (string, error) {
	first := strings.TrimSpace(strings.Split(v, ",")[0])
	if _, addr, ok := strings.Cut(first, "://"); ok {
		first = addr
	}
	if !strings.Contains(first, ":") {
		return "", fmt.Errorf("want host:port, got %q", first)
	}
	return first, nil
}

// parseMillis reads a positive number of milliseconds.
func parseMillis(s string) (time.Duration, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err == nil && ms <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return time.Duration(ms) * time.Millisecond, err
}

// parseMillisOrZero reads a number of milliseconds that may be 0.
func parseMillisOrZero(s string) (time.Duration, error) {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err == nil && ms < 0 {
		err = fmt.Errorf("must not be negative")
	}
	return time.Duration(ms) * time.Millisecond, err
}

func parseInt32(s string, dst *int32) error {
	n, err := strconv.ParseInt(s, 10, 32)
	*dst = int32(n)
	return err
}
