package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker"
)

func TestConfigReadsKafkasServerProperties(t *testing.T) {
	cfg := broker.DefaultConfig()
	err := cfg.LoadProperties(strings.NewReader(`
# a server.properties as Kafka's docs write them
node.id=3
listeners=PLAINTEXT://127.0.0.1:19093
log.dirs=/tmp/klab-3
broker.rack=rack-b
auto.create.topics.enable=true
num.partitions=6
log.retention.hours=24
log.segment.bytes=1048576
log.cleanup.policy=compact
min.insync.replicas = 2
log.retention.check.interval.ms=1000
producer.id.expiration.ms=3600000
queued.max.request.bytes=52428800
connections.max.idle.ms=60000
`))
	require.NoError(t, err)
	assert.Equal(t, int32(3), cfg.NodeID)
	assert.Equal(t, "127.0.0.1:19093", cfg.Listen)
	assert.Equal(t, "/tmp/klab-3", cfg.DataDir)
	assert.Equal(t, "rack-b", cfg.Rack)
	assert.True(t, cfg.AutoCreateTopics)
	assert.Equal(t, int32(6), cfg.NumPartitions)
	assert.Equal(t, time.Second, cfg.RetentionCheckInterval)
	assert.Equal(t, time.Hour, cfg.ProducerIDExpiration)
	assert.Equal(t, int64(50<<20), cfg.QueuedMaxRequestBytes)
	assert.Equal(t, time.Minute, cfg.ConnectionsMaxIdle)
	assert.Equal(t, map[string]string{
		"retention.ms":        "86400000",
		"segment.bytes":       "1048576",
		"cleanup.policy":      "compact",
		"min.insync.replicas": "2",
	}, cfg.TopicDefaults, "log.* settings are the defaults of the topic configs")
}

func TestConfigRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, line := range []string{
		"no.such.setting=1",
		"num.partitions=many",
		"log.cleanup.policy=shred",
		"listeners=nowhere",
		"queued.max.request.bytes=0",
		"connections.max.idle.ms=0",
		"just a line",
	} {
		cfg := broker.DefaultConfig()
		err := cfg.LoadProperties(strings.NewReader(line))
		assert.Error(t, err, "%q must be refused, not ignored", line)
		if err != nil {
			assert.Contains(t, err.Error(), "line 1", "the error says where")
		}
	}
}

func TestAutoCreateTopicsIsOffByDefault(t *testing.T) {
	assert.False(t, broker.DefaultConfig().AutoCreateTopics)
}
