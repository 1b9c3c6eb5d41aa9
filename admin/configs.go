package admin

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResourceType is what a config belongs to: a topic or a broker.
type ResourceType = kmsg.ConfigResourceType

// The resource types kafka-configs.sh's --entity-type topics and brokers
// name.
const (
	TopicResource  = kmsg.ConfigResourceTypeTopic
	BrokerResource = kmsg.ConfigResourceTypeBroker
)

// ConfigResource names a topic, or a broker by its id. A broker resource
// with the name "" is the default of every broker (kafka-configs
// --entity-default).
type ConfigResource struct {
	Type ResourceType
	Name string
}

// String is the resource as kafka-configs.sh names it: "topic orders",
// "broker 1", "default broker".
func (r ConfigResource) String() string {
	switch {
	case r.Type == TopicResource:
		return "topic " + r.Name
	case r.Name == "":
		return "default broker"
	default:
		return "broker " + r.Name
	}
}

// brokerID is the broker that must answer for the resource: a broker's
// own configs only it knows and only it applies. ok is false when any
// broker (or, for a change, the controller) will do.
func (r ConfigResource) brokerID() (id int32, ok bool) {
	if r.Type != BrokerResource || r.Name == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(r.Name, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// ConfigSource is where a config's value comes from: set on the topic
// (DYNAMIC_TOPIC_CONFIG), in the broker's server.properties
// (STATIC_BROKER_CONFIG), Kafka's default (DEFAULT_CONFIG), ... Its String
// is Kafka's name for it.
type ConfigSource = kmsg.ConfigSource

// Config is one config of a resource.
type Config struct {
	Name string
	// Value is nil for a config without a value, or a sensitive one.
	Value     *string
	Source    ConfigSource
	ReadOnly  bool
	Sensitive bool
	// Synonyms are every level at which the config has a value, most
	// specific first: the topic's own, the broker's log.* default, Kafka's
	// default. The first is the one in force.
	Synonyms []ConfigSynonym
}

// ConfigSynonym is one level at which a config has a value.
type ConfigSynonym struct {
	Name   string
	Value  *string
	Source ConfigSource
}

// ResourceConfigs are a resource's configs, or why they could not be read.
type ResourceConfigs struct {
	Resource ConfigResource
	Configs  []Config
	Err      error
}

// DescribeConfigs reads the configs of topics and brokers, with where each
// value comes from. A topic's configs any broker knows; broker N's only
// broker N, so each broker resource is asked of its broker.
func (c *Client) DescribeConfigs(ctx context.Context, resources ...ConfigResource) ([]ResourceConfigs, error) {
	out := make([]ResourceConfigs, len(resources))
	var errs []error
	for i, r := range resources {
		out[i] = c.describeConfigs(ctx, r)
		if out[i].Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, out[i].Err))
		}
	}
	return out, errors.Join(errs...)
}

// describeConfigs reads one resource's configs.
func (c *Client) describeConfigs(ctx context.Context, r ConfigResource) ResourceConfigs {
	res := ResourceConfigs{Resource: r}
	res.Err = c.retry(ctx, func(ctx context.Context) error {
		conn, err := c.anyConn(ctx)
		if id, ok := r.brokerID(); ok {
			conn, err = c.brokerConn(ctx, id)
		}
		if err != nil {
			return err
		}
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.IncludeSynonyms = true
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.Type, r.Name
		req.Resources = append(req.Resources, rr)
		resp, err := request[*kmsg.DescribeConfigsResponse](ctx, conn, req)
		if err != nil {
			return err
		}
		if len(resp.Resources) != 1 {
			return fmt.Errorf("DescribeConfigs: %d resources in the answer, asked for 1", len(resp.Resources))
		}
		sr := resp.Resources[0]
		if err := kafkaError(sr.ErrorCode, sr.ErrorMessage); err != nil {
			return err
		}
		res.Configs = nil
		for _, rc := range sr.Configs {
			res.Configs = append(res.Configs, configOf(rc))
		}
		return nil
	})
	return res
}

// configOf turns one config of a DescribeConfigs answer into a Config.
func configOf(rc kmsg.DescribeConfigsResponseResourceConfig) Config {
	cfg := Config{Name: rc.Name, Value: rc.Value, Source: rc.Source, ReadOnly: rc.ReadOnly, Sensitive: rc.IsSensitive}
	for _, s := range rc.ConfigSynonyms {
		cfg.Synonyms = append(cfg.Synonyms, ConfigSynonym{Name: s.Name, Value: s.Value, Source: s.Source})
	}
	return cfg
}

// ConfigOp is how IncrementalAlterConfigs changes one config.
type ConfigOp = kmsg.IncrementalAlterConfigOp

// The four changes KIP-339 defines.
const (
	// SetConfig sets the config to Value.
	SetConfig = kmsg.IncrementalAlterConfigOpSet
	// DeleteConfig removes the resource's own value: the config falls
	// back to the next level (the broker's default, Kafka's default).
	DeleteConfig = kmsg.IncrementalAlterConfigOpDelete
	// AppendConfig adds Value to a list config, such as cleanup.policy.
	AppendConfig = kmsg.IncrementalAlterConfigOpAppend
	// SubtractConfig removes Value from a list config.
	SubtractConfig = kmsg.IncrementalAlterConfigOpSubtract
)

// ConfigChange is one change to one config.
type ConfigChange struct {
	Op    ConfigOp
	Name  string
	Value string // unused by DeleteConfig
}

// IncrementalAlterConfigs changes some configs of a resource and leaves
// the others as they are (KIP-339; the older AlterConfigs replaced every
// config of the resource at once, so a client had to read them all first
// and could lose a change made in between). A topic's configs and the
// brokers' default go to the controller, which writes them to the
// metadata log; broker N's own to broker N.
func (c *Client) IncrementalAlterConfigs(ctx context.Context, r ConfigResource, changes ...ConfigChange) error {
	build := func() kmsg.Request {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = r.Type, r.Name
		for _, ch := range changes {
			rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			rc.Name, rc.Op = ch.Name, ch.Op
			if ch.Op != DeleteConfig {
				rc.Value = kmsg.StringPtr(ch.Value)
			}
			rr.Configs = append(rr.Configs, rc)
		}
		req.Resources = append(req.Resources, rr)
		return req
	}
	check := func(resp *kmsg.IncrementalAlterConfigsResponse) error {
		if len(resp.Resources) != 1 {
			return fmt.Errorf("IncrementalAlterConfigs: %d resources in the answer, asked for 1", len(resp.Resources))
		}
		return kafkaError(resp.Resources[0].ErrorCode, resp.Resources[0].ErrorMessage)
	}
	var err error
	if id, ok := r.brokerID(); ok {
		err = c.retry(ctx, func(ctx context.Context) error {
			conn, err := c.brokerConn(ctx, id)
			if err != nil {
				return err
			}
			resp, err := request[*kmsg.IncrementalAlterConfigsResponse](ctx, conn, build())
			if err != nil {
				return err
			}
			return check(resp)
		})
	} else {
		err = toController(ctx, c, build, check)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	return nil
}
