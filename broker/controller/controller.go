// Package controller is the cluster's control plane: one active controller,
// elected by raft, decides what is true about the cluster — which topics
// exist, where each partition's replicas are, which replica leads and which
// are in sync — and writes each decision as a record in the metadata log
// (package metadata), which every broker replicates and applies. This is
// Kafka's KRaft design, with hashicorp/raft as the consensus log; every
// broker here is a member of the metadata quorum, as in KRaft's combined
// mode.
//
// The controller learns who is alive from gossip (package membership). When
// a broker dies it takes it out of the ISR of every partition and gives the
// partitions it led to another in-sync replica; when the preferred leader
// is back and in sync, it gives leadership back
// (auto.leader.rebalance.enable).
package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
	"klab.dev/klab/broker/raftstore"
)

// Config configures a broker's part of the metadata quorum.
type Config struct {
	// ID is the broker's node.id; Addr the host:port of its Kafka listener,
	// where peers also reach its raft stream.
	ID   int32
	Addr string
	// Dir holds the metadata log and its snapshots.
	Dir string
	// BootstrapExpect is how many brokers form the first quorum: a new
	// cluster waits until gossip shows that many, then every one of them
	// bootstraps raft with the same voters (Consul's bootstrap_expect).
	// Voters, when set, fixes the quorum instead
	// (controller.quorum.voters): BootstrapExpect is then not used.
	BootstrapExpect int
	Voters          []Voter
	Members         *membership.Membership
	// Dial connects to a peer; tests fault it. Default net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TopicConfig resolves a topic's config, falling back to the broker's
	// defaults (for unclean.leader.election.enable).
	TopicConfig func(t *metadata.Topic, name string) string
	// AutoLeaderRebalance is auto.leader.rebalance.enable, checked every
	// LeaderImbalanceInterval (leader.imbalance.check.interval.seconds);
	// a broker gets its leaderships back once more than
	// LeaderImbalancePercentage of them are led by others
	// (leader.imbalance.per.broker.percentage).
	AutoLeaderRebalance       bool
	LeaderImbalanceInterval   time.Duration
	LeaderImbalancePercentage int
	// ElectionTimeout is how long raft followers wait for the leader
	// before electing another. Default 500ms.
	ElectionTimeout time.Duration
	Logger          *slog.Logger
}

// ErrNotController wraps NOT_CONTROLLER: the request must go to the active controller.
var ErrNotController = fmt.Errorf("%w: this broker is not the active controller", kerr.NotController)

// Controller is one broker's member of the metadata quorum. The one whose
// raft node leads is the active controller.
type Controller struct {
	cfg     Config
	log     *slog.Logger
	fsm     *metadata.FSM
	store   *raftstore.Store
	streams *streams
	trans   *raft.NetworkTransport
	raft    *raft.Raft

	// caughtUpTerm is the raft term in which this broker, as the active
	// controller, has applied every record its predecessors committed (the
	// run loop's Barrier); 0 before it ever led. See caughtUp.
	caughtUpTerm atomic.Uint64
	// producerIDsMu makes allocations of producer id blocks one at a time:
	// each reads the next id from the image its predecessor's record left.
	producerIDsMu sync.Mutex
	// configsMu makes config changes one at a time: each is computed from
	// the configs its predecessor's record left (configs.go).
	configsMu sync.Mutex

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start opens the metadata log in cfg.Dir and joins the quorum.
func Start(cfg Config) (*Controller, error) {
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = 500 * time.Millisecond
	}
	if cfg.LeaderImbalanceInterval <= 0 {
		cfg.LeaderImbalanceInterval = 300 * time.Second
	}
	if cfg.BootstrapExpect <= 0 {
		cfg.BootstrapExpect = 1
	}
	c := &Controller{cfg: cfg, log: cfg.Logger, fsm: metadata.NewFSM(), stop: make(chan struct{})}
	if c.log == nil {
		c.log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{c.log}})
	store, err := raftstore.Open(cfg.Dir)
	if err != nil {
		return nil, err
	}
	c.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		store.Close()
		return nil, err
	}
	c.streams = newStreams(cfg.Addr, cfg.Dial)
	c.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: c.streams, MaxPool: 3, Timeout: 2 * time.Second, Logger: hlog,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.ID)
	rc.HeartbeatTimeout = cfg.ElectionTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	// A leader that has heard from no quorum for this long steps down. As
	// long as raft allows (the heartbeat timeout): a loaded machine that
	// delays a heartbeat should not cost the cluster its controller.
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = 1024
	rc.Logger = hlog
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		c.store.Close()
		return nil, err
	}
	c.raft, err = raft.NewRaft(rc, c.fsm, store, store, snaps, unpipelined{c.trans})
	if err != nil {
		c.store.Close()
		return nil, err
	}
	switch {
	case existing:
	case len(cfg.Voters) > 0:
		c.bootstrapVoters()
	default:
		c.wg.Add(1)
		go c.bootstrap()
	}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// Accept hands the controller a raft connection that arrived on the
// broker's listener, its first byte (RaftMagic) already read.
func (c *Controller) Accept(conn net.Conn) { c.streams.deliver(conn) }

// Image is the metadata this broker has applied so far.
func (c *Controller) Image() *metadata.Image { return c.fsm.Image() }

// Changed returns a channel closed when the image next changes.
func (c *Controller) Changed() <-chan struct{} { return c.fsm.Changed() }

// Active reports whether this broker is the active controller.
func (c *Controller) Active() bool { return c.raft.State() == raft.Leader }

// caughtUp reports whether this broker is the active controller and has
// applied every record committed before its term began.
func (c *Controller) caughtUp() bool {
	return c.Active() && c.caughtUpTerm.Load() == c.raft.CurrentTerm()
}

// ActiveID is the active controller's node id, or -1 while there is none.
func (c *Controller) ActiveID() int32 {
	_, id := c.raft.LeaderWithID()
	n, err := strconv.Atoi(string(id))
	if err != nil {
		return -1
	}
	return int32(n)
}

// WaitReady waits until the quorum has a leader and this broker has
// applied every record committed so far: until then its metadata may be
// older than what the cluster decided, and it must not act on it.
func (c *Controller) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, id := c.raft.LeaderWithID(); id != "" {
			commit, _ := strconv.ParseUint(c.raft.Stats()["commit_index"], 10, 64)
			// AppliedIndex counts entries handed to the FSM, which applies
			// them on its own goroutine: wait for the image itself to have
			// the last record committed.
			im := c.Image()
			if commit > 0 && c.raft.AppliedIndex() >= commit && im.ClusterID != "" && im.Offset >= c.lastRecord(commit) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the metadata quorum: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// lastRecord is the index of the last metadata record (a command entry; raft
// also logs entries of its own, which the FSM never sees) at or below index,
// or 0 if the log holds none there (a snapshot then brought the image).
// Behind reports whether this broker's image lacks a record its copy of
// the metadata log already holds: received from the active controller,
// not yet committed or applied. A topic just created is then on its way
// here, and a broker can wait for it rather than deny it exists.
func (c *Controller) Behind() bool {
	return c.Image().Offset < c.lastRecord(c.raft.LastIndex())
}

func (c *Controller) lastRecord(index uint64) uint64 {
	first, err := c.store.FirstIndex()
	if err != nil {
		return 0
	}
	for i := index; i >= first && i > 0; i-- {
		var l raft.Log
		if c.store.GetLog(i, &l) != nil {
			return 0
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

// bootstrap starts a new cluster's quorum once gossip shows
// BootstrapExpect brokers.
func (c *Controller) bootstrap() {
	defer c.wg.Done()
	for {
		changed := c.cfg.Members.Changed()
		alive := c.cfg.Members.Alive()
		if len(alive) >= c.cfg.BootstrapExpect {
			var conf raft.Configuration
			ids := make([]int32, 0, len(alive))
			for id := range alive {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: serverID(id), Address: raft.ServerAddress(alive[id].Addr)})
			}
			err := c.raft.BootstrapCluster(conf).Error()
			if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
				c.log.Error("controller: bootstrapping the metadata quorum", "err", err)
			}
			c.log.Info("controller: metadata quorum bootstrapped", "voters", ids)
			return
		}
		c.log.Info("controller: waiting for brokers to form the metadata quorum", "alive", len(alive), "expect", c.cfg.BootstrapExpect)
		select {
		case <-changed:
		case <-c.stop:
			return
		}
	}
}

// run is the control loop. Every broker runs it; only the active
// controller acts: after every change of membership or metadata, and
// every LeaderImbalanceInterval for the preferred leaders.
func (c *Controller) run() {
	defer c.wg.Done()
	rebalance := time.NewTicker(c.cfg.LeaderImbalanceInterval)
	defer rebalance.Stop()
	for {
		members, metadataChanged := c.cfg.Members.Changed(), c.fsm.Changed()
		rebalanceDue := false
		select {
		case <-c.stop:
			return
		case <-members:
		case <-metadataChanged:
		case <-c.raft.LeaderCh(): // won or lost the election: act, or stop, at once
		case <-rebalance.C:
			rebalanceDue = true
		case <-time.After(time.Second):
		}
		active := c.Active()
		if term := c.raft.CurrentTerm(); active && c.caughtUpTerm.Load() != term {
			// A new controller first applies everything its predecessor
			// committed: deciding on an older image could undo decisions.
			// By term, not by "was not active before": a broker that lost
			// the leadership and won it back between two turns of this
			// loop has a predecessor too.
			if err := c.raft.Barrier(5 * time.Second).Error(); err != nil {
				continue
			}
			c.caughtUpTerm.Store(term)
			c.log.Info("controller: this broker is the active controller", "id", c.cfg.ID)
		}
		if active {
			c.reconcile(rebalanceDue && c.cfg.AutoLeaderRebalance)
		}
	}
}

// reconcile makes the metadata agree with who is alive.
func (c *Controller) reconcile(rebalance bool) {
	im := c.fsm.Image()
	alive := c.cfg.Members.Alive()
	// Who may lead and be in sync: alive brokers, except those that
	// started again since they registered and those shutting down
	// (Eligible). A broker that started again is new: whatever it led or
	// was in sync for belongs to its previous life, which may have lost
	// records (a power cut takes the unflushed tail). Until it is
	// registered again, its partitions move to an in-sync replica; then it
	// follows and catches up like any other.
	eligible := func(id int32) bool { return Eligible(im, alive, id) }
	if im.ClusterID == "" {
		c.record(metadata.Record{InitCluster: newClusterID()})
	}
	c.addToQuorum(alive)
	var imbalanced map[int32]bool
	if rebalance {
		imbalanced = ImbalancedBrokers(im, eligible, c.cfg.LeaderImbalancePercentage)
	}
	for _, t := range im.SortedTopics() {
		unclean := c.cfg.TopicConfig != nil && c.cfg.TopicConfig(t, "unclean.leader.election.enable") == "true"
		for i, p := range t.Partitions {
			leader, isr, err := Decide(p, eligible, unclean)
			if err != nil && !errors.Is(err, kerr.LeaderNotAvailable) {
				c.log.Error("controller: deciding a leader", "topic", t.Name, "partition", i, "err", err)
				continue
			}
			if leader == p.Leader && slices.Equal(isr, p.ISR) {
				if rebalance {
					if want, ok := preferred(p, eligible); ok && imbalanced[want] {
						c.log.Info("controller: preferred leader back", "topic", t.Name, "partition", i, "leader", want)
						c.record(metadata.Record{ChangePartition: &metadata.PartitionChange{Topic: t.Name, Partition: int32(i), PartitionEpoch: p.PartitionEpoch, Leader: &want}})
					}
				}
				continue
			}
			if err != nil {
				c.log.Warn("controller: partition offline", "topic", t.Name, "partition", i, "err", err)
			} else if leader != p.Leader {
				c.log.Info("controller: new leader", "topic", t.Name, "partition", i, "leader", leader, "isr", isr)
			}
			c.record(metadata.Record{ChangePartition: &metadata.PartitionChange{Topic: t.Name, Partition: int32(i), PartitionEpoch: p.PartitionEpoch, Leader: &leader, ISR: isr}})
		}
	}
	// On the image as the decisions above left it, and who may lead by it.
	now := c.fsm.Image()
	c.completeReassignments(now, func(id int32) bool { return Eligible(now, alive, id) })
	// Registrations last, so that a restarted broker's partitions have
	// moved before it counts as alive again.
	for _, id := range sortedIDs(alive) {
		m := alive[id]
		b := metadata.Broker{ID: m.ID, Addr: m.Addr, Rack: m.Rack, Incarnation: m.Incarnation}
		reg, registered := im.Brokers[id]
		if registered && reg.Incarnation == m.Incarnation {
			b.InControlledShutdown = reg.InControlledShutdown // shutting down stays until its next life
		}
		if reg != b {
			if registered && reg.Incarnation != m.Incarnation {
				c.log.Info("controller: broker started again; registering its new life", "id", id)
			}
			c.record(metadata.Record{RegisterBroker: &b})
		}
	}
}

// completeReassignments completes each reassignment whose target replicas
// have all joined the ISR (CompleteReassignment).
func (c *Controller) completeReassignments(im *metadata.Image, eligible func(int32) bool) {
	for _, t := range im.SortedTopics() {
		for i, p := range t.Partitions {
			change, ok := CompleteReassignment(p, eligible)
			if !ok {
				continue
			}
			c.log.Info("controller: reassignment complete", "topic", t.Name, "partition", i, "replicas", change.Replicas)
			change.Topic, change.Partition, change.PartitionEpoch = t.Name, int32(i), p.PartitionEpoch
			c.record(metadata.Record{ChangePartition: &change})
		}
	}
}

// record proposes a decision and logs it if it did not land.
func (c *Controller) record(r metadata.Record) {
	if err := c.propose(r); err != nil {
		c.log.Warn("controller: a decision did not reach the metadata log", "err", err)
	}
}

// propose appends a record to the metadata log and waits until it is
// committed and applied here. Its error is NOT_CONTROLLER off the active
// controller, or the reason the record did not apply.
func (c *Controller) propose(r metadata.Record) error {
	data, err := metadata.Encode(r)
	if err != nil {
		return err
	}
	f := c.raft.Apply(data, 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return ErrNotController
		}
		return fmt.Errorf("%w: metadata log: %v", kerr.RequestTimedOut, err)
	}
	if err, ok := f.Response().(error); ok {
		return err
	}
	return nil
}

// Close leaves the quorum and closes the metadata log.
func (c *Controller) Close() error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stop)
		err = c.raft.Shutdown().Error()
		c.wg.Wait()
		err = errors.Join(err, c.streams.Close(), c.trans.Close())
		// Raft's connection handlers outlive its Shutdown and may still
		// write to the store: it closes once they are gone.
		c.streams.wait()
		err = errors.Join(err, c.store.Close())
	})
	return err
}

func sortedIDs(m map[int32]membership.Member) []int32 {
	ids := make([]int32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// newClusterID makes a cluster id as Kafka's are: 16 random bytes, base64url.
func newClusterID() string {
	var id [16]byte
	rand.Read(id[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// slogWriter passes raft's log lines to the broker's logger.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Resign hands the active controller's role to another voter, if this
// broker has it: a broker about to stop calls it, so that the quorum has a
// controller without waiting out an election timeout.
func (c *Controller) Resign() {
	if !c.Active() {
		return
	}
	if err := c.raft.LeadershipTransfer().Error(); err != nil {
		c.log.Warn("controller: handing over the active controller's role", "err", err)
	}
}
