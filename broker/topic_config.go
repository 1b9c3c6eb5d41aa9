package broker

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// topicConfigDef describes one topic config klab implements: its Kafka
// name, Kafka's default, its type as DescribeConfigs reports it, and what
// it does.
type topicConfigDef struct {
	name, def string
	kind      kmsg.ConfigType
	doc       string
	min       int64 // smallest valid value, for numbers
}

// topicConfigDefs are the topic configs klab implements, sorted by name.
// Any other name is refused with INVALID_CONFIG rather than stored and
// ignored.
var topicConfigDefs = []topicConfigDef{
	{"cleanup.policy", "delete", kmsg.ConfigTypeList, "delete: drop old segments by retention; compact: keep the latest record of each key; or both, comma-separated.", 0},
	{"delete.retention.ms", "86400000", kmsg.ConfigTypeLong, "How long compaction keeps a tombstone, so consumers see the delete.", 0},
	{followerThrottledReplicas, "", kmsg.ConfigTypeList, "The replicas whose fetching from their leader the follower.replication.throttled.rate of their broker limits: partition:broker pairs, or * for all (KIP-73).", 0},
	{"index.interval.bytes", "4096", kmsg.ConfigTypeInt, "Bytes of batches between two entries of the sparse offset index.", 1},
	{leaderThrottledReplicas, "", kmsg.ConfigTypeList, "The replicas whose leader limits what it sends them to the leader.replication.throttled.rate of its broker: partition:broker pairs, or * for all (KIP-73).", 0},
	{"max.message.bytes", "1048588", kmsg.ConfigTypeInt, "The largest record batch the topic accepts, after compression.", 1},
	{"min.insync.replicas", "1", kmsg.ConfigTypeInt, "With acks=all, how many in-sync replicas a write needs, or it fails with NOT_ENOUGH_REPLICAS.", 1},
	{"retention.bytes", "-1", kmsg.ConfigTypeLong, "Delete the oldest segments of a partition while it is larger than this; -1 for no limit.", -1},
	{"retention.ms", "604800000", kmsg.ConfigTypeLong, "Delete segments whose newest record is older than this; -1 to keep data forever.", -1},
	{"segment.bytes", "1073741824", kmsg.ConfigTypeInt, "Roll a new segment before a segment grows past this size.", 14},
	{"unclean.leader.election.enable", "false", kmsg.ConfigTypeBoolean, "Let a replica that is not in sync lead when no in-sync replica is alive: the partition comes back sooner, and loses the records that replica lacks.", 0},
}

// The topic configs that name the replicas a reassignment's replication
// quotas apply to (KIP-73): "*", or a list of partition:broker.
const (
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

func findTopicConfig(name string) (topicConfigDef, bool) {
	for _, d := range topicConfigDefs {
		if d.name == name {
			return d, true
		}
	}
	return topicConfigDef{}, false
}

// validateTopicConfig checks a topic config's name and value.
func validateTopicConfig(name, value string) error {
	d, ok := findTopicConfig(name)
	if !ok {
		return fmt.Errorf("unknown topic config %q", name)
	}
	return validateConfig(d, value)
}

// validateConfig checks a value of the config d describes.
func validateConfig(d topicConfigDef, value string) error {
	name := d.name
	switch d.kind {
	case kmsg.ConfigTypeList:
		if name == leaderThrottledReplicas || name == followerThrottledReplicas {
			return validateThrottledReplicas(name, value)
		}
		for _, p := range strings.Split(value, ",") {
			if p = strings.TrimSpace(p); p != log.CleanupDelete && p != log.CleanupCompact {
				return fmt.Errorf("%s: %q is not delete or compact", name, p)
			}
		}
	case kmsg.ConfigTypeBoolean:
		if value != "true" && value != "false" {
			return fmt.Errorf("%s: %q is not true or false", name, value)
		}
	case kmsg.ConfigTypeInt, kmsg.ConfigTypeLong:
		bits := 64
		if d.kind == kmsg.ConfigTypeInt {
			bits = 32
		}
		n, err := strconv.ParseInt(value, 10, bits)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", name, value)
		}
		if n < d.min {
			return fmt.Errorf("%s: %d is below the minimum %d", name, n, d.min)
		}
	}
	return nil
}

// validateThrottledReplicas checks a list of throttled replicas as Kafka's
// ThrottledReplicaListValidator does: "*", or partition:broker pairs of
// numbers (none is a valid list too).
func validateThrottledReplicas(name, value string) error {
	if strings.TrimSpace(value) == "*" || strings.TrimSpace(value) == "" {
		return nil
	}
	for _, pair := range strings.Split(value, ",") {
		partition, broker, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || !isDecimal(partition) || !isDecimal(broker) {
			return fmt.Errorf("%s: %q is not partition:broker; the value must be * or a list of partition:broker", name, pair)
		}
	}
	return nil
}

// isDecimal reports whether s is a non-negative 32-bit decimal number.
func isDecimal(s string) bool {
	n, err := strconv.ParseInt(s, 10, 32)
	return err == nil && n >= 0 && !strings.HasPrefix(s, "+")
}

// topicConfigValue resolves a topic config: the topic's own value, else the
// broker's default, else Kafka's.
func (c *Config) topicConfigValue(overrides map[string]string, name string) (string, kmsg.ConfigSource) {
	if v, ok := overrides[name]; ok {
		return v, kmsg.ConfigSourceDynamicTopicConfig
	}
	if v, ok := c.TopicDefaults[name]; ok {
		return v, kmsg.ConfigSourceStaticBrokerConfig
	}
	d, _ := findTopicConfig(name)
	return d.def, kmsg.ConfigSourceDefaultConfig
}

// topicConfig is a topic config's resolved value.
func (c *Config) topicConfig(overrides map[string]string, name string) string {
	v, _ := c.topicConfigValue(overrides, name)
	return v
}

// intConfig is a numeric topic config, resolved. Values were validated
// when set, so parsing cannot fail here.
func (c *Config) intConfig(overrides map[string]string, name string) int64 {
	v, _ := c.topicConfigValue(overrides, name)
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// logConfig is the configuration of a partition's log for a topic with
// these overrides.
func (c *Config) logConfig(overrides map[string]string) log.Config {
	policy, _ := c.topicConfigValue(overrides, "cleanup.policy")
	ms := func(name string) time.Duration {
		switch n := c.intConfig(overrides, name); {
		case n < 0:
			return -1
		case n == 0:
			return time.Millisecond // the log reads zero as "Kafka's default"
		case n > math.MaxInt64/int64(time.Millisecond):
			return math.MaxInt64 // beyond 292 years: forever
		default:
			return time.Duration(n) * time.Millisecond
		}
	}
	retentionBytes := c.intConfig(overrides, "retention.bytes")
	if retentionBytes == 0 {
		retentionBytes = 1 // keep nothing but the active segment; the log reads zero as the default
	}
	return log.Config{
		SegmentBytes:       c.intConfig(overrides, "segment.bytes"),
		IndexIntervalBytes: c.intConfig(overrides, "index.interval.bytes"),
		Retention:          ms("retention.ms"),
		RetentionBytes:     retentionBytes,
		CleanupPolicy:      policy,
		DeleteRetention:    ms("delete.retention.ms"),
		MaxMessageBytes:    c.intConfig(overrides, "max.message.bytes"),
		// A broker config, the same for every partition.
		ProducerIDExpiration: c.ProducerIDExpiration,
	}
}
