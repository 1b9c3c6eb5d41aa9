package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/metadata"
	"klab.dev/klab/broker/offsets"
)

// This file is the broker's group coordinator: where the group state
// machine (package group) meets the log (package offsets' records in
// __consumer_offsets).
//
// Each group belongs to one partition of __consumer_offsets; the broker
// that leads the partition coordinates the group. When a broker becomes
// leader of such a partition it replays the partition into a store of
// committed offsets (load), answering COORDINATOR_LOAD_IN_PROGRESS to the
// partition's groups until it is done; when it stops leading, it lets the
// groups go (their members, told NOT_COORDINATOR, find the new leader).
// Commits are appended as the partition's leader and acknowledged once
// every in-sync replica has them (acks=all), so the broker that leads next
// (always one from the ISR) has every acknowledged commit: after a
// failover, committed offsets never go back.
//
// Group membership (who is in a group, its generation) lives in memory
// only: after a failover, members learn from the new coordinator that it
// does not know them (UNKNOWN_MEMBER_ID) and join again. Kafka also writes
// the membership to __consumer_offsets, so that a failover does not cost a
// rebalance; klab writes only the offsets.

// coordinatorTick is how often group deadlines (sessions, rebalance
// timeouts) are checked: a session ends at most this late.
const coordinatorTick = 100 * time.Millisecond

// commitTimeout bounds how long a commit waits for the ISR, as Kafka's
// offsets.commit.timeout.ms (5 s).
const commitTimeout = 5 * time.Second

// coordinator is the group coordinator of one broker.
type coordinator struct {
	b      *Broker
	groups *group.Manager

	mu sync.Mutex
	// led holds the __consumer_offsets partitions this broker leads, by
	// partition number.
	led map[int32]*offsetsPartition

	createMu sync.Mutex // one creation of __consumer_offsets at a time

	// active is when each group was last seen with members (a JoinGroup,
	// SyncGroup or Heartbeat, or the expiry pass): offsets retention counts
	// from when a group became empty (KIP-211), not from its last commit.
	activeMu sync.Mutex
	active   map[string]time.Time
}

// offsetsPartition is a __consumer_offsets partition this broker leads.
type offsetsPartition struct {
	p     *partition
	epoch int32 // the leader epoch the store was loaded in
	store *offsets.Store
	// loaded is closed once the load ended; failed says it did not get to
	// the log end (a read error), and the partition's groups are refused.
	loaded   chan struct{}
	failed   atomic.Bool
	loadedAt time.Time // set before loaded is closed

	// appendMu orders writes: commits hold it shared while they append
	// (not while they wait for the ISR); deletions hold it alone from
	// choosing what to delete until their tombstones are appended, so that
	// no commit can land between the choice and the tombstone and be
	// deleted unseen.
	appendMu sync.RWMutex
	// pending counts, per key, commits appended but not yet in the store:
	// a deletion leaves those keys alone, their newest value is not
	// visible yet.
	pendingMu sync.Mutex
	pending   map[pendingKey]int
	writing   int // writes in flight; the store's tombstones go when none is
}

// pendingKey is a commit's key: group, topic, partition.
type pendingKey struct {
	group string
	tp    offsets.TopicPartition
}

func newCoordinator(b *Broker) *coordinator {
	return &coordinator{b: b, groups: group.NewManager(b.cfg.Groups), led: make(map[int32]*offsetsPartition), active: make(map[string]time.Time)}
}

// run checks group deadlines every coordinatorTick until the broker
// stops. Offsets expire on a loop of their own (expireLoop): their writes
// wait for the ISR, and sessions must not wait with them.
func (c *coordinator) run() {
	defer c.b.bg.Done()
	c.b.bg.Add(1)
	go c.expireLoop()
	tick := time.NewTicker(coordinatorTick)
	defer tick.Stop()
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case <-tick.C:
			c.groups.Tick()
		}
	}
}

// expireLoop expires offsets every offsets.retention.check.interval.ms.
func (c *coordinator) expireLoop() {
	defer c.b.bg.Done()
	expire := time.NewTicker(c.b.cfg.OffsetsRetentionCheckInterval)
	defer expire.Stop()
	for {
		select {
		case <-c.b.ctx.Done():
			return
		case <-expire.C:
			c.expireOffsets()
		}
	}
}

// touch notes that a group has members now.
func (c *coordinator) touch(groupID string) {
	c.activeMu.Lock()
	c.active[groupID] = time.Now()
	c.activeMu.Unlock()
}

// lead starts coordinating a __consumer_offsets partition this broker now
// leads in epoch: its groups are loaded from its log in the background.
// Only reconcile calls it.
func (c *coordinator) lead(p *partition, epoch int32) {
	op := &offsetsPartition{p: p, epoch: epoch, store: offsets.NewStore(), loaded: make(chan struct{}), pending: make(map[pendingKey]int)}
	c.mu.Lock()
	c.led[p.index] = op
	c.mu.Unlock()
	c.unloadGroups(p.index) // groups of an earlier term start over from the log
	c.b.bg.Add(1)
	go func() {
		defer c.b.bg.Done()
		c.load(op)
	}()
}

// resign stops coordinating a __consumer_offsets partition: this broker
// no longer leads it, or no longer holds it.
func (c *coordinator) resign(index int32) {
	c.mu.Lock()
	_, ok := c.led[index]
	delete(c.led, index)
	c.mu.Unlock()
	if ok {
		c.unloadGroups(index)
		c.b.log.Info("no longer coordinating", "partition", fmt.Sprintf("%s-%d", offsets.Topic, index))
	}
}

// unloadGroups lets go of the groups of one __consumer_offsets partition
// (of every group, once the topic is deleted): their waiting JoinGroup and
// SyncGroup requests are answered NOT_COORDINATOR.
func (c *coordinator) unloadGroups(index int32) {
	n := c.offsetsPartitions()
	for _, l := range c.groups.List() {
		if n == 0 || offsets.PartitionFor(l.GroupID, n) == index {
			c.groups.Unload(l.GroupID)
		}
	}
}

// offsetsPartitions is how many partitions __consumer_offsets has, 0
// before it exists.
func (c *coordinator) offsetsPartitions() int32 {
	if t := c.b.ctrl.Image().Topic(offsets.Topic); t != nil {
		return int32(len(t.Partitions))
	}
	return 0
}

// load replays a partition's log into its store, from the log start to
// the log end: nothing else appends meanwhile, since commits wait for the
// load and clients may not produce to the topic.
func (c *coordinator) load(op *offsetsPartition) {
	defer close(op.loaded)
	op.failed.Store(true) // until the load reaches the log end
	start := time.Now()
	next, records := op.p.log.StartOffset(), 0
	for c.b.ctx.Err() == nil {
		if leader, epoch := op.p.isLeader(); !leader || epoch != op.epoch {
			return // a newer term loads again, or none
		}
		raw, err := op.p.log.Read(next, 1<<20)
		var outOfRange *log.OffsetOutOfRangeError
		switch {
		case errors.As(err, &outOfRange) && next < outOfRange.Start:
			next = outOfRange.Start // retention moved the start meanwhile
			continue
		case errors.Is(err, log.ErrClosed):
			return // the replica is being dropped
		case err != nil:
			c.b.log.Error("loading groups", "partition", op.p.String(), "err", err)
			return
		case len(raw) == 0:
			op.store.Compact()
			op.loadedAt = time.Now()
			op.failed.Store(false)
			c.b.log.Info("coordinating", "partition", op.p.String(), "epoch", op.epoch, "records", records, "took", time.Since(start).Round(time.Millisecond))
			return
		}
		recs, err := log.DecodeRecords(raw)
		if err != nil {
			c.b.log.Error("loading groups", "partition", op.p.String(), "offset", next, "err", err)
			return
		}
		for _, r := range recs {
			if r.Offset < next {
				continue // the batch began before next
			}
			if err := op.store.Apply(r); err != nil {
				c.b.log.Warn("skipping a record of "+offsets.Topic, "partition", op.p.String(), "err", err)
			}
			records++
		}
		next = log.NextOffset(raw)
	}
}

// coordinating returns the loaded __consumer_offsets partition of a group
// this broker coordinates, or the error a group request gets:
// COORDINATOR_NOT_AVAILABLE before the topic exists, NOT_COORDINATOR when
// another broker leads the group's partition, COORDINATOR_LOAD_IN_PROGRESS
// while this one still loads it.
func (c *coordinator) coordinating(groupID string) (*offsetsPartition, error) {
	if groupID == "" {
		return nil, fmt.Errorf("%w: an empty group id", kerr.InvalidGroupID)
	}
	n := c.offsetsPartitions()
	if n == 0 {
		return nil, fmt.Errorf("%w: %s does not exist yet", kerr.CoordinatorNotAvailable, offsets.Topic)
	}
	index := offsets.PartitionFor(groupID, n)
	c.mu.Lock()
	op := c.led[index]
	c.mu.Unlock()
	if op == nil {
		return nil, fmt.Errorf("%w: broker %d does not lead %s-%d", kerr.NotCoordinator, c.b.cfg.NodeID, offsets.Topic, index)
	}
	if !op.ready() {
		return nil, fmt.Errorf("%w: %s-%d", kerr.CoordinatorLoadInProgress, offsets.Topic, index)
	}
	if op.failed.Load() {
		return nil, fmt.Errorf("%w: %s-%d could not be loaded (see the broker's log)", kerr.CoordinatorNotAvailable, offsets.Topic, index)
	}
	if leader, epoch := op.p.isLeader(); !leader || epoch != op.epoch {
		return nil, fmt.Errorf("%w: broker %d no longer leads %s", kerr.NotCoordinator, c.b.cfg.NodeID, op.p)
	}
	return op, nil
}

// ready reports whether the load has ended.
func (op *offsetsPartition) ready() bool {
	select {
	case <-op.loaded:
		return true
	default:
		return false
	}
}

// commit appends a group's commits to its partition, one record each in
// partition order, and waits until every in-sync replica has them, then
// puts them in the store. Errors are those Kafka gives a commit:
// NOT_COORDINATOR when leadership moved, COORDINATOR_NOT_AVAILABLE when the
// ISR cannot take the write in time.
func (c *coordinator) commit(ctx context.Context, op *offsetsPartition, groupID string, commits map[offsets.TopicPartition]offsets.Commit) error {
	tps := offsets.Sorted(commits)
	recs := make([]log.Record, 0, len(tps))
	for _, tp := range tps {
		recs = append(recs, offsets.CommitRecord(groupID, tp, commits[tp]))
	}
	op.startWrite(groupID, tps)
	defer op.endWrite(groupID, tps)
	op.appendMu.RLock()
	base, epoch, err := c.append(op, recs)
	op.appendMu.RUnlock()
	if err != nil {
		return err
	}
	return c.await(ctx, op, recs, base, epoch)
}

// deleteOffsets deletes, with tombstones, the commits of a group that
// choose picks among its committed ones (all of them, those of some
// partitions, the expired ones), and the group's metadata too with
// withGroup. It returns what it deleted. Nothing can be committed between
// the choice and the tombstones' append; commits appended but not yet
// acknowledged are not offered to choose.
func (c *coordinator) deleteOffsets(ctx context.Context, op *offsetsPartition, groupID string, withGroup bool, choose func(map[offsets.TopicPartition]offsets.Commit) []offsets.TopicPartition) ([]offsets.TopicPartition, error) {
	op.startWrite(groupID, nil)
	defer op.endWrite(groupID, nil)
	op.appendMu.Lock()
	committed := op.store.Committed(groupID)
	op.pendingMu.Lock()
	for tp := range committed {
		if op.pending[pendingKey{groupID, tp}] > 0 {
			delete(committed, tp)
		}
	}
	op.pendingMu.Unlock()
	tps := choose(committed)
	now := time.Now()
	recs := make([]log.Record, 0, len(tps)+1)
	for _, tp := range tps {
		recs = append(recs, offsets.CommitTombstone(groupID, tp, now))
	}
	if withGroup {
		recs = append(recs, offsets.GroupTombstone(groupID, now))
	}
	if len(recs) == 0 {
		op.appendMu.Unlock()
		return nil, nil
	}
	base, epoch, err := c.append(op, recs)
	op.appendMu.Unlock()
	if err != nil {
		return nil, err
	}
	return tps, c.await(ctx, op, recs, base, epoch)
}

// append writes records to the partition as its leader.
func (c *coordinator) append(op *offsetsPartition, recs []log.Record) (base int64, epoch int32, err error) {
	base, epoch, err = c.b.producePartition(op.p, log.EncodeBatch(recs...), -1)
	if err != nil {
		return 0, 0, coordinatorError(err)
	}
	c.b.leaderAppended(op.p)
	return base, epoch, nil
}

// await waits until every in-sync replica has records appended at base in
// epoch, then applies them to the store of the term they were written in:
// op's, or, if leadership changed and came back between the check and the
// append, the current term's (whose load may have ended before the
// append).
func (c *coordinator) await(ctx context.Context, op *offsetsPartition, recs []log.Record, base int64, epoch int32) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	if err := c.b.awaitAllInSync(ctx, op.p, base+int64(len(recs)), epoch); err != nil {
		return coordinatorError(err)
	}
	stores := []*offsets.Store{op.store}
	c.mu.Lock()
	if cur := c.led[op.p.index]; cur != nil && cur != op && cur.epoch == epoch {
		stores = append(stores, cur.store)
	}
	c.mu.Unlock()
	for i, r := range recs {
		r.Offset = base + int64(i)
		for _, st := range stores {
			if err := st.Apply(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// coordinatorError is the error a group request gets for a failed write
// to __consumer_offsets, as Kafka maps them: a moved leader is a moved
// coordinator; a write the ISR could not take in time, or the broker
// stopping, is a coordinator not available for now (the client finds it
// again and retries). NOT_ENOUGH_REPLICAS_AFTER_APPEND is among those:
// the records are written, but the store does not take them, as in Kafka.
func coordinatorError(err error) error {
	switch {
	case errors.Is(err, kerr.NotLeaderForPartition):
		return fmt.Errorf("%w: %v", kerr.NotCoordinator, err)
	case errors.Is(err, kerr.NotEnoughReplicas), errors.Is(err, kerr.NotEnoughReplicasAfterAppend),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, kerr.RequestTimedOut):
		return fmt.Errorf("%w: %v", kerr.CoordinatorNotAvailable, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("%w: %v", kerr.InvalidCommitOffsetSize, err)
	}
	return err
}

// startWrite and endWrite bracket a write: its commit keys are pending
// meanwhile; when the last write in flight ends, the store forgets its
// tombstones, kept only to order late applies against.
func (op *offsetsPartition) startWrite(groupID string, tps []offsets.TopicPartition) {
	op.pendingMu.Lock()
	defer op.pendingMu.Unlock()
	op.writing++
	for _, tp := range tps {
		op.pending[pendingKey{groupID, tp}]++
	}
}

func (op *offsetsPartition) endWrite(groupID string, tps []offsets.TopicPartition) {
	op.pendingMu.Lock()
	defer op.pendingMu.Unlock()
	op.writing--
	for _, tp := range tps {
		k := pendingKey{groupID, tp}
		if op.pending[k]--; op.pending[k] == 0 {
			delete(op.pending, k)
		}
	}
	if op.writing == 0 {
		op.store.Compact()
	}
}

// expireOffsets deletes the commits of groups without members that are
// older than offsets.retention.minutes, counted from the later of the
// commit and when the group was last seen with members (KIP-211: a group's
// offsets start expiring when it becomes empty), or when this broker
// loaded the partition, since members are not known across a failover.
// It also lets go of groups left with neither members nor offsets, and of
// groups of partitions this broker no longer leads.
func (c *coordinator) expireOffsets() {
	now := time.Now()
	cutoff := now.Add(-c.b.cfg.OffsetsRetention)
	for _, l := range c.groups.List() {
		if l.State != group.Empty {
			c.touch(l.GroupID)
		}
	}
	c.mu.Lock()
	led := make([]*offsetsPartition, 0, len(c.led))
	for _, op := range c.led {
		led = append(led, op)
	}
	c.mu.Unlock()
	for _, op := range led {
		if leader, epoch := op.p.isLeader(); !op.ready() || op.failed.Load() || !leader || epoch != op.epoch {
			continue // a partial store would expire what the log has newer
		}
		for _, id := range op.store.Groups() {
			if g, ok := c.groups.Lookup(id); ok && g.State() != group.Empty {
				continue // a group with members keeps its offsets
			}
			c.activeMu.Lock()
			since := later(op.loadedAt, c.active[id])
			c.activeMu.Unlock()
			if !since.Before(cutoff) {
				continue
			}
			expired, err := c.deleteOffsets(c.b.ctx, op, id, false, func(committed map[offsets.TopicPartition]offsets.Commit) []offsets.TopicPartition {
				return offsets.OlderThan(committed, cutoff)
			})
			switch {
			case err != nil:
				c.b.log.Warn("expiring offsets", "group", id, "err", err)
			case len(expired) > 0:
				c.b.log.Info("expired offsets", "group", id, "partitions", len(expired))
			}
		}
	}
	for _, l := range c.groups.List() {
		op, err := c.coordinating(l.GroupID)
		switch {
		case errors.Is(err, kerr.NotCoordinator):
			c.groups.Unload(l.GroupID) // made just as this broker resigned
		case err == nil && l.State == group.Empty && !op.store.Has(l.GroupID):
			_ = c.groups.Delete(l.GroupID) // Empty, and nothing to keep: gone
			c.activeMu.Lock()
			delete(c.active, l.GroupID)
			c.activeMu.Unlock()
		}
	}
}

// findCoordinator returns the broker that coordinates a group: the leader
// of the group's __consumer_offsets partition, which is created on first
// use, as in Kafka.
func (c *coordinator) findCoordinator(ctx context.Context, groupID string) (metadata.Broker, error) {
	t, err := c.offsetsTopic(ctx)
	if err != nil {
		return metadata.Broker{}, err
	}
	index := offsets.PartitionFor(groupID, int32(len(t.Partitions)))
	im := c.b.ctrl.Image()
	st, _ := im.Partition(offsets.Topic, index)
	leader, ok := im.Brokers[st.Leader]
	if st.Leader < 0 || !ok {
		return metadata.Broker{}, fmt.Errorf("%w: %s-%d has no leader", kerr.CoordinatorNotAvailable, offsets.Topic, index)
	}
	return leader, nil
}

// offsetsTopic returns __consumer_offsets, creating it if it does not
// exist: offsets.topic.num.partitions partitions, compacted, replicated
// offsets.topic.replication.factor times or on every broker of a smaller
// cluster.
func (c *coordinator) offsetsTopic(ctx context.Context) (*metadata.Topic, error) {
	if t := c.b.ctrl.Image().Topic(offsets.Topic); t != nil {
		return t, nil
	}
	c.createMu.Lock()
	defer c.createMu.Unlock()
	if t := c.b.ctrl.Image().Topic(offsets.Topic); t != nil {
		return t, nil
	}
	// Capped at the cluster's size: the brokers registered, or the brokers a
	// new cluster is formed from, whichever is more, so that a client's
	// first FindCoordinator while brokers are still registering does not
	// make an under-replicated topic for good (Kafka refuses until enough
	// brokers are up, KAFKA-3959); the creation fails, retriably, until
	// they are.
	rf := min(int(c.b.cfg.OffsetsTopicReplicationFactor), max(len(c.b.ctrl.Image().Brokers), c.b.bootstrapExpect()))
	configs := map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	if c.b.ctrl.Active() {
		_, err = c.b.createTopic(offsets.Topic, c.b.cfg.OffsetsTopicPartitions, int16(rf), nil, configs, false)
	} else {
		req := kmsg.NewCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = offsets.Topic, c.b.cfg.OffsetsTopicPartitions, int16(rf)
		for k, v := range configs {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name, rc.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 10000
		_, err = c.b.askController(ctx, &req, func(r kmsg.Response) int16 {
			if topics := r.(*kmsg.CreateTopicsResponse).Topics; len(topics) == 1 {
				return topics[0].ErrorCode
			}
			return kerr.UnknownServerError.Code
		})
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("%w: creating %s: %v", kerr.CoordinatorNotAvailable, offsets.Topic, err)
	}
	for { // the topic reaches this broker through the metadata log
		changed := c.b.ctrl.Changed()
		if t := c.b.ctrl.Image().Topic(offsets.Topic); t != nil {
			c.b.log.Info("created "+offsets.Topic, "partitions", len(t.Partitions), "replication.factor", rf)
			return t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: waiting for %s to be created", kerr.CoordinatorNotAvailable, offsets.Topic)
		}
	}
}

// group returns a group the coordinator has members or a rebalance for:
// SyncGroup, Heartbeat and LeaveGroup name one. A group it does not know
// (a failover lost its members, or they were removed) is UNKNOWN_MEMBER_ID
// to them: the member joins again.
func (c *coordinator) group(id string) (*group.Group, error) {
	g, ok := c.groups.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("%w: group %q has no members here", kerr.UnknownMemberID, id)
	}
	return g, nil
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
