package clustertest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/broker/metadata"
)

// notTheController is a broker that is not the active controller.
func notTheController(t *testing.T, c *clustertest.Cluster) int32 {
	t.Helper()
	var id int32 = -1
	c.WaitFor(10*time.Second, "an active controller", func() bool {
		for _, candidate := range c.IDs() {
			if active := c.Broker(candidate).ActiveController(); active > 0 && active != candidate {
				id = candidate
				return true
			}
		}
		return false
	})
	return id
}

func setOp(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(value)
	return c
}

func configResource(kind kmsg.ConfigResourceType, name string, configs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.Configs = kind, name, configs
	return r
}

// describedConfigs asks one broker for a resource's configs, with their
// synonyms, and returns them by name.
func describedConfigs(t *testing.T, ctx context.Context, b *kgo.Broker, kind kmsg.ConfigResourceType, name string) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kind, name
	req.Resources = append(req.Resources, dr)
	resp, err := req.RequestWith(ctx, b)
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	require.Zero(t, resp.Resources[0].ErrorCode, "%v", resp.Resources[0].ErrorMessage)
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range resp.Resources[0].Configs {
		out[c.Name] = c
	}
	return out
}

// TestConfigsChangeThroughAnyBroker: IncrementalAlterConfigs sent to a
// broker that is not the controller is forwarded to it (KIP-590), and
// that broker's DescribeConfigs, asked right after, shows the changes
// with where they come from; every broker learns them; AlterConfigs
// replaces a topic's configs whole; and the changes survive a restart of
// the whole cluster.
func TestConfigsChangeThroughAnyBroker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	c.CreateTopic("logs", 1, 3, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nc := notTheController(t, c)
	self := strconv.Itoa(int(nc))
	cl := c.Client()
	require.NoError(t, cl.Ping(ctx))
	via := cl.Broker(int(nc))

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	appendCompact := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	appendCompact.Name, appendCompact.Op, appendCompact.Value = "cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("compact")
	req.Resources = append(req.Resources,
		configResource(kmsg.ConfigResourceTypeTopic, "logs", setOp("retention.ms", "3600000"), appendCompact, setOp("follower.replication.throttled.replicas", "0:1,0:2")),
		configResource(kmsg.ConfigResourceTypeBroker, "", setOp("follower.replication.throttled.rate", "1048576")),
		configResource(kmsg.ConfigResourceTypeBroker, self, setOp("leader.replication.throttled.rate", "2048")),
	)
	resp, err := req.RequestWith(ctx, via)
	require.NoError(t, err)
	require.Len(t, resp.Resources, 3)
	for _, r := range resp.Resources {
		require.Zero(t, r.ErrorCode, "%s %q: %v", r.ResourceType, r.ResourceName, r.ErrorMessage)
	}

	topic := describedConfigs(t, ctx, via, kmsg.ConfigResourceTypeTopic, "logs")
	assert.Equal(t, "3600000", *topic["retention.ms"].Value, "the forwarding broker has the change when it answers")
	assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, topic["retention.ms"].Source)
	assert.Equal(t, "delete,compact", *topic["cleanup.policy"].Value, "APPEND starts from Kafka's default")
	assert.Equal(t, "0:1,0:2", *topic["follower.replication.throttled.replicas"].Value)
	brokerConfigs := describedConfigs(t, ctx, via, kmsg.ConfigResourceTypeBroker, self)
	follower, leader := brokerConfigs["follower.replication.throttled.rate"], brokerConfigs["leader.replication.throttled.rate"]
	assert.Equal(t, "1048576", *follower.Value)
	assert.Equal(t, kmsg.ConfigSourceDynamicDefaultBrokerConfig, follower.Source)
	assert.Equal(t, "2048", *leader.Value)
	assert.Equal(t, kmsg.ConfigSourceDynamicBrokerConfig, leader.Source)
	require.Len(t, leader.ConfigSynonyms, 2, "the broker's own value, then Kafka's default")
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, leader.ConfigSynonyms[1].Source)
	defaults := describedConfigs(t, ctx, via, kmsg.ConfigResourceTypeBroker, "")
	assert.Len(t, defaults, 1, "the cluster-wide default shows what is set there")

	c.WaitFor(10*time.Second, "every broker has the changes", func() bool {
		for _, id := range c.IDs() {
			im := c.Broker(id).Metadata()
			v, fromDefault, _ := im.BrokerConfig(id, "follower.replication.throttled.rate")
			if im.Topic("logs").Configs["retention.ms"] != "3600000" || v != "1048576" || !fromDefault {
				return false
			}
		}
		return true
	})

	adm := kadm.NewClient(cl)
	altered, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"}}, nc)
	require.NoError(t, err)
	require.NoError(t, altered[0].Err)
	described, err := adm.DescribeBrokerConfigs(ctx, nc)
	require.NoError(t, err)
	rc, err := described.On(self, nil)
	require.NoError(t, err)
	for _, cfg := range rc.Configs {
		if cfg.Key == "leader.replication.throttled.rate" {
			assert.Equal(t, kmsg.ConfigSourceDefaultConfig, cfg.Source, "deleted: back to Kafka's default")
			assert.Equal(t, "9223372036854775807", cfg.MaybeValue())
		}
	}

	// AlterConfigs (not incremental) replaces the topic's configs whole.
	state, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}, "logs")
	require.NoError(t, err)
	require.NoError(t, state[0].Err)
	c.WaitFor(10*time.Second, "every broker has the replaced configs", func() bool {
		for _, id := range c.IDs() {
			if got := c.Broker(id).Metadata().Topic("logs").Configs; len(got) != 1 || got["min.insync.replicas"] != "2" {
				return false
			}
		}
		return true
	})

	for _, id := range c.IDs() {
		c.Kill(id)
	}
	c.RestartAll()
	c.WaitFor(30*time.Second, "the configs are back on every broker", func() bool {
		for _, id := range c.IDs() {
			im := c.Broker(id).Metadata()
			v, _, _ := im.BrokerConfig(id, "follower.replication.throttled.rate")
			if im.Topic("logs") == nil || im.Topic("logs").Configs["min.insync.replicas"] != "2" || v != "1048576" {
				return false
			}
		}
		return true
	})
	_, fromDefault, ok := c.Broker(nc).Metadata().BrokerConfig(nc, "leader.replication.throttled.rate")
	assert.False(t, ok || fromDefault, "the deleted config stays deleted")
	assert.Equal(t, map[string]string{"follower.replication.throttled.rate": "1048576"}, c.Broker(nc).Metadata().BrokerConfigs[metadata.ClusterDefault])
}
