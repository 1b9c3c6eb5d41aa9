package broker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// DescribeConfigs: the configs of topics and brokers, as kafka-configs
// --describe and kafka-topics --describe show them.
//
// Behavior: for a topic, every topic config klab implements, with its value
// and where it comes from: set on the topic (DYNAMIC_TOPIC_CONFIG), the
// broker's log.* default (STATIC_BROKER_CONFIG), or Kafka's default
// (DEFAULT_CONFIG). With synonyms asked for (v1+), each config lists every
// level that has a value, most specific first. For a broker (this one:
// ask each broker for its own), its static settings, read-only, and its
// dynamic configs (dynamic_config.go): set for it (DYNAMIC_BROKER_CONFIG),
// as the cluster-wide default (DYNAMIC_DEFAULT_BROKER_CONFIG), or Kafka's
// default. For the broker resource "", the cluster-wide defaults set, as
// Kafka shows kafka-configs --entity-default.
//
// Version notes: v1 adds sources and synonyms, v3 types and documentation,
// v4 is flexible.
func init() { register(kmsg.DescribeConfigs, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if t := b.ctrl.Image().Topic(rr.ResourceName); t == nil {
				err = fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, rr.ResourceName)
			} else {
				sr.Configs = b.describeTopicConfigs(t.Configs, rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			}
		case kmsg.ConfigResourceTypeBroker:
			switch rr.ResourceName {
			case metadata.ClusterDefault:
				sr.Configs = b.describeDefaultBrokerConfigs(rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			case strconv.Itoa(int(b.cfg.NodeID)):
				sr.Configs = b.describeBrokerConfigs(rr.ConfigNames, req.IncludeSynonyms, req.IncludeDocumentation)
			default:
				err = fmt.Errorf("%w: this is broker %d, not %s", kerr.InvalidRequest, b.cfg.NodeID, rr.ResourceName)
			}
		default:
			err = fmt.Errorf("%w: resource type %v is not implemented", kerr.InvalidRequest, rr.ResourceType)
		}
		sr.ErrorCode, sr.ErrorMessage = b.code(err), errorMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// describeTopicConfigs describes a topic's configs (those in names, or all).
func (b *Broker) describeTopicConfigs(overrides map[string]string, names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range topicConfigDefs {
		if len(names) > 0 && !slices.Contains(names, d.name) {
			continue
		}
		value, source := b.cfg.topicConfigValue(overrides, d.name)
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source, c.ConfigType = d.name, &value, source, d.kind
		c.IsDefault = source == kmsg.ConfigSourceDefaultConfig
		if docs {
			c.Documentation = &d.doc
		}
		if synonyms {
			c.ConfigSynonyms = b.topicConfigSynonyms(overrides, d)
		}
		out = append(out, c)
	}
	return out
}

// topicConfigSynonyms lists each level at which a topic config has a value.
func (b *Broker) topicConfigSynonyms(overrides map[string]string, d topicConfigDef) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	add := func(name, value string, source kmsg.ConfigSource) {
		s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		s.Name, s.Value, s.Source = name, &value, source
		out = append(out, s)
	}
	if v, ok := overrides[d.name]; ok {
		add(d.name, v, kmsg.ConfigSourceDynamicTopicConfig)
	}
	for brokerName, topicName := range brokerTopicConfigs {
		if v, ok := b.cfg.TopicDefaults[topicName]; ok && topicName == d.name {
			add(brokerName, v, kmsg.ConfigSourceStaticBrokerConfig)
		}
	}
	add(d.name, d.def, kmsg.ConfigSourceDefaultConfig)
	return out
}

// describeBrokerConfigs describes the broker's own settings.
func (b *Broker) describeBrokerConfigs(names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	c := b.cfg
	settings := []struct {
		name, value string
		kind        kmsg.ConfigType
	}{
		{"node.id", strconv.Itoa(int(c.NodeID)), kmsg.ConfigTypeInt},
		{"listeners", "PLAINTEXT://" + c.Listen, kmsg.ConfigTypeList},
		{"advertised.listeners", "PLAINTEXT://" + b.addr, kmsg.ConfigTypeList},
		{"log.dirs", c.DataDir, kmsg.ConfigTypeString},
		{"broker.rack", c.Rack, kmsg.ConfigTypeString},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics), kmsg.ConfigTypeBoolean},
		{"num.partitions", strconv.Itoa(int(c.NumPartitions)), kmsg.ConfigTypeInt},
		{"default.replication.factor", strconv.Itoa(int(c.DefaultReplicationFactor)), kmsg.ConfigTypeShort},
		{"socket.request.max.bytes", strconv.Itoa(int(c.SocketRequestMaxBytes)), kmsg.ConfigTypeInt},
		{"queued.max.request.bytes", strconv.FormatInt(c.QueuedMaxRequestBytes, 10), kmsg.ConfigTypeLong},
		{"connections.max.idle.ms", strconv.FormatInt(c.ConnectionsMaxIdle.Milliseconds(), 10), kmsg.ConfigTypeLong},
		{"log.retention.check.interval.ms", strconv.FormatInt(c.RetentionCheckInterval.Milliseconds(), 10), kmsg.ConfigTypeLong},
		{"group.min.session.timeout.ms", strconv.FormatInt(c.Groups.MinSessionTimeout.Milliseconds(), 10), kmsg.ConfigTypeInt},
		{"group.max.session.timeout.ms", strconv.FormatInt(c.Groups.MaxSessionTimeout.Milliseconds(), 10), kmsg.ConfigTypeInt},
		{"group.initial.rebalance.delay.ms", strconv.FormatInt(c.Groups.InitialRebalanceDelay.Milliseconds(), 10), kmsg.ConfigTypeInt},
		{"group.max.size", strconv.Itoa(groupMaxSize(c.Groups.MaxSize)), kmsg.ConfigTypeInt},
		{"offsets.topic.num.partitions", strconv.Itoa(int(c.OffsetsTopicPartitions)), kmsg.ConfigTypeInt},
		{"offsets.topic.replication.factor", strconv.Itoa(int(c.OffsetsTopicReplicationFactor)), kmsg.ConfigTypeShort},
		{"offsets.retention.minutes", strconv.FormatInt(int64(c.OffsetsRetention/time.Minute), 10), kmsg.ConfigTypeInt},
		{"offsets.retention.check.interval.ms", strconv.FormatInt(c.OffsetsRetentionCheckInterval.Milliseconds(), 10), kmsg.ConfigTypeLong},
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, s := range settings {
		if len(names) > 0 && !slices.Contains(names, s.name) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		value := s.value
		rc.Name, rc.Value, rc.ReadOnly, rc.ConfigType = s.name, &value, true, s.kind
		rc.Source = kmsg.ConfigSourceStaticBrokerConfig
		if synonyms {
			rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{configSynonym(s.name, value, rc.Source)}
		}
		out = append(out, rc)
	}
	out = append(out, b.describeDynamicBrokerConfigs(names, synonyms, docs)...)
	for brokerName, topicName := range brokerTopicConfigs {
		if len(names) > 0 && !slices.Contains(names, brokerName) {
			continue
		}
		value, source := c.topicConfigValue(nil, topicName)
		d, _ := findTopicConfig(topicName)
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value, rc.ReadOnly, rc.Source, rc.ConfigType = brokerName, &value, true, source, d.kind
		rc.IsDefault = source == kmsg.ConfigSourceDefaultConfig
		out = append(out, rc)
	}
	slices.SortFunc(out, func(x, y kmsg.DescribeConfigsResponseResourceConfig) int {
		if x.Name < y.Name {
			return -1
		}
		if x.Name > y.Name {
			return 1
		}
		return 0
	})
	return out
}

// describeDynamicBrokerConfigs describes this broker's dynamic configs.
func (b *Broker) describeDynamicBrokerConfigs(names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	im := b.ctrl.Image()
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range dynamicBrokerConfigDefs {
		if len(names) > 0 && !slices.Contains(names, d.name) {
			continue
		}
		value, source := b.brokerConfigValue(im, d.name)
		rc := describedDynamicBrokerConfig(d, value, source, docs)
		if synonyms {
			rc.ConfigSynonyms = dynamicBrokerConfigSynonyms(im, b.cfg.NodeID, d)
		}
		out = append(out, rc)
	}
	return out
}

// describeDefaultBrokerConfigs describes the cluster-wide defaults of
// dynamic broker configs that are set, and only those, as Kafka does.
func (b *Broker) describeDefaultBrokerConfigs(names []string, synonyms, docs bool) []kmsg.DescribeConfigsResponseResourceConfig {
	defaults := b.ctrl.Image().BrokerConfigs[metadata.ClusterDefault]
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, d := range dynamicBrokerConfigDefs {
		value, ok := defaults[d.name]
		if !ok || len(names) > 0 && !slices.Contains(names, d.name) {
			continue
		}
		rc := describedDynamicBrokerConfig(d, value, kmsg.ConfigSourceDynamicDefaultBrokerConfig, docs)
		if synonyms {
			rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{configSynonym(d.name, value, rc.Source)}
		}
		out = append(out, rc)
	}
	return out
}

// describedDynamicBrokerConfig is a dynamic broker config as
// DescribeConfigs shows it: writable, with where its value comes from.
func describedDynamicBrokerConfig(d topicConfigDef, value string, source kmsg.ConfigSource, docs bool) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name, rc.Value, rc.Source, rc.ConfigType = d.name, &value, source, d.kind
	rc.IsDefault = source == kmsg.ConfigSourceDefaultConfig
	if docs {
		rc.Documentation = &d.doc
	}
	return rc
}

// dynamicBrokerConfigSynonyms lists each level at which a dynamic broker
// config has a value for broker id, most specific first.
func dynamicBrokerConfigSynonyms(im *metadata.Image, id int32, d topicConfigDef) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	if v, ok := im.BrokerConfigs[strconv.Itoa(int(id))][d.name]; ok {
		out = append(out, configSynonym(d.name, v, kmsg.ConfigSourceDynamicBrokerConfig))
	}
	if v, ok := im.BrokerConfigs[metadata.ClusterDefault][d.name]; ok {
		out = append(out, configSynonym(d.name, v, kmsg.ConfigSourceDynamicDefaultBrokerConfig))
	}
	return append(out, configSynonym(d.name, d.def, kmsg.ConfigSourceDefaultConfig))
}

// configSynonym is one level at which a config has a value.
func configSynonym(name, value string, source kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, &value, source
	return s
}

// groupMaxSize is group.max.size as Kafka shows it: no limit is
// Integer.MAX_VALUE.
func groupMaxSize(n int) int {
	if n <= 0 {
		return math.MaxInt32
	}
	return n
}
