package metadata

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
)

// ConfigResource is the kind of thing a ConfigChange configures.
type ConfigResource string

// The resources whose configs change at runtime, as Kafka's ConfigRecord
// names them (its ResourceType TOPIC and BROKER).
const (
	ResourceTopic  ConfigResource = "topic"
	ResourceBroker ConfigResource = "broker"
)

// ClusterDefault is the resource name of the cluster-wide default of
// broker configs (kafka-configs --entity-type brokers --entity-default):
// each broker's own value, if it has one, comes first.
const ClusterDefault = ""

// ConfigChange sets and deletes dynamic configs of one topic or broker: the
// part of Kafka's ConfigRecord klab needs, with every change of one
// resource in one record, so that an IncrementalAlterConfigs of several
// configs lands whole or not at all. Set is applied first, then Delete; a
// name is never in both.
type ConfigChange struct {
	Resource ConfigResource `json:"resource"`
	// Name is the topic's name, or the broker's id in decimal, or
	// ClusterDefault.
	Name   string            `json:"name"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

// BrokerConfig is a broker's dynamic config and where it is set: on the
// broker itself, or (fromDefault) as the cluster-wide default. ok is false
// when it is set at neither level; the broker's static configuration, then
// Kafka's default, apply.
func (im *Image) BrokerConfig(id int32, name string) (value string, fromDefault, ok bool) {
	if v, ok := im.BrokerConfigs[strconv.Itoa(int(id))][name]; ok {
		return v, false, true
	}
	if v, ok := im.BrokerConfigs[ClusterDefault][name]; ok {
		return v, true, true
	}
	return "", false, false
}

// DynamicConfigs are a topic's or a broker's dynamic configs, a map no one
// may modify, or why there are none: the topic does not exist, or the
// resource is not one that has configs. Any broker id has configs, even
// one that has not joined yet, as in Kafka.
func (im *Image) DynamicConfigs(resource ConfigResource, name string) (map[string]string, error) {
	switch resource {
	case ResourceTopic:
		t := im.Topic(name)
		if t == nil {
			return nil, fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, name)
		}
		return t.Configs, nil
	case ResourceBroker:
		return im.BrokerConfigs[name], nil
	}
	return nil, fmt.Errorf("%w: config resource %q", kerr.InvalidRequest, resource)
}

// alterConfigs applies c to next, a clone of the image. The maps it
// changes are copied, never modified: earlier images share them.
func (next *Image) alterConfigs(c ConfigChange) error {
	switch c.Resource {
	case ResourceTopic:
		old := next.Topics[c.Name]
		if old == nil {
			return fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, c.Name)
		}
		t := cloneTopic(old)
		t.Configs = changedConfigs(old.Configs, c)
		next.Topics[t.Name] = t
	case ResourceBroker:
		if c.Name != ClusterDefault {
			if id, err := strconv.ParseInt(c.Name, 10, 32); err != nil || id < 0 {
				return fmt.Errorf("%w: %q is not a broker id", kerr.InvalidRequest, c.Name)
			}
		}
		all := maps.Clone(next.BrokerConfigs)
		if all == nil {
			all = map[string]map[string]string{}
		}
		if configs := changedConfigs(all[c.Name], c); configs == nil {
			delete(all, c.Name)
		} else {
			all[c.Name] = configs
		}
		if len(all) == 0 {
			all = nil
		}
		next.BrokerConfigs = all
	default:
		return fmt.Errorf("%w: config resource %q", kerr.InvalidRequest, c.Resource)
	}
	return nil
}

// changedConfigs is a copy of configs with c's sets and deletes applied,
// nil when none is left.
func changedConfigs(configs map[string]string, c ConfigChange) map[string]string {
	out := maps.Clone(configs)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, c.Set)
	for _, name := range c.Delete {
		delete(out, name)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
