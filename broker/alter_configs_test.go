package broker_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func op(name string, o kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, o, value
	return c
}

func set(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return op(name, kmsg.IncrementalAlterConfigOpSet, &value)
}

func resource(kind kmsg.ConfigResourceType, name string, configs ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.Configs = kind, name, configs
	return r
}

// incrementalAlter sends one IncrementalAlterConfigs request and returns
// each resource's error, nil for success, in the request's order (kgo
// sends broker resources to their broker, and merges the answers in
// another order).
func incrementalAlter(t *testing.T, cl *kgo.Client, validateOnly bool, resources ...kmsg.IncrementalAlterConfigsRequestResource) []error {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly, req.Resources = validateOnly, resources
	resp, err := req.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	require.Len(t, resp.Resources, len(resources))
	type key struct {
		kind kmsg.ConfigResourceType
		name string
	}
	byResource := map[key]error{}
	for _, r := range resp.Resources {
		err := kerr.ErrorForCode(r.ErrorCode)
		if err != nil && r.ErrorMessage != nil {
			t.Logf("%v %q: %s", r.ResourceType, r.ResourceName, *r.ErrorMessage)
		}
		byResource[key{r.ResourceType, r.ResourceName}] = err
	}
	errs := make([]error, len(resources))
	for i, r := range resources {
		errs[i] = byResource[key{r.ResourceType, r.ResourceName}]
	}
	return errs
}

// topicConfig is a topic config's value and source, as DescribeConfigs
// shows it.
func topicConfig(t *testing.T, adm *kadm.Client, topic, name string) (string, kmsg.ConfigSource) {
	t.Helper()
	described, err := adm.DescribeTopicConfigs(ctxT(t), topic)
	require.NoError(t, err)
	rc, err := described.On(topic, nil)
	require.NoError(t, err)
	for _, c := range rc.Configs {
		if c.Key == name {
			return c.MaybeValue(), c.Source
		}
	}
	t.Fatalf("topic %s has no config %s", topic, name)
	return "", 0
}

// TestIncrementalAlterConfigsOperations: SET, DELETE, APPEND and SUBTRACT
// on a topic, with kadm, and validate_only, which changes nothing.
func TestIncrementalAlterConfigsOperations(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	_, err := adm.CreateTopic(ctx, 1, 1, nil, "t")
	require.NoError(t, err)

	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")},
		{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")},
		{Op: kadm.SetConfig, Name: "leader.replication.throttled.replicas", Value: kadm.StringPtr("*")},
	}, "t")
	require.NoError(t, err)
	require.NoError(t, altered[0].Err)
	v, source := topicConfig(t, adm, "t", "retention.ms")
	assert.Equal(t, "60000", v)
	assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, source)
	v, _ = topicConfig(t, adm, "t", "cleanup.policy")
	assert.Equal(t, "delete,compact", v)

	altered, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.DeleteConfig, Name: "retention.ms"},
		{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")},
	}, "t")
	require.NoError(t, err)
	require.NoError(t, altered[0].Err)
	v, source = topicConfig(t, adm, "t", "retention.ms")
	assert.Equal(t, "604800000", v)
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, source)
	v, _ = topicConfig(t, adm, "t", "cleanup.policy")
	assert.Equal(t, "compact", v)

	errs := incrementalAlter(t, cl, true, resource(kmsg.ConfigResourceTypeTopic, "t", set("retention.ms", "1")))
	require.NoError(t, errs[0])
	v, _ = topicConfig(t, adm, "t", "retention.ms")
	assert.Equal(t, "604800000", v, "validate_only changes nothing")
}

// TestAlterConfigsRefusesBadInput: each resource fails alone, with
// Kafka's error code, and the message names what is wrong.
func TestAlterConfigsRefusesBadInput(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b)
	_, err := kadm.NewClient(cl).CreateTopics(ctxT(t), 1, 1, nil, "t", "other")
	require.NoError(t, err)
	topic, brokers := kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker
	cases := []struct {
		name     string
		resource kmsg.IncrementalAlterConfigsRequestResource
		want     error
	}{
		{"an unknown topic", resource(topic, "nope", set("retention.ms", "1")), kerr.UnknownTopicOrPartition},
		{"an unknown topic config", resource(topic, "t", set("retention.bogus", "1")), kerr.InvalidConfig},
		{"a value that is not a number", resource(topic, "t", set("retention.ms", "soon")), kerr.InvalidConfig},
		{"a value below the minimum", resource(topic, "t", set("segment.bytes", "1")), kerr.InvalidConfig},
		{"a cleanup policy klab does not have", resource(topic, "t", set("cleanup.policy", "shred")), kerr.InvalidConfig},
		{"APPEND to a config that is not a list", resource(topic, "t", op("retention.ms", kmsg.IncrementalAlterConfigOpAppend, kmsg.StringPtr("1"))), kerr.InvalidConfig},
		{"SUBTRACT leaving cleanup.policy empty", resource(topic, "t", op("cleanup.policy", kmsg.IncrementalAlterConfigOpSubtract, kmsg.StringPtr("delete"))), kerr.InvalidConfig},
		{"SET without a value", resource(topic, "t", op("retention.ms", kmsg.IncrementalAlterConfigOpSet, nil)), kerr.InvalidConfig},
		{"an unknown operation", resource(topic, "t", op("retention.ms", 9, kmsg.StringPtr("1"))), kerr.InvalidRequest},
		{"a config twice", resource(topic, "t", set("retention.ms", "1"), set("retention.ms", "2")), kerr.InvalidRequest},
		{"throttled replicas that are not partition:broker", resource(topic, "t", set("leader.replication.throttled.replicas", "0-1")), kerr.InvalidConfig},
		{"a static broker config", resource(brokers, "", set("num.partitions", "3")), kerr.InvalidConfig},
		{"an unknown broker config", resource(brokers, "1", set("replication.speed", "3")), kerr.InvalidConfig},
		{"a negative rate", resource(brokers, "1", set("follower.replication.throttled.rate", "-1")), kerr.InvalidConfig},
		{"a broker that is not named by its id", resource(brokers, "one", set("follower.replication.throttled.rate", "1")), kerr.InvalidRequest},
		{"a broker logger", resource(kmsg.ConfigResourceTypeBrokerLogger, "1", set("kafka", "DEBUG")), kerr.InvalidRequest},
		{"an unknown resource type", resource(kmsg.ConfigResourceType(99), "x"), kerr.InvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := incrementalAlter(t, cl, false, tc.resource, resource(topic, "other", set("max.message.bytes", "2000000")))
			assert.ErrorIs(t, errs[0], tc.want)
			assert.NoError(t, errs[1], "the other resource of the request is altered")
		})
	}
	twice := incrementalAlter(t, cl, false, resource(topic, "t", set("retention.ms", "1")), resource(topic, "t", set("retention.ms", "2")))
	assert.ErrorIs(t, twice[0], kerr.InvalidRequest, "a resource given twice")
	assert.ErrorIs(t, twice[1], kerr.InvalidRequest)

	// The message names the config, as INVALID_CONFIG's should.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Resources = append(req.Resources, resource(topic, "t", set("retention.bogus", "1")), resource(brokers, "", set("log.dirs", "/tmp")))
	resp, err := req.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	require.Len(t, resp.Resources, 2)
	for _, r := range resp.Resources {
		require.NotNil(t, r.ErrorMessage)
		if r.ResourceType == topic {
			assert.Contains(t, *r.ErrorMessage, "retention.bogus")
		} else {
			assert.Contains(t, *r.ErrorMessage, "log.dirs")
			assert.Contains(t, *r.ErrorMessage, "restart")
		}
	}

	// Many resources, none of which exists: an answer for each.
	many := make([]kmsg.IncrementalAlterConfigsRequestResource, 5000)
	for i := range many {
		many[i] = resource(topic, fmt.Sprint("missing-", i), set("retention.ms", "1"))
	}
	req = kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Resources = many
	resp, err = req.RequestWith(ctxT(t), cl)
	require.NoError(t, err)
	require.Len(t, resp.Resources, len(many))
	for _, r := range resp.Resources {
		require.Equal(t, kerr.UnknownTopicOrPartition.Code, r.ErrorCode, r.ResourceName)
	}
}

// TestAlterConfigsReplacesAndRefuses: the non-incremental AlterConfigs
// replaces a topic's dynamic configs whole, and refuses what
// IncrementalAlterConfigs refuses.
func TestAlterConfigsReplacesAndRefuses(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("1000")}, "t")
	require.NoError(t, err)

	state, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("1048576")}}, "t")
	require.NoError(t, err)
	require.NoError(t, state[0].Err)
	_, source := topicConfig(t, adm, "t", "retention.ms")
	assert.Equal(t, kmsg.ConfigSourceDefaultConfig, source, "left out: back to the default")
	v, _ := topicConfig(t, adm, "t", "segment.bytes")
	assert.Equal(t, "1048576", v)

	for _, bad := range []kadm.AlterConfig{
		{Name: "segment.bytes", Value: nil},
		{Name: "segment.bytes", Value: kadm.StringPtr("big")},
		{Name: "no.such.config", Value: kadm.StringPtr("1")},
	} {
		state, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{bad}, "t")
		require.NoError(t, err)
		assert.ErrorIs(t, state[0].Err, kerr.InvalidConfig, "%s", bad.Name)
	}
	state, err = adm.AlterBrokerConfigsState(ctx, []kadm.AlterConfig{{Name: "follower.replication.throttled.rate", Value: kadm.StringPtr("1024")}})
	require.NoError(t, err)
	require.NoError(t, state[0].Err)
	described, err := adm.DescribeBrokerConfigs(ctx)
	require.NoError(t, err)
	rc, err := described.On("", nil)
	require.NoError(t, err)
	require.Len(t, rc.Configs, 1)
	assert.Equal(t, "1024", rc.Configs[0].MaybeValue())
	assert.Equal(t, kmsg.ConfigSourceDynamicDefaultBrokerConfig, rc.Configs[0].Source)
}

// TestConfigChangesSurviveARestart: dynamic configs, a topic's and a
// broker's, are in the metadata log, and so still there after the
// (one-broker) cluster restarts.
func TestConfigChangesSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	ctx := ctxT(t)
	_, err := adm.CreateTopic(ctx, 1, 1, nil, "t")
	require.NoError(t, err)
	errs := incrementalAlter(t, cl, false,
		resource(kmsg.ConfigResourceTypeTopic, "t", set("retention.ms", "123456")),
		resource(kmsg.ConfigResourceTypeBroker, "1", set("follower.replication.throttled.rate", "4096")),
	)
	require.Equal(t, []error{nil, nil}, errs)
	cl.Close()
	require.NoError(t, b.Close())

	b2 := start(t, dir)
	adm2 := kadm.NewClient(client(t, b2))
	v, source := topicConfig(t, adm2, "t", "retention.ms")
	assert.Equal(t, "123456", v)
	assert.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, source)
	described, err := adm2.DescribeBrokerConfigs(ctxT(t), 1)
	require.NoError(t, err)
	rc, err := described.On("1", nil)
	require.NoError(t, err)
	found := false
	for _, c := range rc.Configs {
		if c.Key == "follower.replication.throttled.rate" {
			found = true
			assert.Equal(t, "4096", c.MaybeValue())
			assert.Equal(t, kmsg.ConfigSourceDynamicBrokerConfig, c.Source)
		}
	}
	assert.True(t, found)
}

// TestAlterConfigsFramesThatLie: requests that claim more resources than
// they carry, or a null resource name, close the connection; a null value
// is answered with INVALID_CONFIG; the broker serves on.
func TestAlterConfigsFramesThatLie(t *testing.T) {
	b := start(t, t.TempDir())
	for _, tc := range []struct {
		name string
		data []byte
	}{
		// A resources array of 2^31-1 entries, then nothing.
		{"IncrementalAlterConfigs v0 claiming 2^31-1 resources", frame(kmsg.IncrementalAlterConfigs, 0, []byte{0x7f, 0xff, 0xff, 0xff})},
		{"IncrementalAlterConfigs v1 claiming 2^31-1 resources", frame(kmsg.IncrementalAlterConfigs, 1, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x07})},
		{"AlterConfigs v0 claiming 2^31-1 resources", frame(kmsg.AlterConfigs, 0, []byte{0x7f, 0xff, 0xff, 0xff})},
		{"AlterConfigs v2 claiming 2^31-1 resources", frame(kmsg.AlterConfigs, 2, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x07})},
		// One topic resource whose name, not nullable, is null (length -1).
		{"AlterConfigs v0 with a null resource name", frame(kmsg.AlterConfigs, 0, []byte{0, 0, 0, 1, 2, 0xff, 0xff, 0, 0, 0, 0, 0})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b.Addr())
			_, err := c.Write(tc.data)
			require.NoError(t, err)
			assertClosed(t, c, tc.name)
		})
	}

	// One topic resource, "t", with retention.ms null, not validate-only.
	body := []byte{0, 0, 0, 1, 2, 0, 1, 't', 0, 0, 0, 1, 0, 12}
	body = append(body, "retention.ms"...)
	body = append(body, 0xff, 0xff, 0)
	c := dial(t, b.Addr())
	_, err := c.Write(frame(kmsg.AlterConfigs, 0, body))
	require.NoError(t, err)
	var size [4]byte
	_, err = io.ReadFull(c, size[:])
	require.NoError(t, err, "answered")
	answer := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(c, answer)
	require.NoError(t, err)
	resp := kmsg.NewPtrAlterConfigsResponse()
	require.NoError(t, resp.ReadFrom(answer[4:]))
	require.Len(t, resp.Resources, 1)
	assert.Equal(t, kerr.InvalidConfig.Code, resp.Resources[0].ErrorCode, "a null value")

	_, err = kadm.NewClient(client(t, b)).ListTopics(ctxT(t))
	require.NoError(t, err, "the broker serves on")
}

// TestMinInsyncReplicasChangesAtRuntime: a replica reads
// min.insync.replicas from the latest metadata on every acks=all write, so
// a change applies to the next one.
func TestMinInsyncReplicasChangesAtRuntime(t *testing.T) {
	b := start(t, t.TempDir())
	ctx := ctxT(t)
	adm := kadm.NewClient(client(t, b))
	_, err := adm.CreateTopic(ctx, 1, 1, nil, "t")
	require.NoError(t, err)
	p := client(t, b, kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))

	altered, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}, "t")
	require.NoError(t, err)
	require.NoError(t, altered[0].Err)
	assert.ErrorIs(t, p.ProduceSync(ctx, kgo.StringRecord("refused")).FirstErr(), kerr.NotEnoughReplicas, "one in-sync replica, two needed")

	altered, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "min.insync.replicas"}}, "t")
	require.NoError(t, err)
	require.NoError(t, altered[0].Err)
	assert.NoError(t, p.ProduceSync(ctx, kgo.StringRecord("taken")).FirstErr())
}

// TestRetentionChangedAtRuntimeDeletes: retention.ms set on a topic
// reaches its replica's open log at once, which then deletes the segments
// older than it, with no restart: Kafka's topic configs are dynamic.
func TestRetentionChangedAtRuntimeDeletes(t *testing.T) {
	b := start(t, t.TempDir(), "log.retention.check.interval.ms", "50")
	ctx := ctxT(t)
	cl := client(t, b)
	adm := kadm.NewClient(cl)
	_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1024")}, "t")
	require.NoError(t, err)
	p := client(t, b, kgo.DefaultProduceTopic("t"), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0))
	old := time.Now().Add(-time.Hour)
	for i := range 20 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Timestamp: old, Value: []byte(fmt.Sprintf("%0200d", i))}).FirstErr())
	}
	starts, err := adm.ListStartOffsets(ctx, "t")
	require.NoError(t, err)
	start, _ := starts.Lookup("t", 0)
	require.Zero(t, start.Offset, "the default retention.ms, 7 days, keeps records an hour old")

	errs := incrementalAlter(t, cl, false, resource(kmsg.ConfigResourceTypeTopic, "t", set("retention.ms", "60000")))
	require.NoError(t, errs[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		starts, err := adm.ListStartOffsets(ctx, "t")
		require.NoError(t, err)
		start, _ := starts.Lookup("t", 0)
		if start.Offset > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the segments older than retention.ms were never deleted")
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
}
