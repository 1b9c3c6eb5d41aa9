package consumer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
)

// committedOffset is an offset as the group commits it: the offset of the
// next record to read, and the leader epoch of the record before it, so
// that a consumer starting there can tell (KIP-320) whether the log was
// truncated under it. -1 is an unknown epoch.
type committedOffset struct {
	offset int64
	epoch  int32
}

// maxOffsetsVersion caps OffsetCommit and OffsetFetch at the last versions
// that name topics by name: from version 10 they name them by topic id.
const maxOffsetsVersion = 9

// errNoGeneration fails a commit made while the member is between
// generations: its partitions may be someone else's by now.
var errNoGeneration = errors.New("consumer: commit failed: the member is rejoining its group; its partitions may have been reassigned")

// CommitSync commits the positions of every assigned partition: the offset
// after the last record Poll returned, as "the next offset to read". It
// retries what can be retried until ctx ends.
func (c *Consumer) CommitSync(ctx context.Context) error {
	if c.group == nil {
		return errors.New("consumer: commits need group.id")
	}
	return c.commitSync(ctx, c.positions(c.Assignment()))
}

// CommitOffsets commits the given offsets, each the offset of the next
// record to read from its partition.
func (c *Consumer) CommitOffsets(ctx context.Context, offsets map[TopicPartition]int64) error {
	if c.group == nil {
		return errors.New("consumer: commits need group.id")
	}
	out := map[TopicPartition]committedOffset{}
	c.mu.Lock()
	for tp, off := range offsets {
		epoch := int32(-1)
		if p, ok := c.parts[tp]; ok && p.position == off {
			epoch = p.epoch // we know the epoch only of where we are
		}
		out[tp] = committedOffset{off, epoch}
	}
	c.mu.Unlock()
	return c.commitSync(ctx, out)
}

// CommitAsync commits as CommitSync does, without waiting: cb, if not nil,
// gets the result, on a goroutine of its own. As in the Java client, an
// asynchronous commit is not retried: a retry could land after a newer
// commit and move the group back; the next commit makes good a failed one.
// Close waits for commits under way.
func (c *Consumer) CommitAsync(cb func(error)) {
	if c.group == nil {
		if cb != nil {
			cb(errors.New("consumer: commits need group.id"))
		}
		return
	}
	c.commitInBackground(c.positions(c.Assignment()), cb)
}

// commitInBackground makes one attempt at committing offsets, on a
// goroutine, in its turn.
func (c *Consumer) commitInBackground(offsets map[TopicPartition]committedOffset, cb func(error)) {
	previous, done := c.commitTurn()
	c.commits.Add(1)
	go func() {
		defer c.commits.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		defer cancel()
		err := c.commitInTurn(ctx, previous, done, offsets, false)
		if cb != nil {
			cb(err)
		}
	}()
}

// commitTurn places a commit in line after those made before it, so that
// commits reach the coordinator in the order they were made: were two
// commits of one partition to race, the older offset could land last and
// move the group back. The commit waits for previous to close, and closes
// done when it is over.
func (c *Consumer) commitTurn() (previous <-chan struct{}, done chan struct{}) {
	g := c.group
	done = make(chan struct{})
	g.mu.Lock()
	defer g.mu.Unlock()
	previous, g.lastCommit = g.lastCommit, done
	return previous, done
}

// Committed returns the offsets the group last committed for the
// partitions (the next offset to read); a partition with none is left out.
func (c *Consumer) Committed(ctx context.Context, tps ...TopicPartition) (map[TopicPartition]int64, error) {
	if c.group == nil {
		return nil, errors.New("consumer: commits need group.id")
	}
	found, err := c.committedRetrying(ctx, tps)
	if err != nil {
		return nil, err
	}
	out := map[TopicPartition]int64{}
	for tp, off := range found {
		if off.offset >= 0 {
			out[tp] = off.offset
		}
	}
	return out, nil
}

// positions returns the positions of the partitions that have one, with
// the leader epoch of the last record consumed.
func (c *Consumer) positions(tps []TopicPartition) map[TopicPartition]committedOffset {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[TopicPartition]committedOffset{}
	for _, tp := range tps {
		if p, ok := c.parts[tp]; ok && p.position >= 0 {
			out[tp] = committedOffset{p.position, p.epoch}
		}
	}
	return out
}

// maybeAutoCommit starts an auto commit of every position if one is due
// (enable.auto.commit, every auto.commit.interval.ms) and none is under
// way. It does not wait, as the Java client's poll does not.
func (c *Consumer) maybeAutoCommit() {
	g := c.group
	if !c.cfg.EnableAutoCommit {
		return
	}
	now := time.Now()
	g.mu.Lock()
	due := !g.committing && !now.Before(g.nextCommit) && (g.topics == nil || g.joined)
	if due {
		g.committing = true
		g.nextCommit = now.Add(c.cfg.AutoCommitInterval)
	}
	g.mu.Unlock()
	if !due {
		return
	}
	// A failed auto commit is made good by the next.
	c.commitInBackground(c.positions(c.Assignment()), func(error) {
		g.mu.Lock()
		g.committing = false
		g.mu.Unlock()
	})
}

// commitSync commits offsets, in its turn, retrying until ctx ends while
// the errors are ones a retry can cure (the coordinator moved, or is
// loading).
func (c *Consumer) commitSync(ctx context.Context, offsets map[TopicPartition]committedOffset) error {
	previous, done := c.commitTurn()
	return c.commitInTurn(ctx, previous, done, offsets, true)
}

// commitInTurn waits for the commits before this one, commits, and lets the
// next one go.
func (c *Consumer) commitInTurn(ctx context.Context, previous <-chan struct{}, done chan struct{}, offsets map[TopicPartition]committedOffset, retry bool) error {
	if previous != nil {
		select {
		case <-previous:
		case <-ctx.Done():
			// Out of time: give up this commit, but hold the line until
			// the one before is over, so that the next does not pass it.
			go func() {
				<-previous
				close(done)
			}()
			return ctx.Err()
		}
	}
	defer close(done)
	if len(offsets) == 0 {
		return nil
	}
	for {
		err := c.commitOnce(ctx, offsets)
		var again retriable
		if !retry || !errors.As(err, &again) {
			return err
		}
		if err := sleep(ctx, c.cfg.RetryBackoff); err != nil {
			return fmt.Errorf("%w (last: %w)", err, again.err)
		}
	}
}

// commitOnce sends one OffsetCommit, with the member's generation and id:
// the coordinator takes commits only from members of the current
// generation, so that a member that was replaced cannot overwrite what its
// successor commits. A consumer that assigns itself partitions commits as
// generation -1 with no member id, which a group with no members accepts.
func (c *Consumer) commitOnce(ctx context.Context, offsets map[TopicPartition]committedOffset) error {
	g := c.group
	conn, err := c.coordinator(ctx)
	if err != nil {
		return retriable{err: err}
	}
	g.mu.Lock()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = g.id, g.generation, g.memberID
	req.InstanceID = g.instanceIDPtr()
	subscribed := g.topics != nil
	g.mu.Unlock()
	if subscribed && req.Generation < 0 {
		return errNoGeneration
	}
	byTopic := map[string][]TopicPartition{}
	for tp := range offsets {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp)
	}
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = t
		for _, tp := range byTopic[t] {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition = tp.Partition
			rp.Offset = offsets[tp].offset
			rp.LeaderEpoch = offsets[tp].epoch // v6+
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	version := min(conn.Version(int16(kmsg.OffsetCommit)), maxOffsetsVersion)
	if version < 0 {
		return errors.New("consumer: the coordinator does not speak OffsetCommit")
	}
	raw, err := conn.RequestAt(ctx, req, version)
	if err != nil {
		c.coordinatorDead(conn)
		return retriable{err: fmt.Errorf("OffsetCommit: %w", err)}
	}
	var first error
	for _, rt := range raw.(*kmsg.OffsetCommitResponse).Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && first == nil {
				first = fmt.Errorf("OffsetCommit %s-%d: %w", rt.Topic, rp.Partition, err)
			}
		}
	}
	return c.offsetsError(conn, first)
}

// offsetsError turns an error of OffsetCommit or OffsetFetch into what the
// member does next, as the Java client's ConsumerCoordinator does.
func (c *Consumer) offsetsError(conn *client.Conn, err error) error {
	g := c.group
	switch {
	case err == nil:
		return nil
	case isCoordinatorError(err):
		c.coordinatorDead(conn)
		return retriable{err: err}
	case errors.Is(err, kerr.UnknownMemberID):
		g.resetGeneration(true)
	case errors.Is(err, kerr.IllegalGeneration):
		g.resetGeneration(false)
	case errors.Is(err, kerr.RebalanceInProgress):
		// Our generation is ending: the commit is refused, and Poll
		// rejoins (it may revoke, and commit, then).
		g.mu.Lock()
		g.rejoin = true
		g.mu.Unlock()
	case errors.Is(err, kerr.FencedInstanceID):
		g.mu.Lock()
		g.fatal = fmt.Errorf("%w: %w", errFenced, err)
		g.mu.Unlock()
	case errors.Is(err, kerr.UnstableOffsetCommit), errors.Is(err, kerr.RequestTimedOut):
		return retriable{err: err}
	}
	return err
}

// committedRetrying reads the committed offsets of tps, retrying until
// ctx ends while the errors are ones a retry can cure.
func (c *Consumer) committedRetrying(ctx context.Context, tps []TopicPartition) (map[TopicPartition]committedOffset, error) {
	if len(tps) == 0 {
		return nil, nil
	}
	for {
		found, err := c.offsetFetch(ctx, tps)
		var retry retriable
		if !errors.As(err, &retry) {
			return found, err
		}
		if err := sleep(ctx, c.cfg.RetryBackoff); err != nil {
			return nil, fmt.Errorf("%w (last: %w)", err, retry.err)
		}
	}
}

// offsetFetch sends one OffsetFetch for tps. Version 8 moved the group and
// its topics into a list of groups (KIP-709); both shapes are filled in,
// and the encoder writes the one of the version it sends.
func (c *Consumer) offsetFetch(ctx context.Context, tps []TopicPartition) (map[TopicPartition]committedOffset, error) {
	g := c.group
	conn, err := c.coordinator(ctx)
	if err != nil {
		return nil, retriable{err: err}
	}
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = g.id
	// Wait for offsets a transaction has yet to commit (KIP-447), rather
	// than start from an older one.
	req.RequireStable = true
	byTopic := map[string][]int32{}
	for _, tp := range tps {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
	}
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = g.id
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = t, byTopic[t]
		req.Topics = append(req.Topics, rt)
		gt := kmsg.NewOffsetFetchRequestGroupTopic()
		gt.Topic, gt.Partitions = t, byTopic[t]
		rg.Topics = append(rg.Topics, gt)
	}
	req.Groups = []kmsg.OffsetFetchRequestGroup{rg}
	version := min(conn.Version(int16(kmsg.OffsetFetch)), maxOffsetsVersion)
	if version < 0 {
		return nil, errors.New("consumer: the coordinator does not speak OffsetFetch")
	}
	raw, err := conn.RequestAt(ctx, req, version)
	if err != nil {
		c.coordinatorDead(conn)
		return nil, retriable{err: fmt.Errorf("OffsetFetch: %w", err)}
	}
	resp := raw.(*kmsg.OffsetFetchResponse)
	found := map[TopicPartition]committedOffset{}
	var first error
	note := func(topic string, partition int32, offset int64, epoch int32, code int16) {
		if err := kerr.ErrorForCode(code); err != nil {
			if first == nil {
				first = fmt.Errorf("OffsetFetch %s-%d: %w", topic, partition, err)
			}
			return
		}
		found[TopicPartition{topic, partition}] = committedOffset{offset, epoch}
	}
	if version >= 8 {
		for _, rg := range resp.Groups {
			if err := kerr.ErrorForCode(rg.ErrorCode); err != nil && first == nil {
				first = fmt.Errorf("OffsetFetch: %w", err)
			}
			for _, rt := range rg.Topics {
				for _, rp := range rt.Partitions {
					note(rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode)
				}
			}
		}
	} else {
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			first = fmt.Errorf("OffsetFetch: %w", err)
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				note(rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.ErrorCode)
			}
		}
	}
	if err := c.offsetsError(conn, first); err != nil {
		return nil, err
	}
	return found, nil
}
