package broker

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
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
	// Rack is broker.rack.
	Rack string

	// AutoCreateTopics is auto.create.topics.enable. Kafka's default is
	// true; klab's is false, so a typo in a topic name is an error and not
	// a new topic.
	AutoCreateTopics bool
	// NumPartitions is num.partitions, for topics created without a count.
	NumPartitions int32
	// DefaultReplicationFactor is default.replication.factor.
	DefaultReplicationFactor int16
	// SocketRequestMaxBytes is socket.request.max.bytes: a larger request
	// closes the connection before anything is allocated for it.
	SocketRequestMaxBytes int32
	// RetentionCheckInterval is log.retention.check.interval.ms.
	RetentionCheckInterval time.Duration

	// Logger receives what the broker has to say: errors a client sees only
	// as an error code, and why a connection was closed. Default slog.Default().
	Logger *slog.Logger

	// TopicDefaults are the broker-level defaults of topic configs, by the
	// topic config's name (retention.ms, not log.retention.ms).
	TopicDefaults map[string]string
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
		RetentionCheckInterval:   5 * time.Minute,
		TopicDefaults:            map[string]string{},
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
}

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
	case "log.retention.check.interval.ms":
		var ms int64
		if ms, err = strconv.ParseInt(value, 10, 64); err == nil && ms <= 0 {
			err = fmt.Errorf("must be positive")
		}
		c.RetentionCheckInterval = time.Duration(ms) * time.Millisecond
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
			return fmt.Errorf("unknown broker config %q", name)
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

func parseInt32(s string, dst *int32) error {
	n, err := strconv.ParseInt(s, 10, 32)
	*dst = int32(n)
	return err
}
