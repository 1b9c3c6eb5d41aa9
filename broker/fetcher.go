package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// A follower copies its leader's log the way Kafka's do: by sending the
// leader Fetch requests, as a consumer would, but with its replica id, and
// from its own log end offset. That fetch offset is how the leader learns
// how far the follower has come, which moves the high watermark and keeps
// the follower in the ISR.
//
// Each broker runs one fetcher per leader it follows, which fetches all the
// partitions it follows from that leader in one request (Kafka's
// num.replica.fetchers=1).

// fetchers are this broker's fetchers, by leader id.
type fetchers struct {
	b        *Broker
	mu       sync.Mutex
	byLeader map[int32]*fetcher
	closed   bool
}

func newFetchers(b *Broker) *fetchers {
	return &fetchers{b: b, byLeader: map[int32]*fetcher{}}
}

// add makes p fetch from leader, at addr, in epoch; it first truncates
// its log where it diverges from the leader's.
func (fs *fetchers) add(p *partition, leader int32, addr string, epoch int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return
	}
	for id, f := range fs.byLeader {
		if id != leader {
			f.remove(p)
		}
	}
	f := fs.byLeader[leader]
	if f != nil && f.addr != addr { // the leader came back elsewhere
		f.stop()
		f = nil
	}
	if f == nil {
		f = newFetcher(fs.b, leader, addr)
		fs.byLeader[leader] = f
	}
	f.add(p, epoch)
}

// remove stops p's fetching, wherever it was.
func (fs *fetchers) remove(p *partition) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.byLeader {
		f.remove(p)
	}
}

// close stops every fetcher and waits for them.
func (fs *fetchers) close() {
	fs.mu.Lock()
	fs.closed = true
	all := fs.byLeader
	fs.byLeader = map[int32]*fetcher{}
	fs.mu.Unlock()
	for _, f := range all {
		f.stop()
	}
}

// fetcher fetches, from one leader, every partition this broker follows
// there.
type fetcher struct {
	b      *Broker
	leader int32
	addr   string
	// session is the fetch session with the leader; only run's goroutine
	// uses it.
	session followerSession

	mu    sync.Mutex
	parts map[*partition]*following
	wake  chan struct{} // a partition was added

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// following is one partition's progress with its leader.
type following struct {
	epoch     int32 // the leader epoch it follows
	truncated bool  // its log has been cut where it diverged from the leader's
}

func newFetcher(b *Broker, leader int32, addr string) *fetcher {
	f := &fetcher{b: b, leader: leader, addr: addr, parts: map[*partition]*following{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(b.ctx)
	go f.run()
	return f
}

func (f *fetcher) add(p *partition, epoch int32) {
	f.mu.Lock()
	f.parts[p] = &following{epoch: epoch}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(p *partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

func (f *fetcher) stop() {
	f.cancel()
	<-f.done
}

// snapshot returns the partitions to fetch, with their state.
func (f *fetcher) snapshot() map[*partition]following {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[*partition]following, len(f.parts))
	for p, st := range f.parts {
		out[p] = *st
	}
	return out
}

// set updates a partition's state, unless it was removed or re-added for
// another epoch meanwhile.
func (f *fetcher) set(p *partition, epoch int32, truncated bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.parts[p]; st != nil && st.epoch == epoch {
		st.truncated = truncated
	}
}

// run is the fetch loop: connect, truncate what needs it, fetch, append,
// again; on any connection error, back off and reconnect.
func (f *fetcher) run() {
	defer close(f.done)
	var conn *client.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := 100 * time.Millisecond // replica.fetch.backoff.ms is 1s; a LAN can retry sooner
	for f.ctx.Err() == nil {
		// A wake left from an add that came between fetches is spent:
		// this snapshot has the partition, and the wake would only
		// interrupt the fetch that asks for it.
		select {
		case <-f.wake:
		default:
		}
		parts := f.snapshot()
		if len(parts) == 0 {
			select {
			case <-f.wake:
			case <-f.ctx.Done():
			}
			continue
		}
		var err error
		if conn == nil || conn.Closed() {
			conn, err = client.DialVia(f.ctx, f.b.dial, f.addr, "klab-replica-"+strconv.Itoa(int(f.b.cfg.NodeID)))
		}
		if err == nil {
			err = f.truncateAll(conn, parts)
		}
		if err == nil {
			err = f.fetchInterruptible(conn, parts)
		}
		if errors.Is(err, errInterrupted) {
			// A partition was added while the fetch was parked at the
			// leader, which answers it only when one of its partitions
			// has records, or after replica.fetch.wait.max.ms: a new
			// topic's first acks=all produce would wait that long for
			// this replica. The parked request holds the connection (a
			// broker answers one request at a time per connection), so
			// drop it and fetch again, with the new partition, at once.
			conn.Close()
			conn = nil
			continue
		}
		if errors.Is(err, errNoProgress) {
			// Every partition failed: the leader has not caught up with
			// the metadata yet, or moved on. Wait a little, keep the conn.
			select {
			case <-time.After(backoff):
			case <-f.ctx.Done():
			}
			continue
		}
		if err != nil && f.ctx.Err() == nil {
			if conn != nil {
				conn.Close()
				conn = nil
			}
			select {
			case <-time.After(backoff):
			case <-f.ctx.Done():
			}
		}
	}
}

// errInterrupted is a fetch abandoned because a partition was added.
var errInterrupted = errors.New("fetch interrupted: a partition was added")

// fetchInterruptible is fetchOnce, abandoned (errInterrupted) if a
// partition is added meanwhile. A wake that comes after the fetch is
// lost, which is harmless: the next round's snapshot has the partition.
func (f *fetcher) fetchInterruptible(conn *client.Conn, parts map[*partition]following) error {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	added := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-f.wake:
			close(added)
			cancel()
		case <-done:
		}
	}()
	err := f.fetchOnce(ctx, conn, parts)
	select {
	case <-added:
		if err != nil && f.ctx.Err() == nil {
			return errInterrupted
		}
	default:
	}
	return err
}

// fetchOnce sends one Fetch for every truncated partition and appends what
// comes back.
func (f *fetcher) fetchOnce(ctx context.Context, conn *client.Conn, parts map[*partition]following) error {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.b.cfg.NodeID
	req.MaxWaitMillis = int32(f.b.cfg.ReplicaFetchWaitMax.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = 10 << 20 // replica.fetch.response.max.bytes
	byName := map[string]map[int32]*partition{}
	asked := 0
	want := map[sessionPartKey]kmsg.FetchRequestTopicPartition{}
	ids := map[string][16]byte{}
	for p, st := range parts {
		if !st.truncated {
			continue
		}
		maxBytes, ok := f.b.followerFetchBytes(p)
		if !ok {
			continue // throttled, its quota spent: a later round asks again
		}
		name := p.topic.name
		if byName[name] == nil {
			byName[name] = map[int32]*partition{}
			ids[name] = p.topic.id
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.FetchOffset = p.log.EndOffset()
		rp.LogStartOffset = p.log.StartOffset() // the leader's DeleteRecords waits for it
		rp.CurrentLeaderEpoch = st.epoch
		rp.PartitionMaxBytes = maxBytes // replica.fetch.max.bytes, or the throttle's
		want[sessionPartKey{name, p.index}] = rp
		byName[name][p.index] = p
		asked++
	}
	if asked == 0 {
		return errNoProgress // every partition is still waiting to truncate, or throttled
	}
	if f.session.conn != conn {
		// A new connection opens a new session, and closes the old one
		// on the leader (its id, with epoch 0) rather than leave it to
		// fill the leader's cache.
		f.session = followerSession{conn: conn, closing: f.session.id}
	}
	f.session.build(req, want, ids)
	ctx, cancel := context.WithTimeout(ctx, f.b.cfg.ReplicaFetchWaitMax+5*time.Second)
	defer cancel()
	raw, err := conn.Request(ctx, req)
	if err != nil {
		return err
	}
	resp := raw.(*kmsg.FetchResponse)
	if resp.ErrorCode == kerr.FetchSessionIDNotFound.Code || resp.ErrorCode == kerr.InvalidFetchSessionEpoch.Code {
		f.session = followerSession{conn: conn, closing: f.session.id} // the leader forgot it, or a request was lost: start over
		return nil
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	f.session.answered(resp.SessionID, want)
	appended, failed := false, 0
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			p := byName[rt.Topic][rp.Partition]
			if p == nil {
				continue
			}
			st := parts[p]
			n, err := f.appendFromLeader(p, st.epoch, &rp)
			if base, ok := startsInsideBatch(p, &rp, err); ok {
				// The leader's log start, where this empty replica began
				// (resetTo), is inside a batch (DeleteRecords moves it to
				// any offset), and the leader sends the whole batch. Start
				// the replica at the batch's base instead and take it, as
				// Kafka's followers do; the log start then follows the
				// leader's (followLogStart).
				if err = f.resetTo(p, st.epoch, base); err == nil {
					n, err = f.appendFromLeader(p, st.epoch, &rp)
				}
			}
			appended = appended || n > 0
			if f.b.throttledHere(p, followerThrottledReplicas) {
				f.b.followerQuota.spend(n)
			}
			if err == nil {
				err = f.followLogStart(p, st.epoch, rp.LogStartOffset)
			}
			if err != nil {
				failed++
			}
			switch {
			case errors.Is(err, kerr.OffsetOutOfRange) && rp.LogStartOffset > p.log.EndOffset():
				// The leader deleted what follows our log: start again at its log start.
				if err := f.resetTo(p, st.epoch, rp.LogStartOffset); err != nil {
					f.b.log.Warn("replica reset", "partition", p.String(), "err", err)
				}
			case errors.Is(err, kerr.OffsetOutOfRange):
				f.set(p, st.epoch, false) // find where the logs diverge again
			case errors.Is(err, kerr.FencedLeaderEpoch), errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.UnknownLeaderEpoch), errors.Is(err, kerr.UnknownTopicOrPartition):
				// The leader moved on, or has not learned of its epoch yet:
				// the metadata log will say what to do.
			case err != nil:
				f.b.log.Warn("replica fetch", "partition", p.String(), "leader", f.leader, "err", err)
			}
		}
	}
	if failed == asked && !appended {
		return errNoProgress
	}
	return nil
}

// A follower's fetcher keeps a fetch session (KIP-227) with its leader,
// as a consumer does: after the first, full, fetch, it sends only the
// partitions whose fetch position (its log end or start, its epoch, its
// byte limit) moved, and forgets those it no longer asks for; the leader
// answers only the partitions with news. With hundreds of idle
// partitions, a fetch then costs what its busy partitions cost.

// sessionPartKey is a partition, as the session names it (by topic name:
// the course's clients fetch at v12).
type sessionPartKey struct {
	topic     string
	partition int32
}

// followerSession is the fetcher's side of its session: the connection
// it lives on (a new connection starts a new session), its id and next
// epoch (0: open one), and what each partition was last asked with.
type followerSession struct {
	conn    *client.Conn
	id      int32
	epoch   int32
	closing int32 // a session of an earlier connection, to close when this one opens
	sent    map[sessionPartKey]kmsg.FetchRequestTopicPartition
}

// build fills req's session fields and partitions: all of want when
// opening a session, else those that changed since they were sent, and
// the sent ones not wanted any more as forgotten.
func (s *followerSession) build(req *kmsg.FetchRequest, want map[sessionPartKey]kmsg.FetchRequestTopicPartition, ids map[string][16]byte) {
	req.SessionID, req.SessionEpoch = s.id, s.epoch
	if s.id == 0 {
		req.SessionID = s.closing // epoch 0: closed, and a new one opened
	}
	index := map[string]int{}
	for k, rp := range want {
		if s.id != 0 {
			if sent, ok := s.sent[k]; ok && samePosition(sent, rp) {
				continue // the leader has it as it is
			}
		}
		i, ok := index[k.topic]
		if !ok {
			i = len(req.Topics)
			index[k.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = k.topic, ids[k.topic]
			req.Topics = append(req.Topics, rt)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if s.id == 0 {
		return
	}
	forgotten := map[string]int{}
	for k := range s.sent {
		if _, ok := want[k]; ok {
			continue
		}
		i, ok := forgotten[k.topic]
		if !ok {
			i = len(req.ForgottenTopics)
			forgotten[k.topic] = i
			req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: k.topic})
		}
		req.ForgottenTopics[i].Partitions = append(req.ForgottenTopics[i].Partitions, k.partition)
	}
}

// samePosition reports whether two asks for a partition are the same.
func samePosition(a, b kmsg.FetchRequestTopicPartition) bool {
	return a.Partition == b.Partition && a.FetchOffset == b.FetchOffset && a.LogStartOffset == b.LogStartOffset &&
		a.CurrentLeaderEpoch == b.CurrentLeaderEpoch && a.PartitionMaxBytes == b.PartitionMaxBytes
}

// answered moves the session on after an answer: the session the leader
// opened (0 if it opened none: the next fetch is full again), the next
// epoch, and the partitions as now sent.
func (s *followerSession) answered(id int32, want map[sessionPartKey]kmsg.FetchRequestTopicPartition) {
	if s.id == 0 {
		s.id, s.epoch, s.closing = id, 0, 0
	}
	if s.id == 0 {
		return
	}
	s.epoch++
	if s.epoch <= 0 {
		s.epoch = 1
	}
	s.sent = want
}

// startsInsideBatch reports whether an append failed because p's replica
// is empty and the leader's first batch begins before it, and that batch's
// base offset.
func startsInsideBatch(p *partition, rp *kmsg.FetchResponseTopicPartition, err error) (int64, bool) {
	if !errors.Is(err, kerr.OffsetOutOfRange) || len(rp.RecordBatches) < 8 {
		return 0, false
	}
	end := p.log.EndOffset()
	base := int64(binary.BigEndian.Uint64(rp.RecordBatches))
	return base, p.log.StartOffset() == end && base < end
}

// errNoProgress is a fetch round that moved nothing: every partition failed,
// or none could be asked for yet.
var errNoProgress = errors.New("no partition could be fetched")

// appendFromLeader appends to a follower's log what its leader returned
// for one partition, and takes the leader's high watermark. It returns how
// many bytes it appended. The partition's error code becomes an error; an
// answer that comes after the partition changed hands is
// NOT_LEADER_OR_FOLLOWER, and changes nothing.
func (f *fetcher) appendFromLeader(p *partition, epoch int32, rp *kmsg.FetchResponseTopicPartition) (int, error) {
	// Hold the role while checking it and appending (see partition.roleMu).
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	//klab:lesson 06 begin (*fetcher).appendFromLeader
	if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
		return 0, err
	}
	if _, e, following := p.followerOf(); !following || e != epoch {
		return 0, fmt.Errorf("%w: %s changed hands while the fetch was out", kerr.NotLeaderForPartition, p)
	}
	n := len(rp.RecordBatches)
	if n != 0 {
		if err := p.log.AppendReplica(rp.RecordBatches); err != nil {
			return 0, fmt.Errorf("appending from leader %d: %w", f.leader, err)
		}
	}
	if p.leaderHighWatermark(rp.HighWatermark) {
		f.b.notifyAppend() // consumers reading from this follower (KIP-392)
	}
	return n, nil
	//klab:lesson 06 stub
	// return 0, lessons.Todo("06", "(*fetcher).appendFromLeader")
	//klab:lesson 06 end
}

// followLogStart moves a follower's log start offset up to its leader's,
// as Kafka's followers do: what DeleteRecords (or retention) deleted on
// the leader goes here too, and the follower's next fetch tells the
// leader, whose DeleteRecords waits for it. Never past the follower's own
// log end; and only while p still follows in epoch (the role is held from
// the check to the move: a replica that became leader meanwhile keeps its
// log).
func (f *fetcher) followLogStart(p *partition, epoch int32, leaderStart int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if _, e, following := p.followerOf(); !following || e != epoch {
		return nil
	}
	if err := p.log.AdvanceStart(min(leaderStart, p.log.EndOffset())); err != nil {
		return fmt.Errorf("following leader %d's log start offset %d: %w", f.leader, leaderStart, err)
	}
	return nil
}

// truncateAll finds, for each partition that needs it, where its log
// diverges from the leader's, and cuts it there.
func (f *fetcher) truncateAll(conn *client.Conn, parts map[*partition]following) error {
	for p, st := range parts {
		if st.truncated {
			continue
		}
		if err := f.truncate(conn, p, st.epoch); err != nil {
			if errors.Is(err, kerr.FencedLeaderEpoch) || errors.Is(err, kerr.UnknownLeaderEpoch) || errors.Is(err, kerr.NotLeaderForPartition) {
				continue // not this leader's yet, or any more: try again later
			}
			return err
		}
		f.set(p, st.epoch, true)
		// And in this round's copy: the fetch that follows asks for it at
		// once, not a round (a long poll) later.
		st.truncated = true
		parts[p] = st
	}
	return nil
}

// truncate cuts a follower's log where it diverges from the leader's
// (KIP-101, KIP-279). The follower asks where its latest epoch ends in the
// leader's log; the leader answers with the largest epoch it has at or
// below that one, and where that ends. The follower keeps its records up
// to the smaller of that end and its own end of the same epoch. If the
// epochs differ, the follower's later epochs were never the leader's, and
// it asks again for its next older epoch, until both agree.
//
// Truncating to the high watermark instead, as Kafka did before KIP-101,
// can lose acknowledged records or leave two replicas with different
// records at one offset.
//
// A replica whose latest epoch is the one it follows in has nothing to
// cut, and needs no round trip: only this leader writes batches in its
// epoch, the replica copied them from it after the truncation with which
// it began following, and a leader's records in its own epoch are never
// cut. That is a follower whose fetcher starts again, and one that
// recorded a new partition's first epoch as the partition was created
// (beginFirstEpoch): cutting to its empty log end would forget that
// epoch, and its first copied batch would record it again, paying the
// epoch file's fsync inside the new topic's first acks=all write.
func (f *fetcher) truncate(conn *client.Conn, p *partition, epoch int32) error {
	if p.log.LatestEpoch() == epoch {
		return nil
	}
	for range 1000 { // each round drops at least one epoch; bounded all the same
		ask := p.log.LatestEpoch()
		if ask < 0 {
			return nil // no epochs, nothing written by a leader: nothing to cut
		}
		leaderEpoch, leaderEnd, err := f.endOffsetFor(conn, p, epoch, ask)
		if err != nil {
			return err
		}
		if done, err := f.cut(p, epoch, leaderEpoch, leaderEnd); err != nil || done {
			return err
		}
	}
	return fmt.Errorf("%s: truncation did not converge", p)
}

// resetTo empties p's log and starts it at offset, while p still follows
// in epoch.
func (f *fetcher) resetTo(p *partition, epoch int32, offset int64) error {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if _, e, following := p.followerOf(); !following || e != epoch {
		return nil
	}
	f.b.log.Info("starting the replica again at the leader's log start", "partition", p.String(), "offset", offset)
	if err := p.log.ResetTo(offset); err != nil {
		return err
	}
	p.clampHighWatermark()
	return nil
}

// cut truncates p's log to where the leader said leaderEpoch ends, or
// where it ends in p's own log if that is sooner, while p still follows in
// epoch (the role is held from the check to the cut: a replica that became
// leader meanwhile must not cut its own log). done is true once the two
// logs agree on the epoch, or p has no epoch the leader has.
func (f *fetcher) cut(p *partition, epoch, leaderEpoch int32, leaderEnd int64) (done bool, err error) {
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	if _, e, following := p.followerOf(); !following || e != epoch {
		return false, fmt.Errorf("%w: %s no longer follows in epoch %d", kerr.NotLeaderForPartition, p, epoch)
	}
	var ourEpoch int32
	var cut int64
	if leaderEpoch < 0 {
		// The leader has no epoch this old: none of our records are its.
		ourEpoch, cut = -1, p.log.StartOffset()
	} else {
		var ourEnd int64
		ourEpoch, ourEnd = p.log.EndOffsetForEpoch(leaderEpoch)
		if ourEpoch < 0 {
			ourEnd = p.log.StartOffset() // all our epochs are newer than any the leader has
		}
		cut = min(leaderEnd, ourEnd)
	}
	if cut < p.log.EndOffset() {
		f.b.log.Info("truncating", "partition", p.String(), "to", cut, "from", p.log.EndOffset(), "epoch", leaderEpoch)
	}
	if err := p.log.TruncateTo(cut); err != nil {
		return false, err
	}
	p.clampHighWatermark()
	return ourEpoch == leaderEpoch || ourEpoch < 0, nil
}

// endOffsetFor asks the leader, with OffsetForLeaderEpoch, where epoch
// ends in its log.
func (f *fetcher) endOffsetFor(conn *client.Conn, p *partition, current, epoch int32) (int32, int64, error) {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.b.cfg.NodeID
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = p.topic.name
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = p.index, current, epoch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	raw, err := conn.Request(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	resp := raw.(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range resp.Topics {
		for _, sp := range t.Partitions {
			if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
				return 0, 0, err
			}
			return sp.LeaderEpoch, sp.EndOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: OffsetForLeaderEpoch answered nothing for %s", kerr.UnknownServerError, p)
}
