package metadata

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
)

func alter(resource ConfigResource, name string, set map[string]string, del ...string) Record {
	return Record{AlterConfigs: &ConfigChange{Resource: resource, Name: name, Set: set, Delete: del}}
}

// TestConfigRecordsEncodeAndDecode: a config change survives the trip
// through the log's encoding as it was written.
func TestConfigRecordsEncodeAndDecode(t *testing.T) {
	r := alter(ResourceBroker, "2", map[string]string{"follower.replication.throttled.rate": "1048576"}, "leader.replication.throttled.rate")
	data, err := Encode(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"alterConfigs":{"resource":"broker","name":"2","set":{"follower.replication.throttled.rate":"1048576"},"delete":["leader.replication.throttled.rate"]}}`, string(data))
	f := NewFSM()
	require.Equal(t, []error{nil}, applyAll(t, f, r))
	v, fromDefault, ok := f.Image().BrokerConfig(2, "follower.replication.throttled.rate")
	assert.True(t, ok)
	assert.False(t, fromDefault)
	assert.Equal(t, "1048576", v)
}

// TestTopicConfigChanges: sets land, deletes remove, a topic that is not
// there is refused, and the image a reader holds does not change under it.
func TestTopicConfigChanges(t *testing.T) {
	f := NewFSM()
	errs := applyAll(t, f,
		Record{CreateTopic: &Topic{Name: "t", Configs: map[string]string{"retention.ms": "1000"}, Partitions: []Partition{{Replicas: []int32{1}, Leader: 1, ISR: []int32{1}}}}},
	)
	require.NoError(t, errs[0])
	before := f.Image()

	errs = applyAll(t, f,
		alter(ResourceTopic, "t", map[string]string{"cleanup.policy": "compact"}, "retention.ms"),
		alter(ResourceTopic, "nope", map[string]string{"retention.ms": "1"}),
	)
	require.NoError(t, errs[0])
	assert.ErrorIs(t, errs[1], kerr.UnknownTopicOrPartition)
	assert.Equal(t, map[string]string{"cleanup.policy": "compact"}, f.Image().Topic("t").Configs)
	assert.Equal(t, map[string]string{"retention.ms": "1000"}, before.Topic("t").Configs, "an earlier image keeps its configs")

	applyAll(t, f, alter(ResourceTopic, "t", nil, "cleanup.policy"))
	assert.Nil(t, f.Image().Topic("t").Configs, "no config left")
}

// TestBrokerConfigsFallBackToTheClusterDefault: a broker's own value
// comes first, then the cluster-wide default; deleting the last config of
// a level removes the level.
func TestBrokerConfigsFallBackToTheClusterDefault(t *testing.T) {
	const rate = "leader.replication.throttled.rate"
	f := NewFSM()
	errs := applyAll(t, f,
		alter(ResourceBroker, ClusterDefault, map[string]string{rate: "100"}),
		alter(ResourceBroker, "1", map[string]string{rate: "10"}),
		alter(ResourceBroker, "one", map[string]string{rate: "1"}),
		alter("group", "g", map[string]string{rate: "1"}),
	)
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.ErrorIs(t, errs[2], kerr.InvalidRequest, "a broker is named by its id")
	assert.ErrorIs(t, errs[3], kerr.InvalidRequest, "an unknown resource")

	im := f.Image()
	v, fromDefault, ok := im.BrokerConfig(1, rate)
	assert.Equal(t, []any{"10", false, true}, []any{v, fromDefault, ok})
	v, fromDefault, ok = im.BrokerConfig(2, rate)
	assert.Equal(t, []any{"100", true, true}, []any{v, fromDefault, ok})
	_, _, ok = im.BrokerConfig(2, "follower.replication.throttled.rate")
	assert.False(t, ok)

	applyAll(t, f, alter(ResourceBroker, "1", nil, rate), alter(ResourceBroker, ClusterDefault, nil, rate))
	assert.Nil(t, f.Image().BrokerConfigs)
	v, _, _ = im.BrokerConfig(1, rate)
	assert.Equal(t, "10", v, "an earlier image keeps its configs")
}

// TestSnapshotKeepsDynamicConfigs: a broker that restores the image from a
// snapshot has the dynamic broker configs, and the topics' configs.
func TestSnapshotKeepsDynamicConfigs(t *testing.T) {
	f := NewFSM()
	applyAll(t, f,
		Record{InitCluster: "c1"},
		Record{CreateTopic: &Topic{Name: "t", Partitions: []Partition{{Replicas: []int32{1}, Leader: 1, ISR: []int32{1}}}}},
		alter(ResourceTopic, "t", map[string]string{"retention.ms": "5"}),
		alter(ResourceBroker, ClusterDefault, map[string]string{"follower.replication.throttled.rate": "7"}),
	)
	snap, err := f.Snapshot()
	require.NoError(t, err)
	var sink memSink
	require.NoError(t, snap.Persist(&sink))

	restored := NewFSM()
	require.NoError(t, restored.Restore(&sink))
	assert.Equal(t, map[string]string{"retention.ms": "5"}, restored.Image().Topic("t").Configs)
	v, fromDefault, ok := restored.Image().BrokerConfig(3, "follower.replication.throttled.rate")
	assert.Equal(t, []any{"7", true, true}, []any{v, fromDefault, ok})
}
