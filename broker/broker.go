package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// Broker is one Kafka broker: the replicas of partitions it holds, the
// server that speaks the wire protocol to clients and peers, its member of
// the gossip cluster and of the metadata quorum.
//
// What the cluster decided (topics, replicas, leaders, ISR) comes from the
// metadata log; the broker applies each new image to its replicas
// (reconcile.go), becoming leader or follower of each partition.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	addr    string // host:port clients are told to use
	cleaner *log.Cleaner
	members *membership.Membership
	ctrl    *controller.Controller
	// ready is closed once Start has caught up with the metadata log:
	// before, the broker answers no client (it would answer from an old
	// image, and a client would believe it), only the metadata quorum's
	// connections; a client's connection waits (route).
	ready chan struct{}
	// incarnation tells this run of the broker from its earlier ones: the
	// broker acts on the metadata only once the controller has registered
	// this incarnation (and so moved away what an earlier one led).
	incarnation int64

	mu     sync.RWMutex
	topics map[string]*topic // the replicas this broker holds

	// appended is closed and replaced each time a partition's log or high
	// watermark moves: a long-polling Fetch waits on it for new data.
	appendMu sync.Mutex
	appended chan struct{}

	fetchers *fetchers      // this broker's follower fetchers, one per leader
	sessions *fetchSessions // fetch sessions (KIP-227) of the fetchers fetching here
	// leaderQuota and followerQuota are the replication throttles
	// (throttle.go): what this broker sends to, and fetches for, replicas
	// catching up.
	leaderQuota, followerQuota quota
	// strays removes, once, the replicas the cluster moved away while
	// this broker was down (removeStrays).
	strays sync.Once

	producerIDs *producerIDs // hands out producer ids to InitProducerId

	coord *coordinator // the group coordinator (coordinator.go)

	// reconciled is the metadata offset the replicas have caught up with.
	reconcileMu   sync.Mutex
	reconciled    uint64
	reconcileWake chan struct{}

	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
	bg        sync.WaitGroup // background loops
	conns     sync.WaitGroup
	connMu    sync.Mutex
	open      map[net.Conn]struct{}

	// consoleLn and consoleSrv serve the web console and /metrics
	// (console.go); nil without Config.Console.
	consoleLn  net.Listener
	consoleSrv *http.Server
	// consoleClient asks the other brokers' consoles for their part of
	// the view (console.Gather), for the page and for the lag metrics.
	consoleClient *http.Client
	metrics       *brokerMetrics // metrics.go
	// requests is queued.max.request.bytes, the bytes of requests read but
	// not yet handled (request_budget.go); nil for no limit.
	requests *requestBudget
}

// topic is a topic of which this broker holds replicas.
type topic struct {
	name string
	id   [16]byte
	// overrides are the topic's configs, as the latest metadata image has
	// them (a map no one modifies), swapped whole when they change.
	overrides atomic.Pointer[map[string]string]
	// partitions is indexed by partition number; nil where this broker
	// holds no replica.
	partitions []*partition
}

// configs returns the topic's own configs; the broker's defaults and
// Kafka's fill in the rest (Config.topicConfigValue).
func (t *topic) configs() map[string]string { return *t.overrides.Load() }

// Start opens the broker's data directory, listens on cfg.Listen, joins
// the cluster, and returns once the broker has caught up with the metadata
// log (for a new cluster: once BootstrapExpect brokers have found each
// other), or fails after cfg.StartTimeout.
func Start(cfg Config) (*Broker, error) {
	b := &Broker{cfg: cfg, log: cfg.Logger, topics: map[string]*topic{}, appended: make(chan struct{}), open: map[net.Conn]struct{}{}, reconcileWake: make(chan struct{}), ready: make(chan struct{})}
	if b.log == nil {
		b.log = slog.Default()
	}
	b.cfg.fillDefaults()
	b.requests = newRequestBudget(b.cfg.QueuedMaxRequestBytes)
	b.incarnation = time.Now().UnixNano()
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.cleaner = log.NewCleaner(b.cfg.RetentionCheckInterval)
	b.fetchers = newFetchers(b)
	b.sessions = newFetchSessions()
	b.producerIDs = newProducerIDs(b.ctx, &b.bg, b.log, b.allocateProducerIDs)
	b.coord = newCoordinator(b)
	b.metrics = newBrokerMetrics(b)
	if err := b.checkDataDir(); err != nil {
		return nil, err
	}
	ln := b.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", b.cfg.Listen); err != nil {
			return nil, err
		}
	}
	if b.cfg.Network != nil {
		ln = b.cfg.Network.Listener(ln)
	}
	b.ln = ln
	if err := b.listenConsole(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("console on %s: %w", b.cfg.Console, err)
	}
	b.addr = b.cfg.Advertised
	if b.addr == "" {
		b.addr = ln.Addr().String()
	}
	if err := b.join(); err != nil {
		ln.Close()
		b.closeConsole()
		b.leave(false)
		return nil, err
	}
	b.cleaner.Start()
	b.conns.Add(1)
	go b.accept()
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.StartTimeout)
	defer cancel()
	if err := b.ctrl.WaitReady(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.waitRegistered(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.waitOwnPartitionsLed(ctx); err != nil {
		b.Close()
		return nil, err
	}
	b.bg.Add(3)
	go b.reconcileLoop()
	go b.replicaLoop()
	go b.coord.run()
	if err := b.waitReconciled(ctx, b.ctrl.Image().Offset); err != nil {
		b.Close()
		return nil, err
	}
	b.serveConsole()
	close(b.ready)
	return b, nil
}

// registered reports whether the metadata has this run of the broker
// registered.
func (b *Broker) registered(im *metadata.Image) bool {
	reg, ok := im.Brokers[b.cfg.NodeID]
	return ok && reg.Incarnation == b.incarnation
}

// waitRegistered waits until the controller has registered this run of the
// broker.
func (b *Broker) waitRegistered(ctx context.Context) error {
	for {
		changed := b.ctrl.Changed()
		if b.registered(b.ctrl.Image()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the controller to register broker %d: %w", b.cfg.NodeID, ctx.Err())
		}
	}
}

// waitOwnPartitionsLed waits while a partition has no leader though this
// broker is in its ISR: the controller took the leadership from this
// broker's previous run, and elects it again now that it is registered
// (a cluster of one broker goes through this at every restart).
func (b *Broker) waitOwnPartitionsLed(ctx context.Context) error {
	for {
		changed := b.ctrl.Changed()
		waiting := false
		for _, t := range b.ctrl.Image().Topics {
			for _, p := range t.Partitions {
				waiting = waiting || (p.Leader < 0 && p.InSync(b.cfg.NodeID))
			}
		}
		if !waiting {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the partitions broker %d is in sync for to have leaders: %w", b.cfg.NodeID, ctx.Err())
		}
	}
}

// join starts gossip and this broker's member of the metadata quorum.
func (b *Broker) join() error {
	mc := membership.Config{
		Self:   membership.Member{ID: b.cfg.NodeID, Addr: b.addr, Rack: b.cfg.Rack, Incarnation: b.incarnation, Console: b.ConsoleAddr()},
		Gossip: b.cfg.Gossip,
		Seeds:  b.cfg.Seeds,
		Logger: b.log,

		Listener:   b.cfg.GossipListener,
		PacketConn: b.cfg.GossipPacketConn,
	}
	if b.cfg.Network != nil {
		mc.WrapTransport = b.cfg.Network.Transport
	}
	var err error
	if b.members, err = membership.Join(mc); err != nil {
		return fmt.Errorf("gossip on %s: %w", b.cfg.Gossip, err)
	}
	voters, err := controller.ParseVoters(b.cfg.QuorumVoters)
	if err != nil {
		return err
	}
	b.ctrl, err = controller.Start(controller.Config{
		ID:                        b.cfg.NodeID,
		Addr:                      b.addr,
		Dir:                       filepath.Join(b.cfg.DataDir, "__cluster_metadata"),
		BootstrapExpect:           b.bootstrapExpect(),
		Members:                   b.members,
		Dial:                      b.dial,
		TopicConfig:               func(t *metadata.Topic, name string) string { return b.cfg.topicConfig(t.Configs, name) },
		AutoLeaderRebalance:       b.cfg.AutoLeaderRebalance,
		LeaderImbalanceInterval:   b.cfg.LeaderImbalanceCheckInterval,
		LeaderImbalancePercentage: b.cfg.LeaderImbalancePerBrokerPercentage,
		Voters:                    voters,
		ElectionTimeout:           b.cfg.ElectionTimeout,
		Logger:                    b.log,
	})
	return err
}

// bootstrapExpect is how many brokers form a new cluster: this one and
// every other seed. Every broker may be given the same seed list, its own
// gossip address included.
func (b *Broker) bootstrapExpect() int {
	n := 1
	for _, s := range b.cfg.Seeds {
		if s != b.members.Addr() && s != b.cfg.Gossip {
			n++
		}
	}
	return n
}

// dial connects to a peer, through the test network when there is one.
func (b *Broker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if b.cfg.Network != nil {
		return b.cfg.Network.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Addr is the address clients reach the broker at, host:port.
func (b *Broker) Addr() string { return b.addr }

// GossipAddr is the address the broker gossips on, host:port.
func (b *Broker) GossipAddr() string { return b.members.Addr() }

// ID is the broker's node.id.
func (b *Broker) ID() int32 { return b.cfg.NodeID }

// ClusterID is the cluster's id, from the metadata log.
func (b *Broker) ClusterID() string { return b.ctrl.Image().ClusterID }

// Metadata is the cluster's metadata as this broker has applied it.
func (b *Broker) Metadata() *metadata.Image { return b.ctrl.Image() }

// ActiveController is the node id of the active controller, -1 if none.
func (b *Broker) ActiveController() int32 { return b.ctrl.ActiveID() }

func (b *Broker) accept() {
	defer b.conns.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.connMu.Lock()
		if b.ctx.Err() != nil { // Close has already closed the open ones
			b.connMu.Unlock()
			nc.Close()
			return
		}
		b.open[nc] = struct{}{}
		b.connMu.Unlock()
		b.conns.Add(1)
		go func() {
			defer b.conns.Done()
			b.route(nc)
			b.connMu.Lock()
			delete(b.open, nc)
			b.connMu.Unlock()
		}()
	}
}

// route reads a connection's first byte: the metadata quorum's connections
// start with controller.RaftMagic and go to the controller; anything else
// is a Kafka client (or a follower) and is served here.
//
// A connection that sends nothing is closed after connections.max.idle.ms,
// as an idle client connection is (serveConn).
func (b *Broker) route(nc net.Conn) {
	var first [1]byte
	nc.SetReadDeadline(time.Now().Add(b.cfg.ConnectionsMaxIdle))
	if _, err := io.ReadFull(nc, first[:]); err != nil {
		nc.Close()
		return
	}
	if first[0] == controller.RaftMagic {
		nc.SetReadDeadline(time.Time{}) // the quorum keeps its own time
		b.ctrl.Accept(nc)
		return
	}
	// Not caught up yet: the client's requests wait until the broker is,
	// as Kafka's wait until it enables request processing. Closing the
	// connection instead looks, to a client, like a broker that refuses
	// it: franz-go takes a connection closed before its first answer for
	// a missing SASL login, and fails the records it was for.
	select {
	case <-b.ready:
	case <-b.ctx.Done():
		nc.Close()
		return
	}
	b.serveConn(b.ctx, nc, io.MultiReader(bytes.NewReader(first[:]), nc))
}

// Close stops the broker cleanly. First a controlled shutdown
// (controlledShutdown): the controller moves the leadership of its
// partitions to other in-sync replicas and takes it out of their ISRs,
// while it still serves, so that clients move to the new leaders and no
// acks=all write waits for it. Then it leaves the gossip cluster, stops
// serving and replicating, and flushes and closes every log. Later calls
// do nothing.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.controlledShutdown()
		b.closeErr = b.stop(true)
	})
	return b.closeErr
}

// Crash stops the broker as a crash would, as far as the rest of the
// cluster can tell: no goodbye, so the others notice only by failure
// detection; and its logs are left as a crash leaves them, without the
// snapshots a clean shutdown writes. (What a real crash loses from the
// page cache, a test truncates itself.)
func (b *Broker) Crash() error {
	b.closeOnce.Do(func() { b.closeErr = b.stop(false) })
	return b.closeErr
}

func (b *Broker) stop(graceful bool) error {
	err := b.ln.Close()
	b.closeConsole()
	b.connMu.Lock()
	b.cancel()
	for nc := range b.open {
		nc.Close()
	}
	b.connMu.Unlock()
	// Handlers first (a Fetch may start background work), then the
	// fetchers and background loops, then the quorum and gossip.
	b.conns.Wait()
	b.fetchers.close()
	b.bg.Wait()
	err = errors.Join(err, b.leave(graceful))
	b.cleaner.Stop()
	return errors.Join(err, b.closeLogs(graceful))
}

// leave stops the quorum member and gossip.
func (b *Broker) leave(graceful bool) error {
	var err error
	if b.ctrl != nil {
		err = b.ctrl.Close()
	}
	if b.members != nil {
		if graceful {
			err = errors.Join(err, b.members.Close())
		} else {
			err = errors.Join(err, b.members.Kill())
		}
	}
	return err
}

// closeLogs closes every log: cleanly, or as a crash leaves them (no
// producer-state snapshot at the log end, so a restart rebuilds the state
// from the last snapshot and the batches after it).
func (b *Broker) closeLogs(graceful bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var err error
	for _, t := range b.topics {
		for _, p := range t.partitions {
			switch {
			case p == nil:
			case graceful:
				err = errors.Join(err, p.log.Close())
			default:
				err = errors.Join(err, p.log.Abandon())
			}
		}
	}
	return err
}

// notifyAppend wakes every Fetch waiting for data.
func (b *Broker) notifyAppend() {
	b.appendMu.Lock()
	close(b.appended)
	b.appended = make(chan struct{})
	b.appendMu.Unlock()
}

// appendedChan returns the channel the next append closes.
func (b *Broker) appendedChan() <-chan struct{} {
	b.appendMu.Lock()
	defer b.appendMu.Unlock()
	return b.appended
}

const metaFile = "meta.properties"

// checkDataDir creates the data directory, or checks that it belongs to
// this node: a broker started on another's data would claim its replicas.
func (b *Broker) checkDataDir() error {
	dir := b.cfg.DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	meta, err := os.ReadFile(filepath.Join(dir, metaFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		props := fmt.Sprintf("# klab broker data\nversion=1\nnode.id=%d\n", b.cfg.NodeID)
		return writeFileAtomic(filepath.Join(dir, metaFile), []byte(props))
	case err != nil:
		return err
	}
	m := regexp.MustCompile(`(?m)^node\.id=(\d+)`).FindSubmatch(meta)
	if m == nil {
		return fmt.Errorf("%s has no node.id", filepath.Join(dir, metaFile))
	}
	if id, _ := strconv.Atoi(string(m[1])); int32(id) != b.cfg.NodeID {
		return fmt.Errorf("%s belongs to node %d, not %d", dir, id, b.cfg.NodeID)
	}
	return nil
}

// partitionDir is where a partition's log lives: <log.dirs>/<topic>-<partition>, as in Kafka.
func (b *Broker) partitionDir(topic string, index int32) string {
	return filepath.Join(b.cfg.DataDir, topic+"-"+strconv.Itoa(int(index)))
}

// maxPartitions caps a topic's partitions. Kafka sets no hard limit, but
// every partition is three open files here, and a request should not be
// able to make the broker open a million of them.
const maxPartitions = 10000

// topicNameRe is what Kafka allows in a topic name.
var topicNameRe = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// validTopicName returns INVALID_TOPIC_EXCEPTION for a name Kafka would refuse.
func validTopicName(name string) error {
	if !topicNameRe.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%w: %q: a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-', and not . or ..", kerr.InvalidTopicException, name)
	}
	return nil
}

// createTopic asks the controller for a topic with n partitions of rf
// replicas (-1: the broker's defaults), or the given assignment, and waits
// until this broker has applied it. It fails with TOPIC_ALREADY_EXISTS,
// INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
// INVALID_CONFIG or NOT_CONTROLLER; validateOnly checks without creating.
func (b *Broker) createTopic(name string, n int32, rf int16, assignment [][]int32, configs map[string]string, validateOnly bool) (*metadata.Topic, error) {
	if err := validTopicName(name); err != nil {
		return nil, err
	}
	if len(assignment) > 0 {
		n = int32(len(assignment))
	}
	if n == -1 {
		n = b.cfg.NumPartitions
	}
	if rf == -1 {
		rf = b.cfg.DefaultReplicationFactor
	}
	if n <= 0 || n > maxPartitions {
		return nil, fmt.Errorf("%w: %d partitions; a topic has 1 to %d", kerr.InvalidPartitions, n, maxPartitions)
	}
	for k, v := range configs {
		if err := validateTopicConfig(k, v); err != nil {
			return nil, fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	t, err := b.ctrl.CreateTopic(name, n, rf, assignment, configs, validateOnly)
	if err != nil || validateOnly {
		return t, err
	}
	return t, b.caughtUp()
}

// caughtUp waits, briefly, until this broker's replicas reflect the
// metadata it has applied: after creating a topic, its partitions are open
// and led before the client is told it exists.
func (b *Broker) caughtUp() error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return b.waitReconciled(ctx, b.ctrl.Image().Offset)
}

// partitionOf returns a partition this broker holds a replica of, or
// UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER for a partition
// that exists elsewhere in the cluster.
func (b *Broker) partitionOf(topicName string, index int32) (*partition, error) {
	b.mu.RLock()
	t := b.topics[topicName]
	var p *partition
	if t != nil && index >= 0 && int(index) < len(t.partitions) {
		p = t.partitions[index]
	}
	b.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if _, ok := b.ctrl.Image().Partition(topicName, index); ok {
		return nil, fmt.Errorf("%w: broker %d holds no replica of %s-%d", kerr.NotLeaderForPartition, b.cfg.NodeID, topicName, index)
	}
	return nil, fmt.Errorf("%w: %s-%d", kerr.UnknownTopicOrPartition, topicName, index)
}

// writeFileAtomic writes a file so that a crash leaves the old or the new
// content, never a mix: a temporary file, synced, renamed over.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// code is errorCode for a response, and logs an error that carries no
// Kafka code: the client sees only UNKNOWN_SERVER_ERROR, the log says why.
func (b *Broker) code(err error) int16 {
	c := errorCode(err)
	if c == kerr.UnknownServerError.Code {
		b.log.Error("request failed", "err", err)
	}
	return c
}

// errorCode is the Kafka error code an error carries, 0 for nil, or
// UNKNOWN_SERVER_ERROR for an error that carries none.
func errorCode(err error) int16 {
	if err == nil {
		return 0
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errorMessage is an error's text for a response's error message field.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
