// Package clustertest runs a cluster of brokers inside a test: N brokers in
// one process, on loopback ports, each in its own temporary directory, all
// talking to each other through a faultnet.Network. A test can kill any
// broker (as a crash would), restart it on the same data, pause it (as
// SIGSTOP would), and cut it off from any of the others, then wait, with a
// deadline, for the cluster to do the right thing.
//
// Lessons 06 to 08 and the reliability tests use it.
package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/faultnet"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// Options shape a cluster.
type Options struct {
	// Brokers is how many brokers; default 3. Their ids are 1 to Brokers.
	Brokers int
	// Racks, when set, gives broker i the rack Racks[(i-1) % len(Racks)].
	Racks []string
	// Configure, when set, adjusts each broker's configuration.
	Configure func(cfg *broker.Config)
	// Voters, when set, fixes the metadata quorum to brokers 1 to Voters
	// (controller.quorum.voters); the others are observers. Unset, the
	// brokers that start together are all voters.
	Voters int
}

// Cluster is a running test cluster.
type Cluster struct {
	t    testing.TB
	Net  *faultnet.Network
	opts Options

	mu    sync.Mutex
	nodes map[int32]*node
	logs  *testLog
}

// node is one broker's fixed identity: it keeps its id, addresses and data
// directory across restarts.
type node struct {
	id     int32
	dir    string
	addr   string // Kafka (and raft) host:port
	gossip string
	rack   string
	b      *broker.Broker // nil while down
	// listener holds the Kafka port, and gossipLn and gossipPC the gossip
	// port, until the broker's first start.
	listener net.Listener
	gossipLn net.Listener
	gossipPC net.PacketConn
}

// Start starts a cluster and waits until every broker has joined it. The
// cluster is closed when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Brokers <= 0 {
		opts.Brokers = 3
	}
	c := &Cluster{t: t, Net: faultnet.New(), opts: opts, nodes: map[int32]*node{}, logs: &testLog{t: t}}
	// Each Kafka port and each gossip port (TCP and UDP) is held from now
	// on, so that nothing else on the machine (other tests' clusters, say)
	// takes it before the broker starts: its first start uses these
	// sockets. Held at once, they are all distinct.
	for i := 1; i <= opts.Brokers; i++ {
		c.nodes[int32(i)] = c.newNode(int32(i))
	}
	// Cleanups run last registered first: registered after the data
	// directories, this one stops the brokers before they are removed.
	t.Cleanup(c.close)
	var wg sync.WaitGroup
	errs := make([]error, opts.Brokers+1)
	for id := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[id] = c.start(id)
		}()
	}
	wg.Wait()
	for id, err := range errs {
		if err != nil {
			t.Fatalf("starting broker %d: %v", id, err)
		}
	}
	c.WaitFor(10*time.Second, "every broker registered", func() bool {
		for _, n := range c.nodes {
			if len(n.b.Metadata().Brokers) < opts.Brokers {
				return false
			}
		}
		return true
	})
	return c
}

// newNode makes broker id's identity: a data directory, and a Kafka port
// and gossip ports held from now on.
func (c *Cluster) newNode(id int32) *node {
	c.t.Helper()
	n := &node{id: id, dir: filepath.Join(c.t.TempDir(), "broker-"+strconv.Itoa(int(id)))}
	c.holdPorts(n)
	if len(c.opts.Racks) > 0 {
		n.rack = c.opts.Racks[(int(id)-1)%len(c.opts.Racks)]
	}
	return n
}

// holdPorts gives a node new addresses, held until it starts.
func (c *Cluster) holdPorts(n *node) {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	gln, gpc, err := membership.HoldLoopback()
	if err != nil {
		ln.Close()
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { ln.Close(); gln.Close(); gpc.Close() }) // in case the broker never starts
	n.addr, n.gossip, n.listener, n.gossipLn, n.gossipPC = ln.Addr().String(), gln.Addr().String(), ln, gln, gpc
	nd := c.Net.Node(n.id)
	nd.Own(n.addr)
	nd.Own(n.gossip)
}

// AddBroker starts one more broker, with the next id, and waits until the
// cluster has registered it. It joins as an operator adds a broker to a
// running cluster: it knows the others' gossip addresses and the quorum's
// voters (controller.quorum.voters), is not one of them, and so receives
// the metadata log as an observer. It holds no partition until one is
// created or reassigned onto it.
func (c *Cluster) AddBroker() int32 {
	c.t.Helper()
	var voters []string
	c.mu.Lock()
	id := int32(len(c.nodes) + 1)
	for _, v := range c.IDs() {
		voters = append(voters, fmt.Sprintf("%d@%s", v, c.nodes[v].addr))
	}
	c.nodes[id] = c.newNode(id)
	c.mu.Unlock()
	configure := c.opts.Configure
	c.opts.Configure = func(cfg *broker.Config) {
		if cfg.NodeID == id {
			cfg.QuorumVoters = strings.Join(voters, ",")
		}
		if configure != nil {
			configure(cfg)
		}
	}
	if err := c.start(id); err != nil {
		c.t.Fatalf("adding broker %d: %v", id, err)
	}
	c.t.Logf("clustertest: added broker %d", id)
	c.WaitFor(20*time.Second, fmt.Sprintf("broker %d registered", id), func() bool {
		p := c.activeController()
		if p == nil {
			return false
		}
		_, ok := p.Metadata().Brokers[id]
		return ok
	})
	return id
}

// MoveBroker starts a stopped broker again on its data directory but on
// new addresses, Kafka's and gossip's, as a broker moved to another
// machine or given another port: the cluster must find it there.
func (c *Cluster) MoveBroker(id int32) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	if n.b != nil {
		c.mu.Unlock()
		c.t.Fatalf("broker %d is running", id)
	}
	old := n.addr
	c.holdPorts(n)
	c.mu.Unlock()
	if err := c.start(id); err != nil {
		c.t.Fatalf("restarting broker %d on %s: %v", id, n.addr, err)
	}
	c.t.Logf("clustertest: restarted broker %d on %s (was %s)", id, n.addr, old)
}

func (c *Cluster) config(n *node) broker.Config {
	cfg := broker.DefaultConfig()
	cfg.NodeID = n.id
	cfg.Listen = n.addr
	cfg.DataDir = n.dir
	cfg.Rack = n.rack
	cfg.Gossip = n.gossip
	for _, other := range c.nodes {
		cfg.Seeds = append(cfg.Seeds, other.gossip)
	}
	slices.Sort(cfg.Seeds)
	cfg.Listener, n.listener = n.listener, nil
	cfg.GossipListener, cfg.GossipPacketConn, n.gossipLn, n.gossipPC = n.gossipLn, n.gossipPC, nil, nil
	cfg.Network = c.Net.Node(n.id)
	cfg.Logger = slog.New(c.logs.handler(n.id))
	cfg.ReplicaLagTimeMax = 2 * time.Second
	cfg.StartTimeout = 30 * time.Second
	cfg.DefaultReplicationFactor = int16(min(3, len(c.nodes)))
	if c.opts.Voters > 0 {
		var voters []string
		for id := int32(1); id <= int32(c.opts.Voters); id++ {
			voters = append(voters, fmt.Sprintf("%d@%s", id, c.nodes[id].addr))
		}
		cfg.QuorumVoters = strings.Join(voters, ",")
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	return cfg
}

func (c *Cluster) start(id int32) error {
	c.mu.Lock()
	n := c.nodes[id]
	cfg := c.config(n)
	c.mu.Unlock()
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	n.b = b
	c.mu.Unlock()
	return nil
}

func (c *Cluster) close() {
	c.mu.Lock()
	var running []*broker.Broker
	for _, n := range c.nodes {
		if n.b != nil {
			running = append(running, n.b)
			n.b = nil
		}
	}
	c.mu.Unlock()
	c.Net.Heal()
	for id := range c.nodes {
		c.Net.Resume(id)
	}
	var wg sync.WaitGroup
	for _, b := range running {
		wg.Add(1)
		go func() { defer wg.Done(); b.Crash() }()
	}
	wg.Wait()
	c.logs.stop()
}

// IDs are the brokers' ids, in order.
func (c *Cluster) IDs() []int32 {
	ids := make([]int32, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Broker returns a running broker, or nil while it is down.
func (c *Cluster) Broker(id int32) *broker.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].b
}

// Addr is a broker's Kafka address, whether it is up or down.
func (c *Cluster) Addr(id int32) string { return c.nodes[id].addr }

// Dir is a broker's data directory.
func (c *Cluster) Dir(id int32) string { return c.nodes[id].dir }

// Addrs are the Kafka addresses of every broker, up or down: a client
// bootstraps from whichever answers.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, id := range c.IDs() {
		out = append(out, c.nodes[id].addr)
	}
	return out
}

// Kill stops a broker as a crash would, without a goodbye: its listener
// closes, so the others learn it is gone when their connections to it are
// refused (membership), or else by failure detection.
func (c *Cluster) Kill(id int32) {
	c.t.Helper()
	c.take(id).Crash()
	c.t.Logf("clustertest: killed broker %d", id)
}

// Stop stops a broker cleanly: it says goodbye, so leaders move at once.
func (c *Cluster) Stop(id int32) {
	c.t.Helper()
	if err := c.take(id).Close(); err != nil {
		c.t.Errorf("stopping broker %d: %v", id, err)
	}
}

// take marks a running broker as down and returns it, to be stopped.
func (c *Cluster) take(id int32) *broker.Broker {
	c.t.Helper()
	c.mu.Lock()
	b := c.nodes[id].b
	c.nodes[id].b = nil
	c.mu.Unlock()
	if b == nil {
		c.t.Fatalf("broker %d is not running", id)
	}
	return b
}

// Restart starts a stopped broker again on its data directory and
// addresses, and waits until it has caught up with the metadata log.
func (c *Cluster) Restart(id int32) {
	c.t.Helper()
	if err := c.start(id); err != nil {
		c.t.Fatalf("restarting broker %d: %v", id, err)
	}
	c.t.Logf("clustertest: restarted broker %d", id)
}

// RestartAll starts every stopped broker again, all at once, as a whole
// cluster comes back after an outage: none of them could start alone,
// without a quorum of the metadata log.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	var stopped []int32
	for _, id := range c.IDs() {
		if c.Broker(id) == nil {
			stopped = append(stopped, id)
		}
	}
	errs := make([]error, len(stopped))
	var wg sync.WaitGroup
	for i, id := range stopped {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(id) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			c.t.Fatalf("restarting broker %d: %v", stopped[i], err)
		}
	}
	c.t.Logf("clustertest: restarted brokers %v", stopped)
}

// Pause freezes a broker, as SIGSTOP would; Resume thaws it.
func (c *Cluster) Pause(id int32)  { c.Net.Pause(id); c.t.Logf("clustertest: paused broker %d", id) }
func (c *Cluster) Resume(id int32) { c.Net.Resume(id); c.t.Logf("clustertest: resumed broker %d", id) }

// Isolate cuts a broker off from the given others, or from all of them.
func (c *Cluster) Isolate(id int32, from ...int32) {
	c.Net.Isolate(id, from...)
	c.t.Logf("clustertest: isolated broker %d from %v", id, from)
}

// Heal restores every link.
func (c *Cluster) Heal() { c.Net.Heal(); c.t.Logf("clustertest: healed the network") }

// WaitFor polls cond until it is true, failing the test after timeout.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("clustertest: gave up after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

// Partition returns a partition's state as the given broker knows it, or
// as the active controller knows it when id is 0.
func (c *Cluster) Partition(id int32, topic string, partition int32) (metadata.Partition, bool) {
	var b *broker.Broker
	if id == 0 {
		b = c.activeController()
	} else {
		b = c.Broker(id)
	}
	if b == nil {
		return metadata.Partition{}, false
	}
	return b.Metadata().Partition(topic, partition)
}

// activeController returns the running broker that is the active
// controller, or nil.
func (c *Cluster) activeController() *broker.Broker {
	for _, id := range c.IDs() {
		if b := c.Broker(id); b != nil && b.ActiveController() == id && c.Net.Reachable(id, id) {
			return b
		}
	}
	return nil
}

// WaitLeader waits until the active controller has a leader for the
// partition that satisfies ok (any leader when ok is nil), and every running
// broker reachable from it agrees, and returns it.
func (c *Cluster) WaitLeader(topic string, partition int32, timeout time.Duration, ok func(leader int32) bool) int32 {
	c.t.Helper()
	var leader int32 = -1
	c.WaitFor(timeout, fmt.Sprintf("a leader for %s-%d", topic, partition), func() bool {
		p, found := c.Partition(0, topic, partition)
		if !found || p.Leader < 0 || (ok != nil && !ok(p.Leader)) || c.Broker(p.Leader) == nil {
			return false
		}
		// The leader itself must know it leads.
		lp, _ := c.Partition(p.Leader, topic, partition)
		if lp.Leader != p.Leader || lp.LeaderEpoch != p.LeaderEpoch {
			return false
		}
		leader = p.Leader
		return true
	})
	return leader
}

// WaitFullISR waits until every replica of the partition is in its ISR,
// as the active controller and the leader itself both know it, and
// returns the leader. A test that crashes brokers must know which replicas
// hold every acknowledged record: under load, failure detection can take
// a slow broker for a dead one, and the controller then takes it out of
// the ISR until it catches up again.
func (c *Cluster) WaitFullISR(topic string, partition int32, timeout time.Duration) int32 {
	c.t.Helper()
	var leader int32 = -1
	c.WaitFor(timeout, fmt.Sprintf("every replica of %s-%d in its ISR", topic, partition), func() bool {
		p, found := c.Partition(0, topic, partition)
		if !found || p.Leader < 0 || len(p.ISR) != len(p.Replicas) || c.Broker(p.Leader) == nil {
			return false
		}
		r, ok := c.Broker(p.Leader).Replica(topic, partition)
		if !ok || !r.Leader || r.LeaderEpoch != p.LeaderEpoch || len(r.ISR) != len(p.Replicas) {
			return false
		}
		leader = p.Leader
		return true
	})
	return leader
}

// Client returns a franz-go client for the cluster, closed with the test.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Addrs()...)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with the given partitions and replication
// factor and configs, or with assignment (one replica list per partition)
// when it is not nil, and waits until every partition has a leader.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16, assignment [][]int32, configs map[string]*string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i, rs := range assignment {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
	}
	for k, v := range configs {
		rc := kmsg.NewCreateTopicsRequestTopicConfig()
		rc.Name, rc.Value = k, v
		rt.Configs = append(rt.Configs, rc)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, c.Client())
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		c.t.Fatalf("creating topic %s: %v", name, err)
	}
	n := partitions
	if assignment != nil {
		n = int32(len(assignment))
	}
	for p := range n {
		c.WaitLeader(name, p, 15*time.Second, nil)
	}
}

// LogDir is where a broker keeps a partition's log.
func (c *Cluster) LogDir(id int32, topic string, partition int32) string {
	return filepath.Join(c.nodes[id].dir, topic+"-"+strconv.Itoa(int(partition)))
}

// LoseTail cuts bytes off the end of a stopped broker's partition log, as
// if the last writes had been in the page cache, never flushed, when the
// machine lost power. Recovery then finds a torn batch and cuts it off.
func (c *Cluster) LoseTail(id int32, topic string, partition int32, bytes int64) {
	c.t.Helper()
	if c.Broker(id) != nil {
		c.t.Fatalf("broker %d is running: stop it before cutting its log", id)
	}
	dir := c.LogDir(id, topic, partition)
	segs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(segs) == 0 {
		c.t.Fatalf("no segments in %s: %v", dir, err)
	}
	slices.Sort(segs)
	last := segs[len(segs)-1]
	st, err := os.Stat(last)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Truncate(last, max(st.Size()-bytes, 0)); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("clustertest: broker %d lost the last %d bytes of %s-%d", id, bytes, topic, partition)
}

// LagTime is an Options.Configure that sets replica.lag.time.max.ms.
func LagTime(d time.Duration) func(*broker.Config) {
	return func(cfg *broker.Config) { cfg.ReplicaLagTimeMax = d }
}

// ProduceTo sends one record straight to one broker, as a producer without
// retries would, and returns the partition's error: the error code itself,
// not what a client makes of it after retrying.
func (c *Cluster) ProduceTo(id int32, topic string, partition int32, acks int16, value string) error {
	c.t.Helper()
	_, err := c.ProduceBatch(id, topic, partition, acks, log.EncodeBatch(log.Record{Value: []byte(value)}))
	return err
}

// ProduceBatch is ProduceTo for a batch the test built (an idempotent
// producer's, say): it returns the offset the partition answered with,
// and its error.
func (c *Cluster) ProduceBatch(id int32, topic string, partition int32, acks int16, batch []byte) (int64, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := client.Dial(ctx, c.Addr(id), "clustertest")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = acks, 3000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := conn.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	sp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return sp.BaseOffset, kerr.ErrorForCode(sp.ErrorCode)
}
