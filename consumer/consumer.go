package consumer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/log"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// Record is a record as Poll returns it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []kmsg.Header
}

// ErrNoOffset is what Poll returns for a partition with no valid position
// when auto.offset.reset is none: the application must Seek.
var ErrNoOffset = errors.New("consumer: no valid position and auto.offset.reset=none")

// ErrTopicDeleted is what Poll returns while the consumer has assigned
// itself (Assign) partitions of a topic that was deleted: Metadata listed
// the topic, and now answers that it does not exist. The error names the
// topic and wraps kerr.UnknownTopicOrPartition too. The consumer stops
// fetching the topic's partitions, and Poll returns the error until the
// application assigns partitions without them (or with them again, once
// the topic is created again: Assign looks afresh). Kafka's Java consumer
// logs UNKNOWN_TOPIC_OR_PARTITION for an assigned topic and retries it
// forever; an application then sees no records and no error, and cannot
// tell a deleted topic from a slow one. A consumer that subscribed to the
// topic gets no error: it rejoins its group, whose next assignment leaves
// the topic out, as the Java consumer drops a deleted topic from a
// subscription.
var ErrTopicDeleted = errors.New("consumer: topic deleted")

// errTopicDeleted is ErrTopicDeleted for the topics named.
func errTopicDeleted(topics ...string) error {
	return fmt.Errorf("%w: %s: Metadata answers %w", ErrTopicDeleted, strings.Join(topics, ", "), kerr.UnknownTopicOrPartition)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("consumer: closed")

// Consumer reads records from the partitions it is assigned. Poll from one
// goroutine, as with Kafka's consumer: two polling at once could file the
// answers of one partition out of order. The other methods may be called
// from any goroutine.
type Consumer struct {
	cfg     Config
	cluster *client.Cluster

	mu       sync.Mutex
	parts    map[TopicPartition]*partition
	order    []TopicPartition // the assignment, in order, for round robin
	next     int              // where the next take starts
	inFlight map[int32]bool   // a Fetch to this broker is on its way
	err      error            // for the next Poll to return
	closed   bool
	refresh  bool // metadata is stale: a leader moved or is unknown
	// deleted holds the assigned topics that were deleted (noteDeleted),
	// which are no longer fetched. A new assignment empties it.
	deleted map[string]bool

	results chan fetchResult
	stop    chan struct{}

	group      *group         // nil without group.id
	subscribed bool           // Subscribe was called: the group assigns the partitions
	commits    sync.WaitGroup // commits under way on goroutines of their own, for Close
}

// partition is the consumer's state for one assigned partition.
type partition struct {
	tp        TopicPartition
	position  int64    // the offset of the next record to return; -1 unknown
	buffered  []Record // fetched, not yet returned
	nextFetch int64    // where the next fetch starts; -1: at the position
	gen       int      // counts Seeks and resets, to drop answers they made stale
	fetching  bool
	retryAt   time.Time

	// epoch is the leader epoch of the record before the position (the
	// last one returned, or the one the committed offset came with), -1
	// if unknown: commits carry it. epochs are the leader epochs of the
	// batches buffered, to find it from.
	epoch  int32
	epochs []batchEpoch
}

// batchEpoch is the leader epoch a batch was written in, from its header.
type batchEpoch struct {
	base  int64 // the offset of its first record
	epoch int32
}

// newPartition is the state of a partition just assigned: no position yet.
func newPartition(tp TopicPartition) *partition {
	return &partition{tp: tp, position: -1, nextFetch: -1, epoch: -1}
}

// consumed notes that Poll returned the record at offset: its batch's
// leader epoch is the one to commit with the position after it.
func (p *partition) consumed(offset int64) {
	for i := len(p.epochs) - 1; i >= 0; i-- {
		if p.epochs[i].base <= offset {
			p.epoch = p.epochs[i].epoch
			return
		}
	}
}

// fetchOffset is where the next fetch of the partition starts: after what
// was last fetched, or at the position.
func (p *partition) fetchOffset() int64 {
	if p.nextFetch >= 0 {
		return p.nextFetch
	}
	return p.position
}

// forget drops the position and what was fetched from it: auto.offset.reset
// will find a new one.
func (p *partition) forget() {
	p.seek(-1)
}

// seek moves the position and drops what was fetched from elsewhere.
func (p *partition) seek(offset int64) {
	p.position, p.buffered, p.nextFetch = offset, nil, -1
	p.epoch, p.epochs = -1, nil
	p.gen++
}

// fetchResult is a Fetch answer from one broker, with the offset each
// partition was asked from.
type fetchResult struct {
	leader  int32
	asked   map[TopicPartition]int64
	resp    *kmsg.FetchResponse
	err     error                    // the request failed as a whole
	resetAt map[TopicPartition]int64 // positions the reset step found
	resetEr error
}

// answer is one partition's part of a Fetch answer, decoded.
type answer struct {
	asked   int64    // the offset the partition was fetched from
	err     error    // the partition's error code, as an error
	records []Record // whole batches, so they may begin before asked
	epochs  []batchEpoch
	corrupt error // the records did not decode
}

// New makes a consumer. It connects when it first needs to.
func New(cfg Config) (*Consumer, error) {
	if len(cfg.BootstrapServers) == 0 {
		return nil, fmt.Errorf("bootstrap.servers is empty")
	}
	if cfg.MaxPollRecords <= 0 {
		return nil, fmt.Errorf("max.poll.records must be positive")
	}
	var g *group
	if cfg.GroupID != "" {
		var err error
		if g, err = newGroup(cfg); err != nil {
			return nil, err
		}
	}
	return &Consumer{
		group:    g,
		cfg:      cfg,
		cluster:  client.NewCluster(cfg.BootstrapServers, cfg.ClientID),
		parts:    map[TopicPartition]*partition{},
		inFlight: map[int32]bool{},
		results:  make(chan fetchResult, 64),
		stop:     make(chan struct{}),
	}, nil
}

// Assign makes tps the consumer's partitions, replacing any before.
// Partitions it keeps keep their positions; new ones start with none. A
// consumer that subscribed (Subscribe) must not: its group assigns them.
func (c *Consumer) Assign(tps ...TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := map[TopicPartition]*partition{}
	for _, tp := range tps {
		if p, ok := c.parts[tp]; ok {
			parts[tp] = p
		} else {
			parts[tp] = newPartition(tp)
		}
	}
	c.parts, c.order = parts, append([]TopicPartition(nil), tps...)
	c.deleted = nil // looked for again: a topic may have been created again
}

// Assignment returns the assigned partitions.
func (c *Consumer) Assignment() []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]TopicPartition(nil), c.order...)
}

// Seek sets the offset the next Poll reads tp from, dropping what was
// already fetched from elsewhere.
func (c *Consumer) Seek(tp TopicPartition, offset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.parts[tp]
	if !ok {
		return fmt.Errorf("consumer: %s is not assigned", tp)
	}
	p.seek(offset)
	return nil
}

// defaultAPITimeout is Kafka's default.api.timeout.ms: how long a blocking
// call such as Position retries a leader that is out of reach when its
// context has no deadline of its own.
const defaultAPITimeout = 60 * time.Second

// Position returns the offset of the next record Poll will return for tp,
// resolving it by auto.offset.reset first if it is not known. A leader
// that died or moved is looked for again until ctx ends; a topic that was
// deleted is ErrTopicDeleted.
func (c *Consumer) Position(ctx context.Context, tp TopicPartition) (int64, error) {
	c.mu.Lock()
	p, ok := c.parts[tp]
	if !ok {
		c.mu.Unlock()
		return 0, fmt.Errorf("consumer: %s is not assigned", tp)
	}
	position := p.position
	c.mu.Unlock()
	if position >= 0 {
		return position, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultAPITimeout)
		defer cancel()
	}
	var found map[TopicPartition]int64
	for {
		var err error
		if found, err = c.reset(ctx, []TopicPartition{tp}); err == nil {
			break
		}
		// UNKNOWN_TOPIC_OR_PARTITION, which ErrTopicDeleted wraps, is
		// retriable, but not once the topic is known to be gone.
		if errors.Is(err, ErrTopicDeleted) || !client.Retriable(err) {
			return 0, err
		}
		// The leader died or moved: ask who leads now, and try again.
		c.refreshMetadata()
		if werr := sleep(ctx, c.cfg.RetryBackoff); werr != nil {
			return 0, fmt.Errorf("consumer: position of %s: %w (last: %w)", tp, werr, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.position < 0 {
		p.position = found[tp]
	}
	return p.position, nil
}

// Poll returns the next records of the assigned partitions, at most
// max.poll.records, waiting for some until ctx is done. Before it returns,
// it asks the brokers for what comes next, so that the next Poll finds it
// ready. A member of a group joins and rejoins it here, runs the rebalance
// callbacks, and auto-commits: call Poll at least every
// max.poll.interval.ms, or the consumer leaves its group.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
		if c.group != nil && !c.isClosed() {
			if err := c.pollGroup(ctx); err != nil {
				return nil, err
			}
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		if err := c.err; err != nil {
			c.err = nil
			c.mu.Unlock()
			return nil, err
		}
		if len(c.deleted) > 0 && !c.subscribed {
			topics := slices.Sorted(maps.Keys(c.deleted))
			c.mu.Unlock()
			return nil, errTopicDeleted(topics...)
		}
		recs, err := c.take(c.cfg.MaxPollRecords)
		for _, r := range recs {
			c.parts[TopicPartition{r.Topic, r.Partition}].consumed(r.Offset)
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
		c.startFetches()
		if len(recs) > 0 {
			return recs, nil
		}
		select {
		case res := <-c.results:
			c.handle(res)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(c.cfg.RetryBackoff):
			// look again: a backoff ended, or metadata arrived
		}
	}
}

// take returns up to max buffered records, taking from each partition in
// turn (round robin, so that a busy partition does not starve the others),
// and moves each partition's position past the records it returns.
func (c *Consumer) take(max int) ([]Record, error) {
	//klab:lesson 05 begin (*Consumer).take
	var out []Record
	for i := 0; i < len(c.order) && len(out) < max; i++ {
		p := c.parts[c.order[(c.next+i)%len(c.order)]]
		n := min(len(p.buffered), max-len(out))
		if n == 0 {
			continue
		}
		if out == nil {
			out = p.buffered[:n:n] // no copy: the buffer moves past these
		} else {
			out = append(out, p.buffered[:n]...)
		}
		p.buffered = p.buffered[n:]
		p.position = out[len(out)-1].Offset + 1
	}
	c.next++
	return out, nil
	//klab:lesson 05 stub
	// return nil, lessons.Todo("05", "(*Consumer).take")
	//klab:lesson 05 end
}

// startFetches sends a Fetch to each leader that has partitions with
// nothing buffered and no fetch under way.
func (c *Consumer) startFetches() {
	c.mu.Lock()
	unknown := false
	for _, tp := range c.order {
		unknown = unknown || (c.cluster.Partitions(tp.Topic) == nil && !c.deleted[tp.Topic])
	}
	c.mu.Unlock()
	if unknown {
		c.refreshMetadata() // a topic never seen: learn its leaders before fetching
	}
	now := time.Now()
	byLeader := map[int32][]*partition{}
	c.mu.Lock()
	for _, tp := range c.order {
		p := c.parts[tp]
		// As Kafka's consumer does, fetch a partition only once what was
		// fetched before is returned; handle sends the next fetch before it
		// decodes an answer, so the broker is not kept waiting.
		if p.fetching || len(p.buffered) > 0 || now.Before(p.retryAt) || c.deleted[tp.Topic] {
			continue
		}
		leader, ok := c.leader(tp)
		if !ok {
			c.refresh = true
			p.retryAt = now.Add(c.cfg.RetryBackoff)
			continue
		}
		if c.inFlight[leader] {
			continue
		}
		byLeader[leader] = append(byLeader[leader], p)
	}
	refresh := c.refresh
	c.refresh = false
	type job struct {
		leader int32
		asked  map[TopicPartition]int64
	}
	var jobs []job
	for leader, ps := range byLeader {
		c.inFlight[leader] = true
		asked := map[TopicPartition]int64{}
		for _, p := range ps {
			p.fetching = true
			asked[p.tp] = p.fetchOffset()
		}
		jobs = append(jobs, job{leader, asked})
	}
	c.mu.Unlock()
	if refresh {
		c.refreshMetadata()
	}
	for _, j := range jobs {
		go c.fetch(j.leader, j.asked)
	}
}

// leader returns the broker that leads tp, from the metadata.
func (c *Consumer) leader(tp TopicPartition) (int32, bool) {
	parts := c.cluster.Partitions(tp.Topic)
	if tp.Partition < 0 || int(tp.Partition) >= len(parts) || parts[tp.Partition].Err != nil || parts[tp.Partition].Leader < 0 {
		return 0, false
	}
	return parts[tp.Partition].Leader, true
}

func (c *Consumer) refreshMetadata() {
	topics := map[string]bool{}
	c.mu.Lock()
	for _, tp := range c.order {
		topics[tp.Topic] = true
	}
	c.mu.Unlock()
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	c.cluster.Refresh(ctx, names...)
	c.noteDeleted()
}

// noteDeleted notes, after a metadata refresh, which assigned topics were
// deleted (client.Cluster.Deleted): their partitions are no longer
// fetched, and no more metadata is asked for them. A consumer that
// assigned itself partitions hears of it from Poll (ErrTopicDeleted); one
// that subscribed rejoins its group, whose leader assigns only the
// partitions Metadata lists.
func (c *Consumer) noteDeleted() {
	c.mu.Lock()
	found := false
	for _, tp := range c.order {
		if !c.deleted[tp.Topic] && c.cluster.Deleted(tp.Topic) {
			if c.deleted == nil {
				c.deleted = map[string]bool{}
			}
			c.deleted[tp.Topic], found = true, true
		}
	}
	subscribed := c.subscribed
	c.mu.Unlock()
	if found && subscribed {
		c.group.mu.Lock()
		c.group.rejoin = true
		c.group.mu.Unlock()
	}
}

// fetch resolves the positions it must, then sends one Fetch to a leader
// and hands the answer to Poll.
func (c *Consumer) fetch(leader int32, asked map[TopicPartition]int64) {
	res := fetchResult{leader: leader, asked: asked}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout+c.cfg.FetchMaxWait)
	defer cancel()
	var unknown []TopicPartition
	for tp, pos := range asked {
		if pos < 0 {
			unknown = append(unknown, tp)
		}
	}
	if len(unknown) > 0 {
		res.resetAt, res.resetEr = c.reset(ctx, unknown)
		for tp, pos := range res.resetAt {
			asked[tp] = pos
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(c.cfg.FetchMaxWait.Milliseconds())
	req.MinBytes, req.MaxBytes = c.cfg.FetchMinBytes, c.cfg.FetchMaxBytes
	req.SessionEpoch = -1 // no fetch session: every fetch names all its partitions
	topics := map[string]int{}
	for tp, pos := range asked {
		if pos < 0 {
			continue
		}
		i, ok := topics[tp.Topic]
		if !ok {
			i = len(req.Topics)
			topics[tp.Topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = tp.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = tp.Partition, pos, c.cfg.MaxPartitionFetchBytes
		rp.CurrentLeaderEpoch = c.leaderEpoch(tp)
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(req.Topics) > 0 {
		conn, err := c.cluster.Broker(ctx, leader)
		if err == nil {
			var resp kmsg.Response
			if resp, err = conn.Request(ctx, req); err == nil {
				res.resp = resp.(*kmsg.FetchResponse)
			}
		}
		res.err = err
	}
	select {
	case c.results <- res:
	case <-c.stop:
	}
}

// decode decodes a partition's records, as the consumer's records. The
// log's records are decoded a batch at a time into one reused slice, so
// that only the consumer's slice grows with the answer.
func decode(tp TopicPartition, raw []byte) ([]Record, []batchEpoch, error) {
	whole := log.WholeBatches(raw)
	out := make([]Record, 0, log.CountRecords(whole))
	batches, err := log.Batches(whole)
	if len(whole) == 0 {
		return out, nil, nil
	}
	if err != nil {
		return out, nil, err
	}
	var recs []log.Record
	var epochs []batchEpoch
	for _, b := range batches {
		if err := log.CheckBatch(b); err != nil { // check.crcs, on by default in Kafka's consumer
			return out, epochs, err
		}
		if recs, err = log.AppendRecords(recs[:0], b); err != nil {
			return out, epochs, err
		}
		// A batch's header begins with its base offset (8 bytes), its
		// length (4) and the leader epoch it was written in (4).
		epochs = append(epochs, batchEpoch{int64(binary.BigEndian.Uint64(b)), int32(binary.BigEndian.Uint32(b[12:]))})
		for _, r := range recs {
			out = append(out, Record{Topic: tp.Topic, Partition: tp.Partition, Offset: r.Offset,
				Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
	}
	return out, epochs, nil
}

func (c *Consumer) leaderEpoch(tp TopicPartition) int32 {
	parts := c.cluster.Partitions(tp.Topic)
	if tp.Partition >= 0 && int(tp.Partition) < len(parts) {
		return parts[tp.Partition].LeaderEpoch
	}
	return -1
}

// reset finds the offsets auto.offset.reset says to start the partitions
// from, with a ListOffsets to each partition's leader.
func (c *Consumer) reset(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	found := map[TopicPartition]int64{}
	byLeader := map[int32][]TopicPartition{}
	for _, tp := range tps {
		leader, ok := c.leader(tp)
		if !ok {
			c.refreshMetadata()
			if leader, ok = c.leader(tp); !ok {
				if c.cluster.Deleted(tp.Topic) {
					return found, errTopicDeleted(tp.Topic)
				}
				return found, fmt.Errorf("%w: no leader known for %s", kerr.LeaderNotAvailable, tp)
			}
		}
		byLeader[leader] = append(byLeader[leader], tp)
	}
	for leader, tps := range byLeader {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		for _, tp := range tps {
			ts, err := c.resetTimestamp()
			if err != nil {
				return found, fmt.Errorf("%s: %w", tp, err)
			}
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = tp.Topic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = tp.Partition, ts, c.leaderEpoch(tp)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		conn, err := c.cluster.Broker(ctx, leader)
		if err != nil {
			return found, err
		}
		resp, err := conn.Request(ctx, req)
		if err != nil {
			return found, err
		}
		for _, rt := range resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return found, fmt.Errorf("ListOffsets %s-%d: %w", rt.Topic, rp.Partition, err)
				}
				found[TopicPartition{rt.Topic, rp.Partition}] = rp.Offset
			}
		}
	}
	return found, nil
}

// resetTimestamp turns auto.offset.reset into the timestamp a ListOffsets
// request asks for: -2 for the earliest offset, -1 for the latest.
func (c *Consumer) resetTimestamp() (int64, error) {
	//klab:lesson 05 begin (*Consumer).resetTimestamp
	switch c.cfg.AutoOffsetReset {
	case "earliest":
		return -2, nil
	case "latest":
		return -1, nil
	}
	return 0, ErrNoOffset
	//klab:lesson 05 stub
	// return 0, lessons.Todo("05", "(*Consumer).resetTimestamp")
	//klab:lesson 05 end
}

// handle takes a Fetch answer into the partitions' buffers. It reads from
// the batch headers where each partition's next fetch starts and sends that
// fetch before it decodes this one, so that the broker serves the next
// while this goroutine decodes.
func (c *Consumer) handle(res fetchResult) {
	type filed struct {
		p   *partition
		gen int
		a   answer
		raw []byte
	}
	var work []filed
	c.mu.Lock()
	c.inFlight[res.leader] = false
	now := time.Now()
	for tp := range res.asked {
		if p, ok := c.parts[tp]; ok {
			p.fetching = false
			if pos, ok := res.resetAt[tp]; ok && p.position < 0 {
				p.position = pos
			}
		}
	}
	if res.resetEr != nil {
		if client.Retriable(res.resetEr) {
			// The leader moved or is out of reach (a broker died): find it
			// again, and ask once more for the positions still missing,
			// as the Java client retries its ListOffsets.
			c.refresh = true
			for tp := range res.asked {
				if p, ok := c.parts[tp]; ok && p.position < 0 {
					p.retryAt = now.Add(c.cfg.RetryBackoff)
				}
			}
		} else if c.err == nil {
			c.err = res.resetEr
		}
	}
	if res.err != nil || res.resp == nil {
		if res.err != nil {
			c.refresh = true
		}
		for tp := range res.asked {
			if p, ok := c.parts[tp]; ok {
				p.retryAt = now.Add(c.cfg.RetryBackoff)
			}
		}
		c.mu.Unlock()
		return
	}
	for _, rt := range res.resp.Topics {
		for _, rp := range rt.Partitions {
			tp := TopicPartition{rt.Topic, rp.Partition}
			p, ok := c.parts[tp]
			asked, wasAsked := res.asked[tp]
			if !ok || !wasAsked || p.fetchOffset() != asked {
				continue // unassigned, or moved by Seek while the fetch was out
			}
			a := answer{asked: asked, err: kerr.ErrorForCode(rp.ErrorCode)}
			if next := log.NextOffset(rp.RecordBatches); a.err == nil && next > asked {
				p.nextFetch = next
			}
			work = append(work, filed{p, p.gen, a, rp.RecordBatches})
		}
	}
	c.mu.Unlock()

	c.startFetches()
	for i := range work {
		if work[i].a.err == nil {
			work[i].a.records, work[i].a.epochs, work[i].a.corrupt = decode(work[i].p.tp, work[i].raw)
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range work {
		if c.parts[w.p.tp] != w.p || w.p.gen != w.gen {
			continue // unassigned or moved by Seek while we decoded
		}
		if err := c.fetched(w.p, w.a); err != nil && c.err == nil {
			c.err = err
		}
		w.p.epochs = w.a.epochs
	}
}

// fetched files one partition's part of a Fetch answer, asked for from
// a.asked. Its records from there on (the first batch may begin before it)
// become the partition's buffer, which is empty: Poll handles an answer
// only when take found nothing to return. OFFSET_OUT_OF_RANGE forgets the
// position, so that auto.offset.reset finds a new one; other errors mean
// the leader moved or is unknown: wait for fresh metadata and fetch again.
func (c *Consumer) fetched(p *partition, a answer) error {
	//klab:lesson 05 begin (*Consumer).fetched
	switch {
	case a.corrupt != nil:
		p.nextFetch = a.asked // fetch it again, and fail again, until the application Seeks past it
		return fmt.Errorf("%s: %w", p.tp, a.corrupt)
	case errors.Is(a.err, kerr.OffsetOutOfRange):
		if c.cfg.AutoOffsetReset == "none" {
			return fmt.Errorf("%s: offset %d: %w (%w)", p.tp, a.asked, a.err, ErrNoOffset)
		}
		p.forget()
		return nil
	case a.err != nil:
		c.refresh = true
		p.retryAt = time.Now().Add(c.cfg.RetryBackoff)
		return nil
	}
	skip := 0
	for skip < len(a.records) && a.records[skip].Offset < a.asked {
		skip++
	}
	p.buffered = a.records[skip:] // Poll files an answer only once every buffer is empty
	return nil
	//klab:lesson 05 stub
	// return lessons.Todo("05", "(*Consumer).fetched")
	//klab:lesson 05 end
}

// isClosed reports whether Close was called.
func (c *Consumer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close stops the consumer and closes its connections. A member of a group
// first commits (with auto commit), revokes its partitions and leaves the
// group (unless it is a static member: KIP-345's members keep their place
// through a restart), so that the others take its partitions at once.
func (c *Consumer) Close() error {
	if c.group != nil && !c.isClosed() {
		c.closeGroup()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stop)
	c.cluster.Close()
	return nil
}
