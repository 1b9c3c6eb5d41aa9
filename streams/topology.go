package streams

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// errorf makes the package's errors, prefixed as every error of package
// streams is.
func errorf(format string, args ...any) error {
	return fmt.Errorf("streams: "+format, args...)
}

// TimestampExtractor gives a record's event time: what stream time and
// windows follow. r.Timestamp is the timestamp the record has in its
// topic; partitionTime is the largest timestamp extracted so far in the
// task, zero before the first. A time before 1970 drops the record (it is
// counted, and logged by the application), as Kafka's
// LogAndSkipOnInvalidTimestamp does; Kafka's default extractor
// (FailOnInvalidTimestamp) stops the application instead.
type TimestampExtractor func(r Record, partitionTime time.Time) time.Time

// RecordTimestamp is the default extractor: the record's own timestamp
// (the producer's create time, or the broker's log append time).
func RecordTimestamp(r Record, _ time.Time) time.Time { return r.Timestamp }

// WallClockTimestamp gives every record the time it is processed, as
// Kafka's WallclockTimestampExtractor: processing time, not event time.
func WallClockTimestamp(Record, time.Time) time.Time { return time.Now() }

// Source is a topology's entry: the topics it reads, and how it turns
// their bytes into keys and values.
type Source struct {
	Name   string
	Topics []string
	// Key and Value deserialize the records; nil passes the bytes on as
	// []byte.
	Key, Value AnySerde
	// TimestampExtractor is the records' event time; nil is
	// RecordTimestamp.
	TimestampExtractor TimestampExtractor
}

// Sink is a topology's exit: the topic it writes what its parents forward
// to, serialized by Key and Value (nil: keys and values must be []byte).
// Records are partitioned by their serialized key, as Kafka's default
// partitioner does, so that a key always lands in the same partition.
type Sink struct {
	Name       string
	Topic      string
	Key, Value AnySerde
	Parents    []string
}

// StoreSpec describes a key-value state store.
type StoreSpec struct {
	Name string
	// InMemory keeps the store in a map; otherwise it is persistent, in an
	// embedded Pebble database under state.dir, as Kafka's default store
	// is a RocksDB database.
	InMemory bool
	// LoggingDisabled writes no changelog: the store is then lost with
	// its machine, and not restored when its task moves.
	LoggingDisabled bool
}

type nodeKind int

const (
	sourceNode nodeKind = iota
	processorNode
	sinkNode
)

// nodeSpec is one node of a topology as it is described, before any task
// makes instances of it.
type nodeSpec struct {
	name     string
	kind     nodeKind
	parents  []*nodeSpec
	children []*nodeSpec

	source     Source // sourceNode
	sink       Sink   // sinkNode
	supplier   ProcessorSupplier
	storeNames map[string]bool
}

// Topology is a graph of sources, processors and sinks, with the state
// stores its processors use, as Kafka's Topology: the description of the
// work, which the application runs as tasks. Build it with the Add
// methods, or with a StreamsBuilder (the DSL). The Add methods return the
// topology, for chaining; the first mistake in them is kept, and Err,
// NewTestDriver and New return it.
type Topology struct {
	nodes  []*nodeSpec
	byName map[string]*nodeSpec
	stores []StoreSpec
	// internal holds the topics the application owns, named without the
	// application.id prefix they get when it runs: repartition topics.
	internal map[string]bool
	// copartitioned lists groups of source topics that must have as many
	// partitions as each other: the inputs of a join.
	copartitioned [][]string
	err           error
}

// NewTopology returns an empty topology.
func NewTopology() *Topology {
	return &Topology{byName: map[string]*nodeSpec{}, internal: map[string]bool{}}
}

// Err is the first mistake made building the topology.
func (t *Topology) Err() error { return t.err }

func (t *Topology) fail(format string, args ...any) *Topology {
	if t.err == nil {
		t.err = errorf(format, args...)
	}
	return t
}

func (t *Topology) add(n *nodeSpec, parents []string) *Topology {
	if n.name == "" {
		return t.fail("a node needs a name")
	}
	if _, ok := t.byName[n.name]; ok {
		return t.fail("node %q is added twice", n.name)
	}
	for _, p := range parents {
		parent, ok := t.byName[p]
		switch {
		case !ok:
			return t.fail("%s: parent %q is not in the topology (add parents first)", n.name, p)
		case parent.kind == sinkNode:
			return t.fail("%s: parent %q is a sink, which forwards nothing", n.name, p)
		}
		n.parents = append(n.parents, parent)
		parent.children = append(parent.children, n)
	}
	n.storeNames = map[string]bool{}
	t.nodes = append(t.nodes, n)
	t.byName[n.name] = n
	return t
}

// AddSource adds a source reading s.Topics. A topic may be read by one
// source only.
func (t *Topology) AddSource(s Source) *Topology {
	if len(s.Topics) == 0 {
		return t.fail("source %s reads no topic", s.Name)
	}
	for _, topic := range s.Topics {
		if other := t.sourceOf(topic); other != nil {
			return t.fail("topic %s is read by source %s already", topic, other.name)
		}
	}
	return t.add(&nodeSpec{name: s.Name, kind: sourceNode, source: s}, nil)
}

// AddProcessor adds a processor under parents (sources or processors).
func (t *Topology) AddProcessor(name string, supplier ProcessorSupplier, parents ...string) *Topology {
	if len(parents) == 0 {
		return t.fail("processor %s has no parent", name)
	}
	if supplier == nil {
		return t.fail("processor %s has no supplier", name)
	}
	return t.add(&nodeSpec{name: name, kind: processorNode, supplier: supplier}, parents)
}

// AddSink adds a sink under s.Parents.
func (t *Topology) AddSink(s Sink) *Topology {
	if len(s.Parents) == 0 {
		return t.fail("sink %s has no parent", s.Name)
	}
	if s.Topic == "" {
		return t.fail("sink %s writes no topic", s.Name)
	}
	return t.add(&nodeSpec{name: s.Name, kind: sinkNode, sink: s}, s.Parents)
}

// AddStateStore adds a store and connects it to processors.
func (t *Topology) AddStateStore(s StoreSpec, processors ...string) *Topology {
	if s.Name == "" {
		return t.fail("a state store needs a name")
	}
	if t.store(s.Name) != nil {
		return t.fail("state store %q is added twice", s.Name)
	}
	t.stores = append(t.stores, s)
	return t.connect(processors, s.Name)
}

// ConnectProcessorAndStateStores gives processor access to stores added
// already.
func (t *Topology) ConnectProcessorAndStateStores(processor string, stores ...string) *Topology {
	for _, s := range stores {
		t.connect([]string{processor}, s)
	}
	return t
}

func (t *Topology) connect(processors []string, store string) *Topology {
	if t.store(store) == nil {
		return t.fail("state store %q is not in the topology", store)
	}
	for _, p := range processors {
		n, ok := t.byName[p]
		if !ok || n.kind != processorNode {
			return t.fail("state store %s: %q is not a processor of the topology", store, p)
		}
		n.storeNames[store] = true
	}
	return t
}

func (t *Topology) store(name string) *StoreSpec {
	for i := range t.stores {
		if t.stores[i].Name == name {
			return &t.stores[i]
		}
	}
	return nil
}

func (t *Topology) sourceOf(topic string) *nodeSpec {
	for _, n := range t.nodes {
		if n.kind == sourceNode && slices.Contains(n.source.Topics, topic) {
			return n
		}
	}
	return nil
}

// subtopology is a connected part of a topology: nodes linked by edges or
// by a store they share. Each is run as tasks of its own, one per
// partition of its inputs; a repartition topic is where one ends and the
// next begins.
type subtopology struct {
	id     int
	nodes  []*nodeSpec // in the order they were added
	topics []string    // what its sources read, in order
	stores []string
}

// subtopologies splits the topology into its connected parts, numbered in
// the order of their first node, as Kafka numbers them.
func (t *Topology) subtopologies() []*subtopology {
	// Union-find over node indexes.
	parent := make([]int, len(t.nodes))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := find(a), find(b)
		if ra < rb {
			parent[rb] = ra
		} else if rb < ra {
			parent[ra] = rb
		}
	}
	index := map[*nodeSpec]int{}
	for i, n := range t.nodes {
		index[n] = i
	}
	storeUser := map[string]int{}
	for i, n := range t.nodes {
		for _, c := range n.children {
			union(i, index[c])
		}
		for _, s := range slices.Sorted(mapKeys(n.storeNames)) {
			if j, ok := storeUser[s]; ok {
				union(i, j)
			} else {
				storeUser[s] = i
			}
		}
	}
	var out []*subtopology
	byRoot := map[int]*subtopology{}
	for i, n := range t.nodes {
		r := find(i)
		s, ok := byRoot[r]
		if !ok {
			s = &subtopology{id: len(out)}
			byRoot[r] = s
			out = append(out, s)
		}
		s.nodes = append(s.nodes, n)
		if n.kind == sourceNode {
			s.topics = append(s.topics, n.source.Topics...)
		}
		for _, st := range slices.Sorted(mapKeys(n.storeNames)) {
			if !slices.Contains(s.stores, st) {
				s.stores = append(s.stores, st)
			}
		}
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Describe prints the topology as Kafka's TopologyDescription does: each
// sub-topology, each node with the topics or stores it uses, its children
// (-->) and its parents (<--).
func (t *Topology) Describe() string {
	var b strings.Builder
	b.WriteString("Topologies:\n")
	names := func(ns []*nodeSpec) string {
		if len(ns) == 0 {
			return "none"
		}
		var s []string
		for _, n := range ns {
			s = append(s, n.name)
		}
		return strings.Join(s, ", ")
	}
	for i, s := range t.subtopologies() {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "   Sub-topology: %d\n", s.id)
		for _, n := range s.nodes {
			switch n.kind {
			case sourceNode:
				fmt.Fprintf(&b, "    Source: %s (topics: [%s])\n", n.name, strings.Join(n.source.Topics, ", "))
			case processorNode:
				fmt.Fprintf(&b, "    Processor: %s (stores: [%s])\n", n.name, strings.Join(slices.Sorted(mapKeys(n.storeNames)), ", "))
			case sinkNode:
				fmt.Fprintf(&b, "    Sink: %s (topic: %s)\n", n.name, n.sink.Topic)
			}
			if n.kind != sinkNode {
				fmt.Fprintf(&b, "      --> %s\n", names(n.children))
			}
			if n.kind != sourceNode {
				fmt.Fprintf(&b, "      <-- %s\n", names(n.parents))
			}
		}
	}
	return b.String()
}

// resolve is the name a topic has when application appID runs: internal
// topics are prefixed with it.
func (t *Topology) resolve(appID, topic string) string {
	if t.internal[topic] {
		return appID + "-" + topic
	}
	return topic
}

// ChangelogTopic is the topic a logged store is backed by.
func ChangelogTopic(appID, store string) string { return appID + "-" + store + "-changelog" }

// TaskID names a task: its sub-topology and the partition of its inputs,
// written as Kafka writes it, "0_1".
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// Tasks says which tasks the topology makes when its source topics have
// the given partition counts (internal topics named as appID runs them):
// for each sub-topology, one task per partition of its widest input. Each
// task reads the same-numbered partition of every input of its
// sub-topology, so inputs that are joined must have equal partition
// counts: the error says which do not.
func (t *Topology) Tasks(appID string, partitions map[string]int32) ([]TaskID, error) {
	for _, group := range t.copartitioned {
		var want int32 = -1
		var first string
		for _, topic := range group {
			topic = t.resolve(appID, topic)
			n, ok := partitions[topic]
			if !ok {
				continue
			}
			if want < 0 {
				want, first = n, topic
			} else if n != want {
				return nil, errorf("topics %s (%d partitions) and %s (%d partitions) must be co-partitioned: a join reads the same partition of each, so they need the same number of partitions", first, want, topic, n)
			}
		}
	}
	var tasks []TaskID
	for _, s := range t.subtopologies() {
		var most int32
		for _, topic := range s.topics {
			most = max(most, partitions[t.resolve(appID, topic)])
		}
		for p := range most {
			tasks = append(tasks, TaskID{Subtopology: s.id, Partition: p})
		}
	}
	return tasks, nil
}

// SourceTopics are the topics the topology reads, internal ones named as
// application appID runs them.
func (t *Topology) SourceTopics(appID string) []string {
	var out []string
	for _, n := range t.nodes {
		if n.kind == sourceNode {
			for _, topic := range n.source.Topics {
				out = append(out, t.resolve(appID, topic))
			}
		}
	}
	return out
}

// subtopologyOf returns the sub-topology that reads topic (resolved for
// appID).
func (t *Topology) subtopologyOf(appID, topic string) (*subtopology, bool) {
	for _, s := range t.subtopologies() {
		for _, st := range s.topics {
			if t.resolve(appID, st) == topic {
				return s, true
			}
		}
	}
	return nil, false
}
