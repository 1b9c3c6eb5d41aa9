package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/consumer/assign"
)

// group is the consumer's membership of its consumer group, in the classic
// group protocol: JoinGroup and SyncGroup to get an assignment, Heartbeat
// to keep it, LeaveGroup to give it up. The goroutine that calls Poll joins
// and runs the rebalance callbacks; the heartbeat goroutine only flags what
// Poll must do next, as in the Java client, so that callbacks never run
// behind the application's back.
type group struct {
	id          string
	instanceID  string
	assignors   []assign.Assignor
	cooperative bool // every assignor is cooperative: see Config.PartitionAssignmentStrategy

	// findMu makes one goroutine at a time look for the coordinator, so
	// that Poll and the heartbeat goroutine do not both dial it.
	findMu sync.Mutex

	mu         sync.Mutex
	coord      *client.Conn     // our own connection to the coordinator; nil when unknown
	topics     []string         // the subscription, sorted; nil before Subscribe
	memberID   string           // "" until the coordinator gives one
	generation int32            // -1 outside a generation
	protocol   string           // the assignor the coordinator chose, for SyncGroup
	joined     bool             // member of a generation with an assignment: heartbeat
	rejoin     bool             // Poll must rejoin: a rebalance began, or we gave partitions up
	lost       bool             // the membership ended: what we own is lost, not revoked
	fatal      error            // Poll returns this from now on (a fenced static member)
	pending    []TopicPartition // the last rebalance's assignment, sorted
	hasPending bool             // pending waits for its committed offsets
	lastPoll   time.Time        // when Poll last ran, for max.poll.interval.ms
	nextCommit time.Time        // when Poll next auto-commits
	committing bool             // an auto commit is under way: one at a time
	lastCommit chan struct{}    // closed when the last background commit is done
	hbStop     chan struct{}    // closed to stop the heartbeat goroutine; nil before it starts
	hbDone     chan struct{}    // closed when it has stopped

	// joining is the outcome of the join under way, nil if none. A join
	// runs on a goroutine of its own and outlives the Poll that started
	// it: the coordinator answers JoinGroup only when every member has
	// rejoined, and a member that asked again each time a short Poll gave
	// up would never hear the answer of the join it was counted in.
	joining chan joinOutcome
	joins   sync.WaitGroup
	ctx     context.Context // ends on Close: ends a join under way
	cancel  context.CancelFunc
}

// joinOutcome is what a join brought: an assignment, or why not.
type joinOutcome struct {
	assignment map[string][]int32
	err        error
}

// newGroup returns the group state of a consumer with group.id set.
func newGroup(cfg Config) (*group, error) {
	g := &group{id: cfg.GroupID, instanceID: cfg.GroupInstanceID, generation: -1, cooperative: true}
	if cfg.HeartbeatInterval <= 0 || cfg.HeartbeatInterval >= cfg.SessionTimeout {
		// As the Java client checks: a member whose heartbeats come no
		// more often than its session lasts would time out between two.
		return nil, fmt.Errorf("heartbeat.interval.ms (%v) must be positive and below session.timeout.ms (%v)",
			cfg.HeartbeatInterval, cfg.SessionTimeout)
	}
	if len(cfg.PartitionAssignmentStrategy) == 0 {
		return nil, errors.New("partition.assignment.strategy is empty")
	}
	for _, name := range cfg.PartitionAssignmentStrategy {
		a, ok := findAssignor(cfg.Assignors, name)
		if !ok {
			return nil, fmt.Errorf("partition.assignment.strategy: unknown assignor %q", name)
		}
		g.assignors = append(g.assignors, a)
		// As the Java client does, rebalance cooperatively only if every
		// assignor listed can: whichever one the coordinator picks, the
		// members must all follow the same rebalance protocol.
		g.cooperative = g.cooperative && a.Name() == (assign.CooperativeSticky{}).Name()
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g, nil
}

// findAssignor returns the assignor called name: one of the application's
// own, or one of package assign's.
func findAssignor(own []assign.Assignor, name string) (assign.Assignor, bool) {
	for _, a := range own {
		if a.Name() == name {
			return a, true
		}
	}
	return assign.ByName(name)
}

// errFenced says that another consumer with this consumer's
// group.instance.id has taken its place: it must stop.
var errFenced = errors.New("consumer: fenced by another member with the same group.instance.id")

// Subscribe makes the consumer a member of its group (group.id), consuming
// the topics' partitions the group's assignor gives it. As in the Java
// client, it only records the subscription: the next Poll joins the group,
// and runs OnPartitionsAssigned when the assignment arrives. Calling it
// again changes the subscription, with a rebalance.
func (c *Consumer) Subscribe(topics ...string) error {
	if c.group == nil {
		return errors.New("consumer: Subscribe needs group.id")
	}
	if len(topics) == 0 {
		return errors.New("consumer: Subscribe needs topics")
	}
	c.mu.Lock()
	manual := len(c.order) > 0 && !c.subscribed
	c.subscribed = !manual
	c.mu.Unlock()
	if manual {
		return errors.New("consumer: Subscribe after Assign: a consumer either subscribes or assigns itself partitions")
	}
	topics = slices.Clone(topics)
	slices.Sort(topics)
	topics = slices.Compact(topics)
	g := c.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Equal(g.topics, topics) {
		g.topics = topics
		g.rejoin = true
	}
	return nil
}

// pollGroup is the group's part of Poll: it notes that the application is
// alive, rejoins if a rebalance asks for it, installs an assignment still
// waiting for its committed offsets, and starts an auto commit when one is
// due.
func (c *Consumer) pollGroup(ctx context.Context) error {
	g := c.group
	g.mu.Lock()
	g.lastPoll = time.Now()
	subscribed, fatal := g.topics != nil, g.fatal
	needJoin := subscribed && (!g.joined || g.rejoin)
	g.mu.Unlock()
	if fatal != nil {
		return fatal
	}
	if !subscribed {
		c.maybeAutoCommit()
		return nil
	}
	// Close, from another goroutine, ends what Poll waits for here.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(g.ctx, cancel)()
	if needJoin {
		if err := c.join(ctx); err != nil {
			return err
		}
	}
	if err := c.installPending(ctx); err != nil {
		return err
	}
	c.maybeAutoCommit()
	return nil
}

// join rejoins the group, attempt after attempt, until it has an assignment
// or ctx ends; an attempt under way when ctx ends goes on, and the next
// Poll waits for it. Errors that retrying cannot cure are returned.
func (c *Consumer) join(ctx context.Context) error {
	g := c.group
	for {
		g.mu.Lock()
		outcome := g.joining
		g.mu.Unlock()
		if outcome == nil {
			// Heartbeats go on while the callbacks revoke partitions,
			// however long they take, and stop while the join is out.
			c.prepareJoin()
			outcome = make(chan joinOutcome, 1)
			g.mu.Lock()
			g.joined = false
			g.rejoin = false // what asks for a rejoin from now on asks for another
			g.joining = outcome
			g.mu.Unlock()
			g.joins.Add(1)
			go func() {
				defer g.joins.Done()
				a, err := c.joinOnce(g.ctx)
				outcome <- joinOutcome{a, err}
			}()
		}
		var res joinOutcome
		select {
		case res = <-outcome:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
		g.joining = nil
		g.mu.Unlock()
		err := res.err
		if err == nil {
			return c.completeJoin(ctx, res.assignment)
		}
		var retry retriable
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &retry):
			if !retry.now {
				if err := sleep(ctx, c.cfg.RetryBackoff); err != nil {
					return err
				}
			}
		case errors.Is(err, kerr.FencedInstanceID):
			g.mu.Lock()
			g.fatal = fmt.Errorf("%w: %w", errFenced, err)
			g.mu.Unlock()
			return g.fatal
		default:
			return err
		}
	}
}

// retriable wraps an error after which a join is simply tried again; now
// says to try at once (the coordinator told us what to change), else after
// retry.backoff.ms.
type retriable struct {
	err error
	now bool
}

// Error is the error retried.
func (r retriable) Error() string { return r.err.Error() }

// Unwrap lets errors.Is see the Kafka error inside.
func (r retriable) Unwrap() error { return r.err }

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// prepareJoin gives up, before a JoinGroup, what the member must not keep
// through the rebalance. Lost partitions are dropped (OnPartitionsLost).
// With an eager protocol every partition is revoked: committed, then
// OnPartitionsRevoked, then dropped, so that whoever gets it next starts
// where we stopped. With a cooperative one (KIP-429) the member keeps
// consuming and revokes only, after the rebalance, what it was not given
// back; here it gives up only the topics it no longer subscribes to.
func (c *Consumer) prepareJoin() {
	g := c.group
	ctx, cancel := c.rebalanceContext()
	defer cancel()
	g.mu.Lock()
	lost, cooperative := g.lost, g.cooperative
	topics := g.topics
	g.lost = false
	g.hasPending = false // an assignment of a past generation
	g.mu.Unlock()
	owned := c.Assignment()
	if lost {
		c.lostPartitions(owned)
		c.dropPartitions(owned)
		return
	}
	revoked := owned
	if cooperative {
		revoked = nil
		for _, tp := range owned {
			if !slices.Contains(topics, tp.Topic) {
				revoked = append(revoked, tp)
			}
		}
	}
	c.revokePartitions(ctx, revoked)
}

// rebalanceContext bounds the commits of a rebalance. It is not the
// context of the Poll that runs the rebalance: a commit cut short by a
// short Poll would make whoever gets the partitions read them again.
func (c *Consumer) rebalanceContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.group.ctx, c.cfg.RequestTimeout)
}

// revokePartitions commits the partitions (with auto commit), tells the
// application, and drops them.
func (c *Consumer) revokePartitions(ctx context.Context, tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	if c.cfg.EnableAutoCommit {
		// A failure is not fatal, here as in the Java client: whoever gets
		// the partition re-reads what was not committed.
		c.commitSync(ctx, c.positions(tps))
	}
	if c.cfg.OnPartitionsRevoked != nil {
		c.cfg.OnPartitionsRevoked(slices.Clone(tps))
	}
	c.dropPartitions(tps)
}

// lostPartitions tells the application the partitions are gone: their
// positions cannot be committed, others may already consume them.
func (c *Consumer) lostPartitions(tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	if c.cfg.OnPartitionsLost != nil {
		c.cfg.OnPartitionsLost(slices.Clone(tps))
	} else if c.cfg.OnPartitionsRevoked != nil {
		c.cfg.OnPartitionsRevoked(slices.Clone(tps))
	}
}

// dropPartitions removes partitions from the assignment.
func (c *Consumer) dropPartitions(tps []TopicPartition) {
	if len(tps) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	order := c.order[:0:0]
	for _, tp := range c.order {
		if slices.Contains(tps, tp) {
			delete(c.parts, tp)
		} else {
			order = append(order, tp)
		}
	}
	c.order = order
}

// joinOnce is one round of the protocol: JoinGroup, the assignor if we
// lead, SyncGroup. It returns the member's assignment, topic to
// partitions.
func (c *Consumer) joinOnce(ctx context.Context) (map[string][]int32, error) {
	g := c.group
	conn, err := c.coordinator(ctx)
	if err != nil {
		return nil, retriable{err: err}
	}
	owned := map[string][]int32{}
	for _, tp := range c.Assignment() {
		owned[tp.Topic] = append(owned[tp.Topic], tp.Partition)
	}
	g.mu.Lock()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = g.id
	req.SessionTimeoutMillis = int32(c.cfg.SessionTimeout.Milliseconds())
	req.RebalanceTimeoutMillis = int32(c.cfg.MaxPollInterval.Milliseconds())
	req.MemberID = g.memberID
	req.InstanceID = g.instanceIDPtr()
	req.ProtocolType = assign.ProtocolType
	sub := assign.Subscription{Topics: g.topics, Owned: owned, Generation: g.generation}
	for _, a := range g.assignors {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = a.Name()
		p.Metadata = assign.EncodeSubscription(sub, assign.SubscriptionVersion)
		req.Protocols = append(req.Protocols, p)
	}
	g.mu.Unlock()

	// The coordinator holds a JoinGroup until every member has rejoined,
	// up to the rebalance timeout: wait that long, and a request timeout.
	jctx, cancel := context.WithTimeout(ctx, c.cfg.MaxPollInterval+c.cfg.RequestTimeout)
	defer cancel()
	raw, err := conn.Request(jctx, req)
	if err != nil {
		// The connection may still carry the JoinGroup: drop it, so that
		// the next requests do not queue behind it.
		c.coordinatorDead(conn)
		return nil, retriable{err: fmt.Errorf("JoinGroup: %w", err)}
	}
	resp := raw.(*kmsg.JoinGroupResponse)
	if err := c.joinError(conn, "JoinGroup", resp.ErrorCode, resp.MemberID); err != nil {
		return nil, err
	}

	g.mu.Lock()
	g.memberID, g.generation = resp.MemberID, resp.Generation
	if resp.Protocol != nil {
		g.protocol = *resp.Protocol
	}
	protocol, generation, memberID := g.protocol, g.generation, g.memberID
	g.mu.Unlock()

	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group = g.id
	sreq.Generation = generation
	sreq.MemberID = memberID
	sreq.InstanceID = g.instanceIDPtr()
	sreq.ProtocolType = kmsg.StringPtr(assign.ProtocolType)
	sreq.Protocol = kmsg.StringPtr(protocol)
	// SkipAssignment (KIP-814): a static leader that rejoined a stable
	// group is told the assignment stands; it sends none.
	if resp.LeaderID == resp.MemberID && !resp.SkipAssignment {
		if sreq.GroupAssignment, err = c.lead(ctx, protocol, resp.Members); err != nil {
			return nil, err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.MaxPollInterval+c.cfg.RequestTimeout)
	defer cancel()
	raw, err = conn.Request(sctx, sreq)
	if err != nil {
		c.coordinatorDead(conn)
		return nil, retriable{err: fmt.Errorf("SyncGroup: %w", err)}
	}
	sresp := raw.(*kmsg.SyncGroupResponse)
	if err := c.joinError(conn, "SyncGroup", sresp.ErrorCode, memberID); err != nil {
		return nil, err
	}
	a, _, err := assign.DecodeAssignment(sresp.MemberAssignment)
	return a, err
}

// instanceIDPtr is group.instance.id as requests carry it: nil for a
// dynamic member.
func (g *group) instanceIDPtr() *string {
	if g.instanceID == "" {
		return nil
	}
	return kmsg.StringPtr(g.instanceID)
}

// joinError turns the error code of a JoinGroup or SyncGroup answer into
// what the member does next, as the Java client's AbstractCoordinator does.
func (c *Consumer) joinError(conn *client.Conn, api string, code int16, memberID string) error {
	err := kerr.ErrorForCode(code)
	if err == nil {
		return nil
	}
	g := c.group
	err = fmt.Errorf("%s: %w", api, err)
	switch {
	case errors.Is(err, kerr.MemberIDRequired):
		// KIP-394: the coordinator gave us an id; join again with it, so
		// that a member that dies mid-join is known and times out.
		g.mu.Lock()
		g.memberID = memberID
		g.mu.Unlock()
		return retriable{err: err, now: true}
	case errors.Is(err, kerr.UnknownMemberID):
		// The coordinator forgot us (our session expired): we own nothing
		// any more, and join as a new member.
		g.resetGeneration(true)
		return retriable{err: err, now: true}
	case errors.Is(err, kerr.IllegalGeneration):
		// A rebalance went on without us: our partitions are lost, but the
		// member id is still ours.
		g.resetGeneration(false)
		return retriable{err: err, now: true}
	case errors.Is(err, kerr.RebalanceInProgress):
		return retriable{err: err, now: true} // another rebalance began: join it
	case isCoordinatorError(err):
		c.coordinatorDead(conn)
		return retriable{err: err}
	case errors.Is(err, kerr.FencedInstanceID):
		return err
	case kerr.IsRetriable(err):
		return retriable{err: err}
	}
	return err
}

// resetGeneration leaves the generation: what the member owns is lost.
// forgetID also drops the member id, to join as a new member.
func (g *group) resetGeneration(forgetID bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.generation, g.joined, g.rejoin, g.lost = -1, false, true, true
	g.hasPending = false
	if forgetID {
		g.memberID = ""
	}
}

// isCoordinatorError reports whether err says to look for the coordinator
// again: it moved, or is not ready yet.
func isCoordinatorError(err error) bool {
	return errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.CoordinatorNotAvailable) ||
		errors.Is(err, kerr.CoordinatorLoadInProgress)
}

// lead is the leader's part of a rebalance: run the chosen assignor over
// every member's subscription and the partition counts of their topics,
// and encode each member's share for SyncGroup.
func (c *Consumer) lead(ctx context.Context, protocol string, joined []kmsg.JoinGroupResponseMember) ([]kmsg.SyncGroupRequestGroupAssignment, error) {
	assignor, ok := findAssignor(c.group.assignors, protocol)
	if !ok {
		return nil, fmt.Errorf("consumer: the coordinator chose assignor %q, which this consumer does not have", protocol)
	}
	var members []assign.Member
	topics := map[string]bool{}
	for _, m := range joined {
		sub, err := assign.DecodeSubscription(m.ProtocolMetadata)
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", m.MemberID, err)
		}
		instanceID := ""
		if m.InstanceID != nil {
			instanceID = *m.InstanceID
		}
		members = append(members, sub.Member(m.MemberID, instanceID))
		for _, t := range sub.Topics {
			topics[t] = true
		}
	}
	names := slices.Sorted(maps.Keys(topics))
	mctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	// A topic that does not exist yet fails here and is left out: its
	// subscribers get nothing of it until a rebalance after it appears.
	if err := c.cluster.Refresh(mctx, names...); err != nil && mctx.Err() != nil {
		return nil, retriable{err: err}
	}
	counts := map[string]int32{}
	for _, t := range names {
		if n := len(c.cluster.Partitions(t)); n > 0 {
			counts[t] = int32(n)
		}
	}
	var plan assign.Plan
	var userData map[string][]byte
	if ua, ok := assignor.(assign.UserDataAssignor); ok {
		plan, userData = ua.AssignUserData(members, counts)
	} else {
		plan = assignor.Assign(members, counts)
	}
	var out []kmsg.SyncGroupRequestGroupAssignment
	for _, m := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID = m.ID
		a.MemberAssignment = assign.EncodeAssignment(plan[m.ID], userData[m.ID])
		out = append(out, a)
	}
	return out, nil
}

// completeJoin takes the assignment SyncGroup gave. With a cooperative
// protocol, the partitions it takes away are revoked now, and the member
// rejoins at once so that the leader can give them to others in the next
// generation. The new assignment waits for its committed offsets.
func (c *Consumer) completeJoin(ctx context.Context, a map[string][]int32) error {
	var assigned []TopicPartition
	for _, t := range slices.Sorted(maps.Keys(a)) {
		for _, p := range slices.Sorted(slices.Values(a[t])) {
			assigned = append(assigned, TopicPartition{Topic: t, Partition: p})
		}
	}
	g := c.group
	var revoked []TopicPartition
	for _, tp := range c.Assignment() {
		if !slices.Contains(assigned, tp) {
			revoked = append(revoked, tp)
		}
	}
	rctx, cancel := c.rebalanceContext()
	c.revokePartitions(rctx, revoked) // nothing with an eager protocol: all went before the join
	cancel()
	now := time.Now()
	g.mu.Lock()
	g.pending, g.hasPending = assigned, true
	g.joined = true
	if len(revoked) > 0 && g.cooperative {
		g.rejoin = true // so that the partitions we gave up go to others
	}
	g.nextCommit = now.Add(c.cfg.AutoCommitInterval)
	if g.hbStop == nil {
		g.hbStop, g.hbDone = make(chan struct{}), make(chan struct{})
		go c.heartbeatLoop(g.hbStop, g.hbDone)
	}
	g.mu.Unlock()
	return c.installPending(ctx)
}

// installPending installs the assignment of the last rebalance once it has
// the committed offsets of its new partitions: they start there, or by
// auto.offset.reset if nothing was committed. Then OnPartitionsAssigned
// runs, where the application may Seek elsewhere.
func (c *Consumer) installPending(ctx context.Context) error {
	g := c.group
	g.mu.Lock()
	assigned, has := g.pending, g.hasPending
	g.mu.Unlock()
	if !has {
		return nil
	}
	owned := c.Assignment()
	var added []TopicPartition
	for _, tp := range assigned {
		if !slices.Contains(owned, tp) {
			added = append(added, tp)
		}
	}
	committed, err := c.committedRetrying(ctx, added)
	if err != nil {
		return err
	}
	g.mu.Lock()
	if !g.hasPending || !slices.Equal(g.pending, assigned) {
		g.mu.Unlock()
		return nil // a new rebalance began meanwhile; it will install its own
	}
	g.hasPending = false
	g.mu.Unlock()
	c.mu.Lock()
	parts := map[TopicPartition]*partition{}
	for _, tp := range assigned {
		if p, ok := c.parts[tp]; ok {
			parts[tp] = p
			continue
		}
		p := newPartition(tp)
		if off, ok := committed[tp]; ok && off.offset >= 0 {
			p.position, p.epoch = off.offset, off.epoch
		}
		parts[tp] = p
	}
	c.parts, c.order = parts, assigned
	c.deleted = nil // as in Assign: looked for again
	c.mu.Unlock()
	if c.cfg.OnPartitionsAssigned != nil {
		c.cfg.OnPartitionsAssigned(slices.Clone(added))
	}
	return nil
}

// coordinator returns the connection to the group's coordinator, finding
// it first (FindCoordinator, key type group) if it is not known. The
// consumer keeps a connection of its own to it, apart from the one fetches
// use, as the Java client does: a JoinGroup waits on the broker for the
// whole rebalance, and must not hold up fetches from the same broker.
func (c *Consumer) coordinator(ctx context.Context) (*client.Conn, error) {
	g := c.group
	g.findMu.Lock()
	defer g.findMu.Unlock()
	g.mu.Lock()
	conn := g.coord
	g.mu.Unlock()
	if conn != nil && !conn.Closed() {
		return conn, nil
	}
	known, err := c.cluster.Any(ctx)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = g.id            // v0-v3
	req.CoordinatorKeys = []string{g.id} // v4+: a batch of keys (KIP-699)
	req.CoordinatorType = 0              // a group; 1 is a transactional id
	raw, err := known.Request(ctx, req)
	if err != nil {
		known.Close()
		return nil, fmt.Errorf("FindCoordinator: %w", err)
	}
	resp := raw.(*kmsg.FindCoordinatorResponse)
	code, host, port := resp.ErrorCode, resp.Host, resp.Port
	if len(resp.Coordinators) > 0 {
		co := resp.Coordinators[0]
		code, host, port = co.ErrorCode, co.Host, co.Port
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return nil, fmt.Errorf("FindCoordinator: %w", err)
	}
	conn, err = client.Dial(ctx, net.JoinHostPort(host, strconv.Itoa(int(port))), c.cfg.ClientID)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.coord = conn
	g.mu.Unlock()
	return conn, nil
}

// coordinatorDead forgets the coordinator the connection leads to: the
// next request looks for it again.
func (c *Consumer) coordinatorDead(conn *client.Conn) {
	g := c.group
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.coord == conn {
		g.coord = nil
	}
	conn.Close()
}

// heartbeatLoop is the heartbeat goroutine (KIP-62): while the member has
// an assignment it sends a Heartbeat every heartbeat.interval.ms, and it
// makes the member leave the group when Poll has not been called for
// max.poll.interval.ms. It changes no assignment itself: it flags what
// the next Poll must do.
func (c *Consumer) heartbeatLoop(stop, done chan struct{}) {
	defer close(done)
	g := c.group
	lastBeat := time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		g.mu.Lock()
		joined, pollDeadline := g.joined, g.lastPoll.Add(c.cfg.MaxPollInterval)
		g.mu.Unlock()
		wait := c.cfg.HeartbeatInterval
		switch {
		case !joined:
			// Nothing to keep alive: Poll is joining, or will.
			wait = c.cfg.RetryBackoff
		case now.After(pollDeadline):
			c.pollTimeout()
			wait = c.cfg.RetryBackoff
		case now.Sub(lastBeat) >= c.cfg.HeartbeatInterval:
			lastBeat = now
			if !c.heartbeat(stop) {
				// The coordinator moved or could not be reached: look for
				// it again soon, not a heartbeat interval later.
				lastBeat, wait = time.Time{}, c.cfg.RetryBackoff
			}
		default:
			wait = lastBeat.Add(c.cfg.HeartbeatInterval).Sub(now)
		}
		if joined && !now.After(pollDeadline) {
			// Wake when Poll is overdue, to leave the group on time.
			wait = min(wait, pollDeadline.Sub(now)+time.Millisecond)
		}
		timer.Reset(wait)
	}
}

// heartbeat sends one Heartbeat and acts on the answer. Closing stop
// abandons it. It reports false if it did not reach the coordinator.
func (c *Consumer) heartbeat(stop chan struct{}) bool {
	g := c.group
	ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.RequestTimeout, c.cfg.SessionTimeout))
	defer cancel()
	go func() { // Close must not wait out a heartbeat to a dead broker
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := c.coordinator(ctx)
	if err != nil {
		return false
	}
	g.mu.Lock()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = g.id, g.generation, g.memberID
	req.InstanceID = g.instanceIDPtr()
	generation := g.generation
	g.mu.Unlock()
	raw, err := conn.Request(ctx, req)
	if err != nil {
		c.coordinatorDead(conn)
		return false
	}
	err = kerr.ErrorForCode(raw.(*kmsg.HeartbeatResponse).ErrorCode)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.generation != generation || !g.joined {
		return true // Poll began a rejoin meanwhile: the answer is about the past
	}
	switch {
	case err == nil:
	case errors.Is(err, kerr.RebalanceInProgress):
		g.rejoin = true // keep consuming until Poll rejoins
	case errors.Is(err, kerr.UnknownMemberID):
		g.generation, g.joined, g.rejoin, g.lost, g.memberID = -1, false, true, true, ""
	case errors.Is(err, kerr.IllegalGeneration):
		g.generation, g.joined, g.rejoin, g.lost = -1, false, true, true
	case errors.Is(err, kerr.FencedInstanceID):
		g.joined, g.fatal = false, fmt.Errorf("%w: Heartbeat: %w", errFenced, err)
	case isCoordinatorError(err):
		if g.coord == conn {
			g.coord = nil
		}
		conn.Close()
		return false
	}
	return true
}

// pollTimeout makes the member leave the group because the application
// has not called Poll for max.poll.interval.ms: it is stuck, and its
// partitions should go to members that consume them. The next Poll finds
// them lost and joins again as a new member. A static member sends no
// LeaveGroup, as in the Java client: the session timeout removes it.
func (c *Consumer) pollTimeout() {
	g := c.group
	g.mu.Lock()
	g.joined = false
	g.mu.Unlock()
	c.leaveGroup("consumer poll timeout has expired")
	g.mu.Lock()
	g.generation, g.rejoin, g.lost, g.memberID = -1, true, true, ""
	g.mu.Unlock()
}

// leaveGroup sends LeaveGroup for a dynamic member.
func (c *Consumer) leaveGroup(reason string) {
	g := c.group
	g.mu.Lock()
	memberID := g.memberID
	g.mu.Unlock()
	if g.instanceID != "" || memberID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	conn, err := c.coordinator(ctx)
	if err != nil {
		return // the session timeout will remove us
	}
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = g.id
	req.MemberID = memberID // v0-v2
	m := kmsg.NewLeaveGroupRequestMember()
	m.MemberID = memberID
	m.Reason = kmsg.StringPtr(reason) // v5+, KIP-800
	req.Members = []kmsg.LeaveGroupRequestMember{m}
	if _, err := conn.Request(ctx, req); err != nil {
		c.coordinatorDead(conn)
	}
}

// closeGroup is the group's part of Close: stop heartbeating, commit (with
// auto commit), revoke the partitions, leave the group.
func (c *Consumer) closeGroup() {
	g := c.group
	g.cancel() // a join under way
	g.joins.Wait()
	g.mu.Lock()
	stop, done := g.hbStop, g.hbDone
	g.hbStop = nil
	lost := g.lost || g.generation < 0
	subscribed := g.topics != nil
	g.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	owned := c.Assignment()
	switch {
	case subscribed && lost:
		c.lostPartitions(owned)
	case subscribed:
		c.revokePartitions(ctx, owned)
	case c.cfg.EnableAutoCommit:
		c.commitSync(ctx, c.positions(owned)) // assigned by hand, committed to the group
	}
	c.commits.Wait()
	if subscribed {
		c.leaveGroup("the consumer is being closed")
	}
	g.mu.Lock()
	if g.coord != nil {
		g.coord.Close()
		g.coord = nil
	}
	g.mu.Unlock()
}
