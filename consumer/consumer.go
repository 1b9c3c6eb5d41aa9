package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
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

// ErrClosed is returned after Close.
var ErrClosed = errors.New("consumer: closed")

// Consumer reads records from the partitions it is assigned. Its methods
// are safe for concurrent use, though an application usually polls from one
// goroutine, as with Kafka's consumer.
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

	results chan fetchResult
	stop    chan struct{}
}

// partition is the consumer's state for one assigned partition.
type partition struct {
	tp       TopicPartition
	position int64    // the offset of the next record to return; -1 unknown
	buffered []Record // fetched, not yet returned
	fetching bool
	retryAt  time.Time
}

// fetchResult is a Fetch answer from one broker, with the position each
// partition had when it was asked for.
type fetchResult struct {
	leader  int32
	asked   map[TopicPartition]int64
	resp    *kmsg.FetchResponse
	err     error
	resetAt map[TopicPartition]int64 // positions the reset step found
	resetEr error
}

// New makes a consumer. It connects when it first needs to.
func New(cfg Config) (*Consumer, error) {
	if len(cfg.BootstrapServers) == 0 {
		return nil, fmt.Errorf("bootstrap.servers is empty")
	}
	if cfg.MaxPollRecords <= 0 {
		return nil, fmt.Errorf("max.poll.records must be positive")
	}
	return &Consumer{
		cfg:      cfg,
		cluster:  client.NewCluster(cfg.BootstrapServers, cfg.ClientID),
		parts:    map[TopicPartition]*partition{},
		inFlight: map[int32]bool{},
		results:  make(chan fetchResult, 64),
		stop:     make(chan struct{}),
	}, nil
}

// Assign makes tps the consumer's partitions, replacing any before.
// Partitions it keeps keep their positions; new ones start with none.
func (c *Consumer) Assign(tps ...TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := map[TopicPartition]*partition{}
	for _, tp := range tps {
		if p, ok := c.parts[tp]; ok {
			parts[tp] = p
		} else {
			parts[tp] = &partition{tp: tp, position: -1}
		}
	}
	c.parts, c.order = parts, append([]TopicPartition(nil), tps...)
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
	p.position, p.buffered = offset, nil
	return nil
}

// Position returns the offset of the next record Poll will return for tp,
// resolving it by auto.offset.reset first if it is not known.
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
	found, err := c.reset(ctx, []TopicPartition{tp})
	if err != nil {
		return 0, err
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
// ready.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) {
	for {
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
		recs, err := c.take(c.cfg.MaxPollRecords)
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
		out = append(out, p.buffered[:n]...)
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
	now := time.Now()
	byLeader := map[int32][]*partition{}
	c.mu.Lock()
	for _, tp := range c.order {
		p := c.parts[tp]
		if p.fetching || len(p.buffered) > 0 || now.Before(p.retryAt) {
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
			asked[p.tp] = p.position
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
	if int(tp.Partition) >= len(parts) || parts[tp.Partition].Err != nil || parts[tp.Partition].Leader < 0 {
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

func (c *Consumer) leaderEpoch(tp TopicPartition) int32 {
	parts := c.cluster.Partitions(tp.Topic)
	if int(tp.Partition) < len(parts) {
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

// handle takes a Fetch answer into the partitions' buffers.
func (c *Consumer) handle(res fetchResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if res.resetEr != nil && c.err == nil {
		c.err = res.resetEr
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
		return
	}
	for _, rt := range res.resp.Topics {
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			tp := TopicPartition{rt.Topic, rp.Partition}
			p, ok := c.parts[tp]
			asked, wasAsked := res.asked[tp]
			if !ok || !wasAsked {
				continue // no longer assigned
			}
			if err := c.fetched(p, asked, rp); err != nil && c.err == nil {
				c.err = err
			}
		}
	}
}

// fetched takes one partition's part of a Fetch answer. Its records, from
// the partition's position on (the first batch may begin before it), go to
// the partition's buffer. OFFSET_OUT_OF_RANGE forgets the position, so that
// auto.offset.reset finds a new one; an error that says the leader moved
// waits for fresh metadata. An answer to a position the application has
// since moved with Seek is dropped.
func (c *Consumer) fetched(p *partition, asked int64, rp *kmsg.FetchResponseTopicPartition) error {
	//klab:lesson 05 begin (*Consumer).fetched
	if p.position != asked {
		return nil // Seek moved the position while the fetch was out
	}
	switch err := kerr.ErrorForCode(rp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		if c.cfg.AutoOffsetReset == "none" {
			return fmt.Errorf("%s: offset %d: %w (%w)", p.tp, asked, err, ErrNoOffset)
		}
		p.position = -1
		return nil
	default:
		c.refresh = true
		p.retryAt = time.Now().Add(c.cfg.RetryBackoff)
		return nil
	}
	recs, err := log.DecodeRecords(log.WholeBatches(rp.RecordBatches))
	if err != nil {
		return fmt.Errorf("%s: %w", p.tp, err)
	}
	for _, r := range recs {
		if r.Offset < p.position {
			continue // the batch began before the position
		}
		p.buffered = append(p.buffered, Record{
			Topic: p.tp.Topic, Partition: p.tp.Partition, Offset: r.Offset,
			Timestamp: r.Timestamp, Key: r.Key, Value: r.Value, Headers: r.Headers,
		})
	}
	return nil
	//klab:lesson 05 stub
	// return lessons.Todo("05", "(*Consumer).fetched")
	//klab:lesson 05 end
}

// Close stops the consumer and closes its connections.
func (c *Consumer) Close() error {
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
