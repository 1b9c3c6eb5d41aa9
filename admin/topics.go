package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NewTopic is a topic to create.
type NewTopic struct {
	Name string
	// Partitions and ReplicationFactor: -1 (or 0) takes the broker's
	// num.partitions and default.replication.factor.
	Partitions        int32
	ReplicationFactor int16
	// Assignment, when set, places each partition's replicas by hand, the
	// preferred leader first; Partitions and ReplicationFactor are then
	// left out, as Kafka requires.
	Assignment [][]int32
	// Configs are topic configs set on the topic: retention.ms=60000, ...
	Configs map[string]string
}

// TopicResult is what happened to one topic of a request.
type TopicResult struct {
	Name string
	// ID is the topic's id, when the broker returned it.
	ID [16]byte
	// Partitions and ReplicationFactor are what a created topic got.
	Partitions        int32
	ReplicationFactor int16
	Err               error
}

// joinTopicErrors joins each topic's error, named, into one error.
func joinTopicErrors(results []TopicResult) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", r.Name, r.Err))
		}
	}
	return errors.Join(errs...)
}

// pendingTopics tracks a request's topics across retries: which are
// settled (done, or failed for good) and which must be sent again.
type pendingTopics struct {
	names   []string
	results map[string]TopicResult
}

func newPendingTopics(names []string) *pendingTopics {
	return &pendingTopics{names: names, results: map[string]TopicResult{}}
}

// open lists the topics not settled yet: those without a result, or whose
// last error is retriable.
func (p *pendingTopics) open() []string {
	var out []string
	for _, n := range p.names {
		if r, ok := p.results[n]; !ok || retriable(r.Err) {
			out = append(out, n)
		}
	}
	return out
}

// settle records results and returns the first retriable error among
// them, so that the retry loop tries again.
func (p *pendingTopics) settle(results []TopicResult) error {
	var again error
	for _, r := range results {
		p.results[r.Name] = r
		if again == nil && retriable(r.Err) {
			again = r.Err
		}
	}
	return again
}

// list returns every topic's result in the order asked, and their errors
// joined; a topic the broker never answered for is an error too.
func (p *pendingTopics) list(err error) ([]TopicResult, error) {
	out := make([]TopicResult, 0, len(p.names))
	for _, n := range p.names {
		r, ok := p.results[n]
		if !ok {
			r = TopicResult{Name: n, Err: err}
			if err == nil {
				r.Err = fmt.Errorf("%w: no answer for topic %s", kerr.UnknownServerError, n)
			}
		}
		out = append(out, r)
	}
	if joined := joinTopicErrors(out); joined != nil {
		return out, joined
	}
	return out, err
}

// CreateTopics creates topics. Each topic is created or fails alone:
// TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR (more replicas than
// brokers), INVALID_CONFIG, ... The request goes to the controller.
func (c *Client) CreateTopics(ctx context.Context, topics ...NewTopic) ([]TopicResult, error) {
	byName := map[string]NewTopic{}
	var names []string
	for _, t := range topics {
		byName[t.Name] = t
		names = append(names, t.Name)
	}
	pending := newPendingTopics(names)
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		for _, name := range pending.open() {
			req.Topics = append(req.Topics, createTopicsTopic(byName[name]))
		}
		return req
	}, func(resp *kmsg.CreateTopicsResponse) error {
		var results []TopicResult
		for _, t := range resp.Topics {
			results = append(results, TopicResult{Name: t.Topic, ID: t.TopicID, Partitions: t.NumPartitions,
				ReplicationFactor: t.ReplicationFactor, Err: kafkaError(t.ErrorCode, t.ErrorMessage)})
		}
		return pending.settle(results)
	})
	return pending.list(err)
}

// createTopicsTopic is one topic of a CreateTopics request.
func createTopicsTopic(t NewTopic) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Name, t.Partitions, t.ReplicationFactor
	if rt.NumPartitions == 0 {
		rt.NumPartitions = -1
	}
	if rt.ReplicationFactor == 0 {
		rt.ReplicationFactor = -1
	}
	for i, replicas := range t.Assignment {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
	}
	for _, k := range sortedKeys(t.Configs) {
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = k, kmsg.StringPtr(t.Configs[k])
		rt.Configs = append(rt.Configs, rc)
	}
	return rt
}

// DeleteTopics deletes topics and all their records. A topic that does not
// exist fails with UNKNOWN_TOPIC_OR_PARTITION. The request goes to the
// controller.
func (c *Client) DeleteTopics(ctx context.Context, names ...string) ([]TopicResult, error) {
	pending := newPendingTopics(names)
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		for _, name := range pending.open() {
			// Versions before 6 read TopicNames, later ones Topics: fill both.
			req.TopicNames = append(req.TopicNames, name)
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(name)
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(resp *kmsg.DeleteTopicsResponse) error {
		var results []TopicResult
		for _, t := range resp.Topics {
			if t.Topic != nil {
				results = append(results, TopicResult{Name: *t.Topic, ID: t.TopicID, Err: kafkaError(t.ErrorCode, t.ErrorMessage)})
			}
		}
		return pending.settle(results)
	})
	return pending.list(err)
}

// NewPartitions asks for a topic to have Count partitions in all.
type NewPartitions struct {
	Topic string
	Count int32
	// Assignment, when set, places the new partitions' replicas, one list
	// per new partition; else the controller places them.
	Assignment [][]int32
}

// CreatePartitions adds partitions to topics. A topic's partitions can
// only grow: a key's partition is its hash modulo the count, so more
// partitions move keys. The request goes to the controller.
func (c *Client) CreatePartitions(ctx context.Context, topics ...NewPartitions) ([]TopicResult, error) {
	byName := map[string]NewPartitions{}
	var names []string
	for _, t := range topics {
		byName[t.Topic] = t
		names = append(names, t.Topic)
	}
	pending := newPendingTopics(names)
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = timeoutMillis(ctx)
		for _, name := range pending.open() {
			t := byName[name]
			rt := kmsg.NewCreatePartitionsRequestTopic()
			rt.Topic, rt.Count = t.Topic, t.Count
			for _, replicas := range t.Assignment {
				ra := kmsg.NewCreatePartitionsRequestTopicAssignment()
				ra.Replicas = replicas
				rt.Assignment = append(rt.Assignment, ra)
			}
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(resp *kmsg.CreatePartitionsResponse) error {
		var results []TopicResult
		for _, t := range resp.Topics {
			results = append(results, TopicResult{Name: t.Topic, Err: kafkaError(t.ErrorCode, t.ErrorMessage)})
		}
		return pending.settle(results)
	})
	return pending.list(err)
}

// TopicDescription is what Metadata says of a topic.
type TopicDescription struct {
	Name     string
	ID       [16]byte
	Internal bool // __consumer_offsets and the like
	// Partitions, by partition number.
	Partitions []PartitionDescription
	Err        error
}

// PartitionDescription is what Metadata says of one partition.
type PartitionDescription struct {
	Partition   int32
	Leader      int32 // -1 when the partition has no leader: it is offline
	LeaderEpoch int32
	// Replicas are the brokers that hold a copy, the preferred leader
	// first; ISR those caught up with the leader; Offline those whose
	// broker is down.
	Replicas, ISR, Offline []int32
	// Err is LEADER_NOT_AVAILABLE for a partition without a leader.
	Err error
}

// DescribeTopics describes topics (every topic when none is named) from
// Metadata: their partitions, leaders, replicas, ISRs and offline
// replicas. Any broker answers. A topic that does not exist has
// UNKNOWN_TOPIC_OR_PARTITION in its Err and in the error returned.
func (c *Client) DescribeTopics(ctx context.Context, names ...string) ([]TopicDescription, error) {
	var resp *kmsg.MetadataResponse
	err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		resp, err = c.metadata(ctx, names) // nil names: every topic
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []TopicDescription
	var errs []error
	for _, t := range resp.Topics {
		d := describeTopic(t)
		if d.Err != nil {
			errs = append(errs, fmt.Errorf("topic %s: %w", d.Name, d.Err))
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b TopicDescription) int { return strings.Compare(a.Name, b.Name) })
	return out, errors.Join(errs...)
}

// describeTopic turns one topic of a Metadata answer into a description.
func describeTopic(t kmsg.MetadataResponseTopic) TopicDescription {
	d := TopicDescription{ID: t.TopicID, Internal: t.IsInternal, Err: kafkaError(t.ErrorCode, nil)}
	if t.Topic != nil {
		d.Name = *t.Topic
	}
	for _, p := range t.Partitions {
		d.Partitions = append(d.Partitions, PartitionDescription{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas,
			Err: kafkaError(p.ErrorCode, nil),
		})
	}
	slices.SortFunc(d.Partitions, func(a, b PartitionDescription) int { return int(a.Partition - b.Partition) })
	return d
}

// BrokerDescription is one broker of the cluster.
type BrokerDescription struct {
	ID   int32
	Host string
	Port int32
	Rack string // "" when the broker has none
}

// ClusterDescription is what DescribeCluster says of the cluster.
type ClusterDescription struct {
	ClusterID string
	// ControllerID is the broker a client sends requests for the
	// controller to. In klab it is the active controller.
	ControllerID int32
	Brokers      []BrokerDescription
}

// DescribeCluster returns the cluster's id, its live brokers and its
// controller. Any broker answers.
func (c *Client) DescribeCluster(ctx context.Context) (ClusterDescription, error) {
	var d ClusterDescription
	err := c.retry(ctx, func(ctx context.Context) error {
		conn, err := c.anyConn(ctx)
		if err != nil {
			return err
		}
		resp, err := request[*kmsg.DescribeClusterResponse](ctx, conn, kmsg.NewPtrDescribeClusterRequest())
		if err != nil {
			return err
		}
		if err := kafkaError(resp.ErrorCode, resp.ErrorMessage); err != nil {
			return err
		}
		d = ClusterDescription{ClusterID: resp.ClusterID, ControllerID: resp.ControllerID}
		c.mu.Lock()
		for _, b := range resp.Brokers {
			c.rememberBroker(b.NodeID, b.Host, b.Port)
		}
		c.mu.Unlock()
		for _, b := range resp.Brokers {
			bd := BrokerDescription{ID: b.NodeID, Host: b.Host, Port: b.Port}
			if b.Rack != nil {
				bd.Rack = *b.Rack
			}
			d.Brokers = append(d.Brokers, bd)
		}
		slices.SortFunc(d.Brokers, func(a, b BrokerDescription) int { return int(a.ID - b.ID) })
		return nil
	})
	return d, err
}

// sortedKeys returns a map's keys in order, so that requests and output
// do not change from run to run.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
