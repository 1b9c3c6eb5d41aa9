package broker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/metadata"
)

// partition is this broker's replica of one partition: its log, and what
// the replica needs to play its role, leader or follower.
//
// The leader takes every write and tracks how far each follower has
// fetched; the high watermark is the offset every in-sync replica has
// reached, and consumers read only below it, so that nothing they see can
// be lost when the leader dies. A follower copies the leader's log by
// fetching from it (fetcher.go) and learns the high watermark from it.
type partition struct {
	topic *topic
	index int32
	log   *log.Log
	self  int32 // this broker's id

	// roleMu orders changes of role against writes to the log: a produce
	// holds it (shared) from its leadership check to the end of its
	// append, a follower's fetcher from its epoch check to the end of its
	// append or truncation, and a change of role (apply) holds it alone.
	// Without it, an append checked under the old role could land after
	// the new one began (Kafka's leaderIsrUpdateLock). Taken before mu.
	roleMu sync.RWMutex

	mu    sync.Mutex
	state metadata.Partition // as the metadata log last said
	fresh bool               // no state applied yet
	// hwm is the high watermark: every in-sync replica has the records
	// below it. It never goes backwards on a leader.
	hwm int64
	// leaderHWM is, on a follower, the high watermark its leader last
	// reported, unclamped by the follower's own log end: how far behind
	// the follower is (DescribeLogDirs' offset lag).
	leaderHWM int64
	// followers is, on the leader, what each other replica has fetched.
	followers map[int32]*followerState
	// alterInFlight is set while an ISR change is on its way to the
	// controller: one at a time, each against the partition epoch it saw.
	alterInFlight bool
	pendingISR    []int32
	pendingEpoch  int32 // the partition epoch pendingISR was asked against
	// changed is closed and replaced when the high watermark or the role
	// changes: acks=all produce requests wait on it.
	changed chan struct{}

	logger  *slog.Logger
	metrics *brokerMetrics // counts the ISR changes this leader asked for
}

// followerState is what a leader knows of one follower.
type followerState struct {
	// leo is the follower's log end offset: the offset it fetched from last.
	// -1 until its first fetch to this leader.
	leo int64
	// caughtUp is the last time the follower had everything the leader had;
	// one that has not caught up for replica.lag.time.max.ms leaves the ISR.
	caughtUp time.Time
	// lastFetch and leaderEndAtLastFetch let a fetch that reaches where the
	// leader's log ended at the previous fetch count as caught up then.
	lastFetch            time.Time
	leaderEndAtLastFetch int64
	// logStart is the follower's log start offset, as its last fetch said
	// (KIP-107); -1 until it says. DeleteRecords waits for the in-sync
	// followers' to reach the leader's.
	logStart int64
}

func newPartition(t *topic, index, self int32, l *log.Log, logger *slog.Logger, metrics *brokerMetrics) *partition {
	return &partition{topic: t, index: index, log: l, self: self, fresh: true, changed: make(chan struct{}), logger: logger, metrics: metrics}
}

// signal wakes whoever waits on p.changed. The caller holds p.mu.
func (p *partition) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *partition) String() string { return fmt.Sprintf("%s-%d", p.topic.name, p.index) }

// isLeader reports whether this replica leads, and in which epoch.
func (p *partition) isLeader() (bool, int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.Leader == p.self, p.state.LeaderEpoch
}

// highWatermark is the replica's high watermark.
func (p *partition) highWatermark() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hwm
}

// highWatermarkBehindEpoch reports that this leader's high watermark has
// not yet reached the offset where its leader epoch began. A new leader
// learns the high watermark from its followers' fetches: until then, its
// own may be below the one the previous leader showed consumers, and an
// offset it answered would go back in time (KIP-207).
func (p *partition) highWatermarkBehindEpoch() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, epochStart := p.log.EndOffsetForEpoch(p.state.LeaderEpoch - 1)
	return p.hwm < epochStart
}

// apply takes the partition's state from a new metadata image and returns
// the role change it brings: becameLeader or becameFollower (of a new
// leader or epoch), or neither.
func (p *partition) apply(st metadata.Partition) (becameLeader, becameFollower bool) {
	p.roleMu.Lock()
	defer p.roleMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	old, fresh := p.state, p.fresh
	if !fresh && st.PartitionEpoch < old.PartitionEpoch {
		return false, false // older than what we know: fenced
	}
	if p.askedFor(st) {
		// The metadata log brought this leader's ISR change before the
		// controller's answer did (altered then finds it applied).
		p.metrics.isrChanged(old.ISR, st.ISR)
	}
	p.state, p.fresh = st, false
	epochChanged := fresh || st.LeaderEpoch != old.LeaderEpoch || st.Leader != old.Leader
	if st.PartitionEpoch != old.PartitionEpoch {
		// The controller decided; our request, if any, is answered.
		p.alterInFlight, p.pendingISR = false, nil
	}
	switch {
	case st.Leader == p.self && epochChanged:
		p.becomeLeader()
		becameLeader = true
	case st.Leader == p.self:
		p.trackReplicas()        // a reassignment may have changed them
		p.advanceHighWatermark() // the ISR may have shrunk
	case epochChanged:
		p.followers = nil
		p.hwm = min(p.hwm, p.log.EndOffset())
		p.beginFirstEpoch()
		becameFollower = true
	}
	p.signal()
	return becameLeader, becameFollower
}

// beginFirstEpoch records, on a follower of a partition as it was created
// (its first leader, epoch 0, and nothing changed since: partition epoch
// 0) with an empty log, that epoch 0 starts at offset 0. It is what the
// first batch copied would record, since that leader wrote every batch it
// has in epoch 0 from offset 0; recorded now, as the partition is set up,
// the epoch file's fsync is not paid by the new topic's first acks=all
// write, which waits for this follower's copy (as a leader records its
// epoch on becoming leader, becomeLeader). The caller holds p.mu.
func (p *partition) beginFirstEpoch() {
	if p.state.LeaderEpoch != 0 || p.state.PartitionEpoch != 0 || p.log.StartOffset() != 0 || p.log.EndOffset() != 0 {
		return
	}
	if err := p.log.BeginEpoch(0); err != nil {
		// The first batch copied records it again.
		p.logger.Error("recording a leader epoch", "partition", p.String(), "err", err)
	}
}

// becomeLeader starts a leader epoch: the epoch begins at the log end
// offset (so OffsetForLeaderEpoch can answer for it before any write), and
// every follower starts unknown but caught up, with a full
// replica.lag.time.max.ms to show up. The caller holds p.mu.
func (p *partition) becomeLeader() {
	if err := p.log.BeginEpoch(p.state.LeaderEpoch); err != nil {
		// The first write records the epoch again.
		p.logger.Error("recording a leader epoch", "partition", p.String(), "err", err)
	}
	p.followers = map[int32]*followerState{}
	p.trackReplicas()
	p.hwm = min(p.hwm, p.log.EndOffset())
	p.advanceHighWatermark()
}

// trackReplicas makes the leader's followers the partition's replicas: a
// replica added (by a reassignment) starts unknown but with a full
// replica.lag.time.max.ms to show up, like every follower of a new
// leader; a replica removed is forgotten, and its fetches are refused. The
// caller holds p.mu.
func (p *partition) trackReplicas() {
	now := time.Now()
	for _, id := range p.state.Replicas {
		if _, ok := p.followers[id]; !ok && id != p.self {
			p.followers[id] = &followerState{leo: -1, caughtUp: now, lastFetch: now, logStart: -1}
		}
	}
	for id := range p.followers {
		if !p.state.Has(id) {
			delete(p.followers, id)
		}
	}
}

// maximalISR is the ISR the high watermark must respect: the committed one
// and, while a change is in flight, the replicas it adds (KIP-497: a
// replica counts as soon as it may be in the ISR, so that a leader chosen
// from the new ISR has every record below the high watermark). The caller
// holds p.mu.
func (p *partition) maximalISR() []int32 {
	if len(p.pendingISR) == 0 {
		return p.state.ISR // the usual case, on every append: no copy
	}
	out := slices.Clone(p.state.ISR)
	for _, id := range p.pendingISR {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// advanceHighWatermark recomputes the high watermark and wakes whoever
// waits for it to pass their records; it reports whether it moved. The
// caller holds p.mu.
func (p *partition) advanceHighWatermark() bool {
	if p.state.Leader != p.self {
		return false // a follower takes its leader's (leaderHighWatermark)
	}
	isr := p.maximalISR()
	for _, id := range isr {
		if id != p.self && p.followers[id] == nil {
			return false // a replica this leader does not track: it cannot know
		}
	}
	hw, err := highWatermark(p.self, p.log.EndOffset(), isr, p.followers)
	if err != nil {
		p.logger.Error("high watermark", "partition", p.String(), "err", err)
		return false
	}
	if hw <= p.hwm { // it never moves back
		return false
	}
	p.hwm = hw
	p.signal()
	return true
}

// highWatermark is the smallest log end offset among the in-sync replicas:
// the leader's own (leaderEnd) and each in-sync follower's, as far as the
// leader knows them. Every in-sync replica but self has an entry in
// followers (the caller checks). A follower whose log end is not known yet
// (-1, it has not fetched from this leader) holds the high watermark back:
// the result is then -1, no move.
func highWatermark(self int32, leaderEnd int64, isr []int32, followers map[int32]*followerState) (int64, error) {
	//klab:lesson 06 begin highWatermark
	hw := leaderEnd
	for _, id := range isr {
		if id != self {
			hw = min(hw, followers[id].leo)
		}
	}
	return hw, nil
	//klab:lesson 06 stub
	// return 0, lessons.Todo("06", "highWatermark")
	//klab:lesson 06 end
}

// followerFetched records that follower id fetched from offset: it has
// everything before it. It reports whether the follower should join the
// ISR, and whether the high watermark moved. A broker that is not a
// follower of this partition gets an error, and no records.
func (p *partition) followerFetched(id int32, offset int64, now time.Time) (join, moved bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Leader != p.self {
		return false, false, fmt.Errorf("%w: %s is not led by broker %d any more", kerr.NotLeaderForPartition, p, p.self)
	}
	f, err := p.trackFollower(id, offset)
	if err != nil {
		return false, false, err
	}
	leaderEnd := p.log.EndOffset()
	// Caught up: the follower has all the leader has now, or all it had at
	// the follower's previous fetch (records keep arriving meanwhile; a
	// follower that keeps up is always one fetch behind).
	switch {
	case offset >= leaderEnd:
		f.caughtUp = now
	case offset >= f.leaderEndAtLastFetch && f.lastFetch.After(f.caughtUp):
		f.caughtUp = f.lastFetch
	}
	f.lastFetch, f.leaderEndAtLastFetch = now, leaderEnd
	moved = p.advanceHighWatermark()
	return !p.state.InSync(id) && p.canJoin(f), moved, nil
}

// trackFollower is the leader's record of a replica's fetch from offset:
// the fetching broker must be one of this partition's followers (anyone
// else is refused, with NOT_LEADER_OR_FOLLOWER), and its log end offset,
// as far as the leader knows it, becomes offset. The caller holds p.mu,
// and p leads.
func (p *partition) trackFollower(id int32, offset int64) (*followerState, error) {
	//klab:lesson 06 begin (*partition).trackFollower
	f := p.followers[id]
	if f == nil {
		return nil, fmt.Errorf("%w: broker %d fetched %s, of which it is not a replica", kerr.NotLeaderForPartition, id, p)
	}
	f.leo = min(offset, p.log.EndOffset())
	return f, nil
	//klab:lesson 06 stub
	// return nil, lessons.Todo("06", "(*partition).trackFollower")
	//klab:lesson 06 end
}

// canJoin reports whether a follower outside the ISR may join it: it has
// every record below the high watermark, and every record of this leader's
// epoch so far is at or above where the epoch began. The caller holds p.mu.
func (p *partition) canJoin(f *followerState) bool {
	_, epochStart := p.log.EndOffsetForEpoch(p.state.LeaderEpoch - 1)
	return f.leo >= p.hwm && f.leo >= epochStart
}

// isrChange is the ISR this leader should ask the controller for now, with
// the partition epoch to ask against, or ok false for none: followers that
// have not caught up for lag leave, followers that caught up join —
// except those of brokers ineligible says may not (dead, or shutting down).
func (p *partition) isrChange(now time.Time, lag time.Duration, ineligible func(int32) bool) (isr []int32, leaderEpoch, partitionEpoch int32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Leader != p.self || p.alterInFlight {
		return nil, 0, 0, false
	}
	isr = []int32{p.self}
	for _, id := range p.state.Replicas {
		f := p.followers[id]
		if id == p.self || f == nil {
			continue
		}
		// In sync: caught up within lag. Out of sync followers join when
		// they have what they need and are fetching (a silent one whose
		// log end happens to equal the high watermark stays out).
		in, recent := p.state.InSync(id), now.Sub(f.caughtUp) <= lag
		if recent && (in || p.canJoin(f) && !ineligible(id)) {
			isr = append(isr, id)
		}
	}
	// isr is in replica order (the leader first); compare it as a set.
	if slices.Equal(slices.Sorted(slices.Values(isr)), slices.Sorted(slices.Values(p.state.ISR))) {
		return nil, 0, 0, false
	}
	p.alterInFlight = true
	p.pendingISR, p.pendingEpoch = isr, p.state.PartitionEpoch
	return isr, p.state.LeaderEpoch, p.state.PartitionEpoch, true
}

// altered takes the state the controller answered an ISR change with, if
// the metadata log has not brought it, or a newer one, already.
func (p *partition) altered(leader, leaderEpoch, partitionEpoch int32, isr []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if partitionEpoch <= p.state.PartitionEpoch || leader != p.self || leaderEpoch != p.state.LeaderEpoch {
		return
	}
	// The change this leader asked for, committed; counted here or, if
	// the metadata log brings it first, in apply: once either way.
	p.metrics.isrChanged(p.state.ISR, isr)
	p.state.ISR, p.state.PartitionEpoch = slices.Clone(isr), partitionEpoch
	p.alterInFlight, p.pendingISR = false, nil
	p.advanceHighWatermark()
	p.signal()
}

// askedFor reports whether st, from the metadata log, is the ISR change
// this leader asked the controller for (pendingISR), committed. The caller
// holds p.mu.
func (p *partition) askedFor(st metadata.Partition) bool {
	if len(p.pendingISR) == 0 || st.Leader != p.self || st.LeaderEpoch != p.state.LeaderEpoch || st.PartitionEpoch <= p.state.PartitionEpoch {
		return false
	}
	// The same replicas, perhaps in another order.
	return len(st.ISR) == len(p.pendingISR) && !slices.ContainsFunc(st.ISR, func(id int32) bool { return !slices.Contains(p.pendingISR, id) })
}

// alterFailed is the end of an ISR change asked against partitionEpoch
// that did not land, or may not have: refused says the controller refused
// it. Either way another may be asked; but the replicas it would have added
// keep counting for the high watermark (maximalISR) unless it was refused,
// since a change whose answer was lost may still have been committed. An
// answer about an older request changes nothing.
func (p *partition) alterFailed(partitionEpoch int32, refused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.alterInFlight || p.pendingEpoch != partitionEpoch {
		return
	}
	p.alterInFlight = false
	if refused {
		p.pendingISR = nil
	}
}

// awaitHighWatermark waits until the high watermark reaches offset, for an
// acks=all produce: every in-sync replica then has the records. It fails
// with NOT_LEADER_OR_FOLLOWER if this replica stops leading epoch meanwhile
// (the records may or may not survive: the producer retries), and with
// REQUEST_TIMED_OUT when ctx ends first.
func (p *partition) awaitHighWatermark(ctx context.Context, offset int64, epoch int32) error {
	for {
		p.mu.Lock()
		hw, leader, changed := p.hwm, p.state.Leader == p.self && p.state.LeaderEpoch == epoch, p.changed
		p.mu.Unlock()
		if !leader {
			return fmt.Errorf("%w: %s is no longer led by this broker in epoch %d", kerr.NotLeaderForPartition, p, epoch)
		}
		if hw >= offset {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: the in-sync replicas did not all get the records in time", kerr.RequestTimedOut, p)
		}
	}
}

// inSync is the size of the ISR.
func (p *partition) inSync() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.state.ISR)
}

// inISR reports whether broker id is in the ISR, or, on the leader, about
// to join it (an AlterPartition adding it is in flight: the high watermark
// already waits for it, maximalISR).
func (p *partition) inISR(id int32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.maximalISR(), id)
}

// followerOf is what a follower's fetcher needs: the leader, the epoch it
// leads in, and whether this replica follows it.
func (p *partition) followerOf() (leader, epoch int32, following bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.Leader, p.state.LeaderEpoch, !p.fresh && p.state.Leader != p.self && p.state.Leader >= 0
}

// leaderHighWatermark takes the high watermark a follower learned from
// its leader, never above what the follower itself has, and reports
// whether it changed.
func (p *partition) leaderHighWatermark(hw int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leaderHWM = hw
	if hw = min(hw, p.log.EndOffset()); hw != p.hwm {
		p.hwm = hw
		p.signal()
		return true
	}
	return false
}

// clampHighWatermark keeps a follower's high watermark at or below its log
// end offset, after its log was cut.
func (p *partition) clampHighWatermark() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if end := p.log.EndOffset(); p.hwm > end {
		p.hwm = end
		p.signal()
	}
}

// Replica is what a broker's replica of a partition holds, for tests and tools.
type Replica struct {
	Leader        bool  // this broker leads the partition
	LeaderEpoch   int32 // the epoch this replica knows
	ISR           []int32
	LogEndOffset  int64
	HighWatermark int64
	LogStart      int64
}

// Replica describes this broker's replica of a partition, if it holds one.
func (b *Broker) Replica(topic string, index int32) (Replica, bool) {
	p, err := b.partitionOf(topic, index)
	if err != nil {
		return Replica{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Replica{
		Leader:        p.state.Leader == p.self,
		LeaderEpoch:   p.state.LeaderEpoch,
		ISR:           slices.Clone(p.state.ISR),
		LogEndOffset:  p.log.EndOffset(),
		HighWatermark: p.hwm,
		LogStart:      p.log.StartOffset(),
	}, true
}

// ReadReplica reads a replica's records from offset up to its log end, for
// tests that compare replicas byte for byte: whole batches, as stored.
func (b *Broker) ReadReplica(topic string, index int32, offset, maxBytes int64) ([]byte, error) {
	p, err := b.partitionOf(topic, index)
	if err != nil {
		return nil, err
	}
	return p.log.Read(offset, maxBytes)
}

// followerLogStart records the log start offset follower id reported in
// its fetch, and wakes whoever waits for the low watermark to move (a
// DeleteRecords). Replicas that fetch without one (-1, Fetch before v5)
// change nothing, nor does anyone on a replica that does not lead.
func (p *partition) followerLogStart(id int32, logStart int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.followers[id]
	if p.state.Leader != p.self || f == nil || logStart == f.logStart || logStart < 0 {
		return
	}
	f.logStart = logStart
	p.signal()
}

// lowWatermark is the smallest log start offset among the in-sync
// replicas, the leader's own and each in-sync follower's as its last fetch
// said: below it, no in-sync replica has records any more. A follower
// that has not said is -1. The caller holds p.mu, and p leads.
func (p *partition) lowWatermark() int64 {
	low := p.log.StartOffset()
	for _, id := range p.state.ISR {
		if id == p.self {
			continue
		}
		f := p.followers[id]
		if f == nil {
			return -1
		}
		low = min(low, f.logStart)
	}
	return low
}

// awaitLowWatermark waits until every in-sync replica's log starts at
// offset or later, for a DeleteRecords, and returns the low watermark
// then. It fails with NOT_LEADER_OR_FOLLOWER if this replica stops leading
// epoch meanwhile, and with REQUEST_TIMED_OUT when ctx ends first; the
// low watermark returned is then the last one seen.
func (p *partition) awaitLowWatermark(ctx context.Context, offset int64, epoch int32) (int64, error) {
	for {
		p.mu.Lock()
		leader := p.state.Leader == p.self && p.state.LeaderEpoch == epoch
		var low int64 = -1
		if leader {
			low = p.lowWatermark()
		}
		changed := p.changed
		p.mu.Unlock()
		if !leader {
			return -1, fmt.Errorf("%w: %s is no longer led by this broker in epoch %d", kerr.NotLeaderForPartition, p, epoch)
		}
		if low >= offset {
			return low, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return low, fmt.Errorf("%w: %s: the in-sync replicas did not all delete the records below %d in time", kerr.RequestTimedOut, p, offset)
		}
	}
}

// offsetLag is how far this replica's log end is behind the high
// watermark, as DescribeLogDirs reports it: 0 on the leader, whose log
// end is never below it; on a follower, behind the leader's high
// watermark as the leader last reported it. (Kafka's follower clamps
// that high watermark to its own log end first, so reports 0 there too;
// the unclamped one says how far the follower has to go.)
func (p *partition) offsetLag() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Leader == p.self {
		return 0
	}
	return max(p.leaderHWM-p.log.EndOffset(), 0)
}
