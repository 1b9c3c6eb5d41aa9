package broker

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/console"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/metadata"
)

// This file keeps the broker's Prometheus metrics, served at /metrics on
// the console's address (console.go).
//
// Their names are the ones the Prometheus JMX exporter gives Kafka's
// MBeans, lowercased, which is what Confluent's and Strimzi's dashboards
// query: the MBean kafka.server:type=ReplicaManager,name=PartitionCount
// is kafka_server_replicamanager_partitioncount; a dashboard's panels
// built for these work on klab as they do on Kafka. Two conversions are
// Prometheus's own: Kafka's per-second rates (BytesInPerSec) are counters
// here, suffixed _total, from which Prometheus computes the rate itself
// (rate(...[1m])); and Kafka's times in milliseconds (TotalTimeMs) are in
// seconds.
//
// Each broker has a registry of its own, never the process's default one:
// tests run several brokers in one process, and each broker's /metrics
// must show that broker alone.

// brokerMetrics are one broker's Prometheus metrics: the counters and
// histograms the request paths update as they go, and the registry that
// also holds the collectors which read the broker's state when scraped.
//
// Updating a metric whose labels are known only per request
// (WithLabelValues) looks up a map but allocates nothing, so the produce
// and fetch paths do it once per request, or per partition, never per
// record.
type brokerMetrics struct {
	registry *prometheus.Registry

	// requests is RequestsPerSec (kafka.network:type=RequestMetrics) by
	// request and version, counted once a request is handled.
	requests *prometheus.CounterVec
	// totalTime is TotalTimeMs (kafka.network:type=RequestMetrics) by
	// request: from the request read to its response encoded, ready to write.
	totalTime *prometheus.HistogramVec

	// bytesIn, messagesIn and bytesOut are BytesInPerSec, MessagesInPerSec
	// and BytesOutPerSec (kafka.server:type=BrokerTopicMetrics) by topic:
	// what producers wrote to, and consumers read from, this broker.
	// Replication is counted apart, as in Kafka, so that these say what
	// clients did.
	bytesIn, messagesIn, bytesOut *prometheus.CounterVec
	// replicationBytesOut is ReplicationBytesOutPerSec: bytes this leader
	// sent its followers. Kafka keeps it for all topics together only.
	replicationBytesOut prometheus.Counter

	// isrShrinks and isrExpands are IsrShrinksPerSec and IsrExpandsPerSec
	// (kafka.server:type=ReplicaManager): ISR changes this broker asked for
	// as a leader, counted once the controller committed them.
	isrShrinks, isrExpands prometheus.Counter
}

// requestBuckets are the upper bounds, in seconds, of the request time
// histogram: from half a millisecond, a request served from memory on
// loopback, to ten seconds, an acks=all produce waiting for a slow
// follower or a long-polling fetch at its longest.
var requestBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newBrokerMetrics makes a broker's metrics and registers them. Start
// calls it before the broker listens or joins the cluster: whatever reads
// the broker's state does so when scraped (replicaCollector), not now.
func newBrokerMetrics(b *Broker) *brokerMetrics {
	m := &brokerMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_requests_total",
			Help: "Requests handled, by API and version (Kafka's RequestsPerSec).",
		}, []string{"request", "version"}),
		totalTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafka_network_requestmetrics_totaltime_seconds",
			Help:    "Time from a request read to its response encoded, by API (Kafka's TotalTimeMs, in seconds).",
			Buckets: requestBuckets,
		}, []string{"request"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesin_total",
			Help: "Bytes of record batches producers appended to partitions this broker leads, by topic (Kafka's BytesInPerSec).",
		}, []string{"topic"}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_messagesin_total",
			Help: "Records producers appended to partitions this broker leads, by topic (Kafka's MessagesInPerSec).",
		}, []string{"topic"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesout_total",
			Help: "Bytes of record batches this broker returned to consumers, by topic (Kafka's BytesOutPerSec).",
		}, []string{"topic"}),
		replicationBytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_replicationbytesout_total",
			Help: "Bytes of record batches this broker returned to followers (Kafka's ReplicationBytesOutPerSec).",
		}),
		isrShrinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrshrinks_total",
			Help: "ISR changes this broker asked for as leader that took replicas out (Kafka's IsrShrinksPerSec).",
		}),
		isrExpands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrexpands_total",
			Help: "ISR changes this broker asked for as leader that let replicas in (Kafka's IsrExpandsPerSec).",
		}),
	}
	m.registry.MustRegister(
		// The Go runtime's and the process's own (go_*, process_*), as
		// every Go program's /metrics has them.
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.totalTime,
		m.bytesIn, m.messagesIn, m.bytesOut, m.replicationBytesOut,
		m.isrShrinks, m.isrExpands,
		replicaCollector{b},
		groupLagCollector{b},
	)
	return m
}

// metricsHandler serves /metrics: this broker's registry, in Prometheus's
// text format.
func (b *Broker) metricsHandler() http.Handler {
	return promhttp.HandlerFor(b.metrics.registry, promhttp.HandlerOpts{})
}

// served counts a request handled (answered, or not: a Produce with
// acks=0 gets no answer, a failed one closes the connection) and how long
// it took from its read.
func (m *brokerMetrics) served(r *request, took time.Duration) {
	if r.unsupported {
		// An ApiVersions of a version the broker does not know: its
		// version is whatever the client sent, and a series per value
		// would let a client make thousands.
		return
	}
	name := r.key.Name()
	m.requests.WithLabelValues(name, strconv.Itoa(int(r.version))).Inc()
	m.totalTime.WithLabelValues(name).Observe(took.Seconds())
}

// produced counts record batches a producer appended to topic.
func (m *brokerMetrics) produced(topic string, records []byte) {
	m.bytesIn.WithLabelValues(topic).Add(float64(len(records)))
	// The batch headers say how many records: nothing is decoded.
	m.messagesIn.WithLabelValues(topic).Add(float64(log.CountRecords(records)))
}

// fetched counts the record batches a Fetch response returns: to a
// consumer by topic, to a follower (replica >= 0) as replication.
func (m *brokerMetrics) fetched(replica int32, resp *kmsg.FetchResponse, records fetchedRecords) {
	for _, t := range resp.Topics {
		n := 0
		for _, p := range t.Partitions {
			n += records.of(t.Topic, t.TopicID, p.Partition).Len()
		}
		switch {
		case n == 0: // no series for a topic only polled
		case replica >= 0:
			m.replicationBytesOut.Add(float64(n))
		default:
			m.bytesOut.WithLabelValues(t.Topic).Add(float64(n))
		}
	}
}

// isrChanged counts an ISR change this leader asked for, now committed,
// from before to after: a shrink if it took a replica out, an expand if
// it let one in (klab asks for both at once when both are due; Kafka asks
// for each apart, and counts each).
func (m *brokerMetrics) isrChanged(before, after []int32) {
	if slices.ContainsFunc(before, func(id int32) bool { return !slices.Contains(after, id) }) {
		m.isrShrinks.Inc()
	}
	if slices.ContainsFunc(after, func(id int32) bool { return !slices.Contains(before, id) }) {
		m.isrExpands.Inc()
	}
}

// forgetTopic drops a deleted topic's series, as Kafka removes a deleted
// topic's BrokerTopicMetrics: a topic created and deleted again and again
// (tests do) must not leave a series behind each time.
func (m *brokerMetrics) forgetTopic(topic string) {
	for _, v := range []*prometheus.CounterVec{m.bytesIn, m.messagesIn, m.bytesOut} {
		v.DeleteLabelValues(topic)
	}
}

// The gauges replicaCollector reports, named as Kafka's MBeans are by the
// JMX exporter.
var (
	// kafka.server:type=ReplicaManager,name=PartitionCount
	partitionCountDesc = prometheus.NewDesc("kafka_server_replicamanager_partitioncount",
		"Partitions this broker holds a replica of (Kafka's PartitionCount).", nil, nil)
	// kafka.server:type=ReplicaManager,name=LeaderCount
	leaderCountDesc = prometheus.NewDesc("kafka_server_replicamanager_leadercount",
		"Partitions this broker leads (Kafka's LeaderCount).", nil, nil)
	// kafka.server:type=ReplicaManager,name=UnderReplicatedPartitions
	underReplicatedDesc = prometheus.NewDesc("kafka_server_replicamanager_underreplicatedpartitions",
		"Partitions this broker leads whose ISR is smaller than their replica set (Kafka's UnderReplicatedPartitions).", nil, nil)
	// kafka.controller:type=KafkaController,name=ActiveControllerCount
	activeControllerDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_activecontrollercount",
		"1 on the active controller, 0 elsewhere: summed over the cluster, 1 (Kafka's ActiveControllerCount).", nil, nil)
	// kafka.controller:type=KafkaController,name=OfflinePartitionsCount
	offlinePartitionsDesc = prometheus.NewDesc("kafka_controller_kafkacontroller_offlinepartitionscount",
		"Partitions with no leader, as the active controller sees them; 0 on other brokers (Kafka's OfflinePartitionsCount).", nil, nil)
)

// replicaCollector reports the gauges that describe the broker's replicas
// and its controller. It reads them when Prometheus scrapes, rather than
// keeping gauges up to date on every change: a scrape is every few
// seconds, changes can be thousands a second, and a value read is never
// stale.
type replicaCollector struct{ b *Broker }

// Describe sends the descriptions of the gauges Collect reports.
func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- partitionCountDesc
	ch <- leaderCountDesc
	ch <- underReplicatedDesc
	ch <- activeControllerDesc
	ch <- offlinePartitionsDesc
}

// Collect reads the gauges from the broker as it stands.
func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	var held, leading, under int
	b.mu.RLock()
	for _, t := range b.topics {
		for _, p := range t.partitions {
			if p == nil {
				continue
			}
			held++
			p.mu.Lock()
			if p.state.Leader == p.self {
				leading++
				// Kafka counts against the replicas the partition had
				// before a reassignment began: the ones being added are
				// not expected in the ISR yet.
				if len(p.state.ISR) < len(p.state.Replicas)-len(p.state.AddingReplicas) {
					under++
				}
			}
			p.mu.Unlock()
		}
	}
	b.mu.RUnlock()
	var active, offline int
	// ctrl is nil until Start has joined the cluster.
	if b.ctrl != nil && b.ctrl.Active() {
		// Every broker's image says which partitions have no leader; only
		// the active controller reports them, so that a sum over the
		// cluster counts each once, as in Kafka.
		active, offline = 1, offlinePartitions(b.ctrl.Image())
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(partitionCountDesc, held)
	gauge(leaderCountDesc, leading)
	gauge(underReplicatedDesc, under)
	gauge(activeControllerDesc, active)
	gauge(offlinePartitionsDesc, offline)
}

// offlinePartitions counts the partitions that have no leader.
func offlinePartitions(im *metadata.Image) int {
	n := 0
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				n++
			}
		}
	}
	return n
}

// The consumer group gauges groupLagCollector reports. Kafka's brokers
// export no lag (a consumer's records-lag is a client metric); these are
// the names kafka_exporter gives it, which lag dashboards and alerts use.
var (
	groupLagDesc = prometheus.NewDesc("kafka_consumergroup_lag",
		"A group's lag on a partition: the partition's high watermark minus the group's committed offset, for the groups this broker coordinates.",
		[]string{"consumergroup", "topic", "partition"}, nil)
	groupLagSumDesc = prometheus.NewDesc("kafka_consumergroup_lag_sum",
		"A group's lag summed over its partitions, for the groups this broker coordinates.",
		[]string{"consumergroup"}, nil)
)

// groupLagCollector reports the lag of the groups this broker coordinates.
// The coordinator knows their committed offsets, but a partition's high
// watermark only its leader knows for sure: the collector takes both from
// the console's view of the cluster (console.Gather), which asks every
// live broker's console, so each scrape costs a round of them. A group
// appears on its coordinator's /metrics alone, so that a sum over the
// cluster counts it once.
type groupLagCollector struct{ b *Broker }

// Describe sends the descriptions of the gauges Collect reports.
func (c groupLagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupLagDesc
	ch <- groupLagSumDesc
}

// Collect reports each partition's lag where both its committed offset
// and its high watermark are known, and each group's sum.
func (c groupLagCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	if b.consoleClient == nil { // no console, so no one to ask
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	view, err := console.Gather(ctx, consoleSource{b}, b.consoleClient)
	if err != nil {
		return
	}
	for _, g := range view.Groups {
		if g.Coordinator != b.cfg.NodeID {
			continue
		}
		for _, r := range g.Lag {
			if r.Lag >= 0 {
				ch <- prometheus.MustNewConstMetric(groupLagDesc, prometheus.GaugeValue, float64(r.Lag), g.ID, r.Topic, strconv.Itoa(int(r.Partition)))
			}
		}
		ch <- prometheus.MustNewConstMetric(groupLagSumDesc, prometheus.GaugeValue, float64(g.TotalLag), g.ID)
	}
}
