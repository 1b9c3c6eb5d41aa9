package broker_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
)

// A producer's and a consumer's traffic shows in the broker's /metrics
// under Kafka's names: bytes and records in for the topic, bytes out,
// requests by API, and this broker of one as the active controller.
func TestMetricsCountProduceAndFetch(t *testing.T) {
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Console = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	ctx := ctxT(t)

	const topic, n = "metered", 10
	created, err := kadm.NewClient(client(t, b)).CreateTopics(ctx, 1, 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, created.Error())
	p := client(t, b, kgo.DefaultProduceTopic(topic))
	for i := range n {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record %d", i)}).FirstErr())
	}
	c := client(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	for got := 0; got < n; {
		fs := c.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		got += fs.NumRecords()
	}
	// The log holds the batches as the producer sent them (the broker only
	// stamps their offsets): bytes in, and bytes out to the one consumer
	// that read each once, are its size.
	stored, err := b.ReadReplica(topic, 0, 0, 1<<20)
	require.NoError(t, err)
	m := scrape(t, b)
	assert.Equal(t, float64(len(stored)), value(m, "kafka_server_brokertopicmetrics_bytesin_total", "topic", topic))
	assert.Equal(t, float64(n), value(m, "kafka_server_brokertopicmetrics_messagesin_total", "topic", topic))
	assert.Equal(t, float64(len(stored)), value(m, "kafka_server_brokertopicmetrics_bytesout_total", "topic", topic))
	assert.Equal(t, 0.0, value(m, "kafka_server_brokertopicmetrics_replicationbytesout_total"))
	// franz-go speaks the newest Produce the broker offers.
	assert.Equal(t, float64(n), value(m, "kafka_network_requestmetrics_requests_total", "request", "Produce", "version", "10"))
	assert.Equal(t, float64(n), value(m, "kafka_network_requestmetrics_totaltime_seconds", "request", "Produce"))
	assert.GreaterOrEqual(t, value(m, "kafka_network_requestmetrics_requests_total", "request", "Fetch"), 1.0)
	assert.Equal(t, 1.0, value(m, "kafka_controller_kafkacontroller_activecontrollercount"))
	assert.Equal(t, 0.0, value(m, "kafka_controller_kafkacontroller_offlinepartitionscount"))
	assert.Equal(t, 1.0, value(m, "kafka_server_replicamanager_partitioncount"))
	assert.Equal(t, 1.0, value(m, "kafka_server_replicamanager_leadercount"))
	assert.Equal(t, 0.0, value(m, "kafka_server_replicamanager_underreplicatedpartitions"))
	assert.Contains(t, m, "go_goroutines")
	assert.Contains(t, m, "process_open_fds")

	// A group that has read 4 of the 10 records: its coordinator (this
	// broker) reports its lag, to the high watermark.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 4, LeaderEpoch: -1})
	committed, err := kadm.NewClient(client(t, b)).CommitOffsets(ctx, "billing", commit)
	require.NoError(t, err)
	require.NoError(t, committed.Error())
	m = scrape(t, b)
	assert.Equal(t, 6.0, value(m, "kafka_consumergroup_lag", "consumergroup", "billing", "topic", topic, "partition", "0"))
	assert.Equal(t, 6.0, value(m, "kafka_consumergroup_lag_sum", "consumergroup", "billing"))
}

// When a follower stops fetching (paused), its leader takes it out of the
// ISR after replica.lag.time.max.ms and counts the shrink; the partition
// is under replicated until the follower is back and let in again, an
// expand. One
// broker of the three is the active controller.
func TestMetricsShowAnISRShrinkAndExpand(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Configure: func(cfg *broker.Config) {
		cfg.Console = "127.0.0.1:0"
		// The leader must notice the silent follower before failure
		// detection does: the controller would take it out of the ISR
		// itself, and that is no shrink the leader asked for.
		cfg.ReplicaLagTimeMax = 300 * time.Millisecond
		cfg.ReplicaFetchWaitMax = 50 * time.Millisecond
	}})
	const topic = "replicated"
	c.CreateTopic(topic, 1, 3, nil, nil)
	leader := c.WaitFullISR(topic, 0, 15*time.Second)
	require.NoError(t, c.ProduceTo(leader, topic, 0, -1, "replicate me"))

	c.WaitFor(10*time.Second, "one active controller", func() bool {
		active := 0.0
		for _, id := range c.IDs() {
			active += value(scrape(t, c.Broker(id)), "kafka_controller_kafkacontroller_activecontrollercount")
		}
		return active == 1
	})
	m := scrape(t, c.Broker(leader))
	assert.Equal(t, 1.0, value(m, "kafka_server_replicamanager_leadercount"))
	assert.Equal(t, 0.0, value(m, "kafka_server_replicamanager_underreplicatedpartitions"))
	assert.Greater(t, value(m, "kafka_server_brokertopicmetrics_replicationbytesout_total"), 0.0)
	// Replication is not client traffic.
	assert.Equal(t, 0.0, value(m, "kafka_server_brokertopicmetrics_bytesout_total", "topic", topic))

	follower := c.IDs()[0]
	if follower == leader {
		follower = c.IDs()[1]
	}
	c.Pause(follower) // a dead one's refused connections would tell the controller at once
	c.WaitFor(15*time.Second, "the leader to count an ISR shrink", func() bool {
		m := scrape(t, c.Broker(leader))
		return value(m, "kafka_server_replicamanager_underreplicatedpartitions") >= 1 &&
			value(m, "kafka_server_replicamanager_isrshrinks_total") >= 1
	})

	c.Resume(follower)
	c.WaitFor(30*time.Second, "the leader to count an ISR expand", func() bool {
		m := scrape(t, c.Broker(leader))
		return value(m, "kafka_server_replicamanager_underreplicatedpartitions") == 0 &&
			value(m, "kafka_server_replicamanager_isrexpands_total") >= 1
	})

	// A group that has read nothing lags by the one record. Its
	// coordinator reports it, whichever broker that is, with the high
	// watermark the partition's leader gave it; only the coordinator, so
	// that a sum over the cluster counts the group once.
	commit := kadm.Offsets{}
	commit.Add(kadm.Offset{Topic: topic, Partition: 0, At: 0, LeaderEpoch: -1})
	committed, err := kadm.NewClient(c.Client()).CommitOffsets(ctxT(t), "audit", commit)
	require.NoError(t, err)
	require.NoError(t, committed.Error())
	c.WaitFor(10*time.Second, "the group's lag, once", func() bool {
		lag, reporting := 0.0, 0
		for _, id := range c.IDs() {
			m := scrape(t, c.Broker(id))
			if _, ok := m["kafka_consumergroup_lag_sum"]; ok {
				reporting++
			}
			lag += value(m, "kafka_consumergroup_lag", "consumergroup", "audit", "topic", topic, "partition", "0")
		}
		return lag == 1 && reporting == 1
	})
}

// scrape reads a broker's /metrics, from its console's address.
func scrape(t *testing.T, b *broker.Broker) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + b.ConsoleAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return families
}

// value is the value of the series of metric name whose labels include
// the given name, value pairs: a counter's or a gauge's value, a
// histogram's count of observations; summed if several series match, 0 if
// none does.
func value(families map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := families[name]
	if f == nil {
		return 0
	}
	sum := 0.0
	for _, m := range f.Metric {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.Label {
			found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
		}
		if !found {
			return false
		}
	}
	return true
}
