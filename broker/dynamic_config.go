package broker

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// Dynamic broker configs are broker configs changed at runtime, with
// IncrementalAlterConfigs or AlterConfigs, for one broker or as the
// cluster-wide default; the controller writes them to the metadata log,
// and every broker reads them from its image (brokerConfig). Only the
// configs below can change so: the rest of a broker's configuration is
// read once, at start (Config), and changing it takes a restart.

// The replication quotas of a reassignment (KIP-73), in bytes per second:
// what a leader sends to, and a follower fetches for, the replicas the
// topics' leader/follower.replication.throttled.replicas name.
const (
	leaderThrottledRate   = "leader.replication.throttled.rate"
	followerThrottledRate = "follower.replication.throttled.rate"
)

// dynamicBrokerConfigDefs are the broker configs that change at runtime,
// sorted by name.
var dynamicBrokerConfigDefs = []topicConfigDef{
	{followerThrottledRate, strconv.FormatInt(1<<63-1, 10), kmsg.ConfigTypeLong, "Bytes per second a follower fetches, at most, for the replicas of follower.replication.throttled.replicas (KIP-73).", 0},
	{leaderThrottledRate, strconv.FormatInt(1<<63-1, 10), kmsg.ConfigTypeLong, "Bytes per second a leader sends, at most, to the replicas of leader.replication.throttled.replicas (KIP-73).", 0},
}

func findDynamicBrokerConfig(name string) (topicConfigDef, bool) {
	i := slices.IndexFunc(dynamicBrokerConfigDefs, func(d topicConfigDef) bool { return d.name == name })
	if i < 0 {
		return topicConfigDef{}, false
	}
	return dynamicBrokerConfigDefs[i], true
}

// dynamicBrokerConfig is the definition of a broker config that changes at
// runtime, or INVALID_CONFIG: for a static config (one Config.Set takes),
// that it cannot change without a restart, as Kafka says of its
// read-only configs; for any other name, that it is unknown.
func dynamicBrokerConfig(name string) (topicConfigDef, error) {
	if d, ok := findDynamicBrokerConfig(name); ok {
		return d, nil
	}
	scratch := DefaultConfig()
	if err := scratch.Set(name, ""); errors.Is(err, errUnknownBrokerConfig) {
		return topicConfigDef{}, fmt.Errorf("%w: unknown broker config %q", kerr.InvalidConfig, name)
	}
	return topicConfigDef{}, fmt.Errorf("%w: broker config %q cannot be changed without a restart: set it in the broker's properties", kerr.InvalidConfig, name)
}

// brokerConfig is this broker's value of a dynamic broker config: its
// own dynamic value, else the cluster-wide dynamic default, else Kafka's
// default (the dynamic configs have no static setting in klab, as
// Kafka's replication quotas have none). It reads the metadata image each
// time, so a change applies from the next call on: the replication
// throttle reads follower.replication.throttled.rate through it (and
// brokerConfigInt). A name that is not a dynamic broker config is "".
func (b *Broker) brokerConfig(name string) string {
	v, _ := b.brokerConfigValue(b.ctrl.Image(), name)
	return v
}

// brokerConfigInt is brokerConfig for a numeric config. Values were
// validated when set; one that does not parse (a name that is not a
// numeric config) is 0.
func (b *Broker) brokerConfigInt(name string) int64 {
	n, _ := strconv.ParseInt(b.brokerConfig(name), 10, 64)
	return n
}

// brokerConfigValue resolves a dynamic broker config for this broker in
// im, and says where its value comes from, as DescribeConfigs shows it.
func (b *Broker) brokerConfigValue(im *metadata.Image, name string) (string, kmsg.ConfigSource) {
	if v, fromDefault, ok := im.BrokerConfig(b.cfg.NodeID, name); ok {
		if fromDefault {
			return v, kmsg.ConfigSourceDynamicDefaultBrokerConfig
		}
		return v, kmsg.ConfigSourceDynamicBrokerConfig
	}
	d, _ := findDynamicBrokerConfig(name)
	return d.def, kmsg.ConfigSourceDefaultConfig
}
