package streams

import (
	"slices"
	"time"
)

// collector is where a task's output goes: the sinks' records, and the
// changelog records of its logged stores. A partition of -1 lets the
// record's key choose, as the producer's default partitioner does.
type collector interface {
	send(topic string, partition int32, key, value []byte, ts time.Time, headers []Header) error
}

// task runs one sub-topology over one partition of its inputs: its own
// processor instances, its own stores, its own stream time. Everything in
// it happens on one goroutine at a time.
type task struct {
	id    TaskID
	appID string
	topo  *Topology
	sub   *subtopology

	nodes     []*taskNode          // in the sub-topology's order
	sources   map[string]*taskNode // by the topic it reads, resolved
	stores    map[string]KeyValueStore
	collector collector
	clock     func() time.Time

	// streamTime is the largest event time processed so far: the clock
	// stream-time punctuations and windows follow. It never goes back.
	streamTime time.Time
	current    RecordMetadata // of the record being processed
	processing bool
	// recordTime is the time of what the task is doing: the record being
	// processed, or a punctuation's time. Changelog records carry it.
	recordTime time.Time
	schedules  []*schedule

	commitRequested bool
	// dropped counts records dropped for a timestamp before 1970.
	dropped int
}

// taskNode is a task's instance of one node of its sub-topology.
type taskNode struct {
	name      string
	spec      *nodeSpec
	children  []*taskNode
	processor Processor // processor nodes only
	ctx       *ProcessorContext
	topics    []string // a sink's topic, or a source's topics, resolved
}

// openStore opens the bytes store a task's store spec asks for.
type openStore func(spec StoreSpec, id TaskID) (KeyValueStore, error)

// newTask makes the instances of sub-topology sub for partition, opens its
// stores (wrapped to write their changelogs) and initializes its
// processors, parents before children.
func newTask(topo *Topology, appID string, sub *subtopology, partition int32, out collector, clock func() time.Time, open openStore) (*task, error) {
	t := &task{
		id:        TaskID{Subtopology: sub.id, Partition: partition},
		appID:     appID,
		topo:      topo,
		sub:       sub,
		sources:   map[string]*taskNode{},
		stores:    map[string]KeyValueStore{},
		collector: out,
		clock:     clock,
	}
	for _, name := range sub.stores {
		spec := *topo.store(name)
		s, err := open(spec, t.id)
		if err != nil {
			t.closeStores()
			return nil, errorf("task %s: opening store %s: %w", t.id, name, err)
		}
		if !spec.LoggingDisabled {
			s = &loggedStore{KeyValueStore: s, task: t, topic: ChangelogTopic(appID, name)}
		}
		t.stores[name] = s
	}
	byName := map[string]*taskNode{}
	for _, spec := range sub.nodes {
		n := &taskNode{name: spec.name, spec: spec}
		switch spec.kind {
		case sourceNode:
			for _, topic := range spec.source.Topics {
				n.topics = append(n.topics, topo.resolve(appID, topic))
				t.sources[topo.resolve(appID, topic)] = n
			}
		case sinkNode:
			n.topics = []string{topo.resolve(appID, spec.sink.Topic)}
		case processorNode:
			n.processor = spec.supplier()
		}
		n.ctx = &ProcessorContext{task: t, node: n}
		byName[spec.name] = n
		t.nodes = append(t.nodes, n)
	}
	for _, n := range t.nodes {
		for _, c := range n.spec.children {
			n.children = append(n.children, byName[c.name])
		}
	}
	for _, n := range t.nodes {
		if n.processor != nil {
			if err := n.processor.Init(n.ctx); err != nil {
				t.close()
				return nil, errorf("task %s: init of %s: %w", t.id, n.name, err)
			}
		}
	}
	return t, nil
}

// processInput runs one record read from topic through the sub-topology:
// the source deserializes it, the extractor gives its event time, stream
// time moves forward, every node downstream does its work, and then the
// stream-time punctuations that became due fire.
func (t *task) processInput(meta RecordMetadata, key, value []byte, ts time.Time, headers []Header) error {
	src, ok := t.sources[meta.Topic]
	if !ok {
		return errorf("task %s reads no topic %s", t.id, meta.Topic)
	}
	r := Record{Timestamp: ts, Headers: headers}
	var err error
	if r.Key, err = decode(src.spec.source.Key, meta.Topic, key); err != nil {
		return errorf("task %s: key of %s-%d at offset %d: %w", t.id, meta.Topic, meta.Partition, meta.Offset, err)
	}
	if r.Value, err = decode(src.spec.source.Value, meta.Topic, value); err != nil {
		return errorf("task %s: value of %s-%d at offset %d: %w", t.id, meta.Topic, meta.Partition, meta.Offset, err)
	}
	extract := src.spec.source.TimestampExtractor
	if extract == nil {
		extract = RecordTimestamp
	}
	r.Timestamp = extract(r, t.streamTime)
	if r.Timestamp.Before(time.UnixMilli(0)) {
		t.dropped++
		return nil
	}
	if r.Timestamp.After(t.streamTime) {
		t.streamTime = r.Timestamp
	}
	t.current, t.processing, t.recordTime = meta, true, r.Timestamp
	err = t.process(src, r)
	t.processing = false
	if err != nil {
		return err
	}
	return t.punctuate(StreamTime, t.streamTime)
}

func decode(s AnySerde, topic string, b []byte) (any, error) {
	if s == nil {
		return b, nil
	}
	return s.Decode(topic, b)
}

func encode(s AnySerde, topic string, v any) ([]byte, error) {
	if s == nil {
		if v == nil {
			return nil, nil
		}
		b, ok := v.([]byte)
		if !ok {
			return nil, errorf("topic %s: %T needs a serde (the sink has none, so it takes []byte)", topic, v)
		}
		return b, nil
	}
	return s.Encode(topic, v)
}

// process hands r to node n: a source or a processor's output reaching its
// child.
func (t *task) process(n *taskNode, r Record) error {
	switch n.spec.kind {
	case sourceNode:
		return n.ctx.Forward(r)
	case processorNode:
		return n.processor.Process(r)
	default:
		topic := n.topics[0]
		k, err := encode(n.spec.sink.Key, topic, r.Key)
		if err != nil {
			return errorf("sink %s: key: %w", n.name, err)
		}
		v, err := encode(n.spec.sink.Value, topic, r.Value)
		if err != nil {
			return errorf("sink %s: value: %w", n.name, err)
		}
		return t.collector.send(topic, -1, k, v, r.Timestamp, r.Headers)
	}
}

// schedule is one scheduled punctuation.
type schedule struct {
	node      *taskNode
	interval  time.Duration
	typ       PunctuationType
	fn        Punctuator
	next      time.Time // when it is next due
	cancelled bool
}

func (s *schedule) Cancel() { s.cancelled = true }

func (t *task) schedule(n *taskNode, interval time.Duration, typ PunctuationType, fn Punctuator) *schedule {
	s := &schedule{node: n, interval: interval, typ: typ, fn: fn}
	if typ == StreamTime {
		// Aligned to the epoch: due at once, with the first record.
		s.next = time.UnixMilli(0)
	} else {
		s.next = t.clock().Add(interval)
	}
	t.schedules = append(t.schedules, s)
	return s
}

//klab:lesson 12 begin (*task).punctuate

// punctuate fires the punctuations of type typ that are due at now, the
// time of their clock, earliest first, each at most once: a clock that
// jumped over several intervals fires a punctuation once, with now, and
// its next time is the first multiple of its interval after now, counted
// from where it started.
func (t *task) punctuate(typ PunctuationType, now time.Time) error {
	due := func() *schedule {
		var first *schedule
		for _, s := range t.schedules {
			if s.typ == typ && !s.cancelled && !s.next.After(now) && (first == nil || s.next.Before(first.next)) {
				first = s
			}
		}
		return first
	}
	for s := due(); s != nil; s = due() {
		s.next = nextPunctuation(s.next, s.interval, now)
		t.current, t.processing, t.recordTime = RecordMetadata{}, false, now
		if err := s.fn(now); err != nil {
			return errorf("task %s: punctuation of %s: %w", t.id, s.node.name, err)
		}
	}
	t.schedules = slices.DeleteFunc(t.schedules, func(s *schedule) bool { return s.cancelled })
	return nil
}

// nextPunctuation is when a punctuation due at last, every interval, is
// due next, now that its clock reads now (at or after last): the first
// last + k*interval after now.
func nextPunctuation(last time.Time, interval time.Duration, now time.Time) time.Time {
	missed := now.Sub(last) / interval
	return last.Add((missed + 1) * interval)
}

//klab:lesson 12 stub
// func (t *task) punctuate(typ PunctuationType, now time.Time) error {
// 	return lessons.Todo("12", "(*task).punctuate")
// }
//klab:lesson 12 end

// flush writes what the stores hold in memory to disk: part of a commit.
func (t *task) flush() error {
	for _, name := range t.sub.stores {
		if err := t.stores[name].Flush(); err != nil {
			return errorf("task %s: flushing store %s: %w", t.id, name, err)
		}
	}
	return nil
}

// close closes the processors, children first... as Kafka does, in the
// order they were added, then the stores.
func (t *task) close() error {
	var first error
	for _, n := range t.nodes {
		if n.processor != nil {
			if err := n.processor.Close(); err != nil && first == nil {
				first = errorf("task %s: closing %s: %w", t.id, n.name, err)
			}
		}
	}
	if err := t.closeStores(); err != nil && first == nil {
		first = err
	}
	return first
}

func (t *task) closeStores() error {
	var first error
	for name, s := range t.stores {
		if err := s.Close(); err != nil && first == nil {
			first = errorf("task %s: closing store %s: %w", t.id, name, err)
		}
	}
	return first
}
