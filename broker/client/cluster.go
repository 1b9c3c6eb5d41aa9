package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Cluster is a client's view of a Kafka cluster: its brokers, which broker
// leads each partition of the topics it was asked about, and one connection
// to each broker, opened when first needed. Any broker answers Metadata;
// the bootstrap servers are only where the client starts.
type Cluster struct {
	seeds    []string
	clientID string

	mu      sync.Mutex
	brokers map[int32]string // node id -> host:port
	topics  map[string][]Partition
	conns   map[string]*Conn // by address
	// listed holds every topic a Metadata answer has listed, and deleted
	// those of them that the last answer about them said do not exist
	// (Deleted).
	listed, deleted map[string]bool
}

// Partition is what Metadata says of one partition.
type Partition struct {
	Leader      int32
	LeaderEpoch int32
	Err         error // a partition without a leader has an error here
}

// NewCluster returns a view that starts from the bootstrap servers.
func NewCluster(bootstrap []string, clientID string) *Cluster {
	return &Cluster{seeds: bootstrap, clientID: clientID, brokers: map[int32]string{}, topics: map[string][]Partition{}, conns: map[string]*Conn{},
		listed: map[string]bool{}, deleted: map[string]bool{}}
}

// Conn returns the connection to addr, dialing it if there is none.
func (c *Cluster) Conn(ctx context.Context, addr string) (*Conn, error) {
	c.mu.Lock()
	conn := c.conns[addr]
	c.mu.Unlock()
	if conn != nil && !conn.Closed() {
		return conn, nil
	}
	conn, err := Dial(ctx, addr, c.clientID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.conns[addr]; old != nil && !old.Closed() {
		conn.Close()
		return old, nil
	}
	c.conns[addr] = conn
	return conn, nil
}

// Broker returns the connection to a broker by node id.
func (c *Cluster) Broker(ctx context.Context, id int32) (*Conn, error) {
	c.mu.Lock()
	addr, ok := c.brokers[id]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: broker %d is not in the metadata", kerr.BrokerNotAvailable, id)
	}
	return c.Conn(ctx, addr)
}

// Any returns a connection to some broker: a known one, else a bootstrap server.
func (c *Cluster) Any(ctx context.Context) (*Conn, error) {
	c.mu.Lock()
	addrs := make([]string, 0, len(c.brokers)+len(c.seeds))
	for _, a := range c.brokers {
		addrs = append(addrs, a)
	}
	c.mu.Unlock()
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	addrs = append(addrs, c.seeds...)
	var errs error
	for _, a := range addrs {
		conn, err := c.Conn(ctx, a)
		if err == nil {
			return conn, nil
		}
		errs = errors.Join(errs, err)
	}
	return nil, fmt.Errorf("no broker reachable: %w", errs)
}

// Refresh asks a broker for the metadata of the topics and remembers it.
func (c *Cluster) Refresh(ctx context.Context, topics ...string) error {
	conn, err := c.Any(ctx)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := conn.Request(ctx, req)
	if err != nil {
		conn.Close()
		return err
	}
	md := resp.(*kmsg.MetadataResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range md.Brokers {
		c.brokers[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	var errs error
	for _, t := range md.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			delete(c.topics, *t.Topic)
			if errors.Is(err, kerr.UnknownTopicOrPartition) && c.listed[*t.Topic] {
				c.deleted[*t.Topic] = true
			}
			errs = errors.Join(errs, fmt.Errorf("topic %s: %w", *t.Topic, err))
			continue
		}
		c.listed[*t.Topic], c.deleted[*t.Topic] = true, false
		parts := make([]Partition, len(t.Partitions))
		for _, p := range t.Partitions {
			if p.Partition >= 0 && int(p.Partition) < len(parts) {
				parts[p.Partition] = Partition{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Err: kerr.ErrorForCode(p.ErrorCode)}
			}
		}
		c.topics[*t.Topic] = parts
	}
	return errs
}

// Deleted reports whether topic was deleted, as far as Metadata tells: an
// answer listed it, and the last answer about it says it does not exist
// (UNKNOWN_TOPIC_OR_PARTITION). A topic never listed is not deleted, only
// not there yet (or misspelt): a client waits for it, as Kafka's do. A
// topic created again under the name is listed again, and no longer
// deleted.
func (c *Cluster) Deleted(topic string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deleted[topic]
}

// BrokerCount is how many brokers the metadata has listed.
func (c *Cluster) BrokerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.brokers)
}

// Partitions returns what the last Refresh learned of a topic, or nil.
func (c *Cluster) Partitions(topic string) []Partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.topics[topic]
}

// Close closes every connection.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
}
