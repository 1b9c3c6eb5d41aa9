package streams

import "fmt"

// The DSL: KStream, KTable and their operators, written on the processor
// API. Each operator adds nodes to a Topology — a filter is a processor
// that forwards what passes, a count is a processor with a state store —
// so that Describe shows what a DSL program really runs, as in Kafka.
//
// Go methods cannot have type parameters of their own, so an operator
// that changes a stream's key or value type (Map, MapValues, SelectKey,
// GroupBy, Aggregate, the joins) is a function taking the stream, and the
// others (Filter, Peek, To, GroupByKey, Count, ...) are methods.

// StreamsBuilder builds a topology with the DSL, as Kafka's
// StreamsBuilder. Nodes and stores it makes are named as Kafka names them:
// KSTREAM-FILTER-0000000001, with one counter for the whole topology.
type StreamsBuilder struct {
	topo  *Topology
	index int
}

// NewStreamsBuilder returns a builder of an empty topology.
func NewStreamsBuilder() *StreamsBuilder { return &StreamsBuilder{topo: NewTopology()} }

// Build returns the topology, or the first mistake made building it.
func (b *StreamsBuilder) Build() (*Topology, error) { return b.topo, b.topo.Err() }

// name returns the next generated name with prefix, or given if the
// program named the node.
func (b *StreamsBuilder) name(given, prefix string) string {
	n := fmt.Sprintf("%s-%010d", prefix, b.index)
	b.index++
	if given != "" {
		return given
	}
	return n
}

// Consumed says how a stream or table reads its topic.
type Consumed[K, V any] struct {
	Key   Serde[K]
	Value Serde[V]
	// TimestampExtractor gives the records' event time; nil is
	// RecordTimestamp.
	TimestampExtractor TimestampExtractor
	// Name names the source node.
	Name string
}

// Produced says how To writes a topic: its serdes, if not those the
// stream already knows.
type Produced[K, V any] struct {
	Key   Serde[K]
	Value Serde[V]
	Name  string
}

// Grouped says how a grouping serializes its records when it has to write
// them to a repartition topic, and names that topic
// (<application.id>-<Name>-repartition).
type Grouped[K, V any] struct {
	Key   Serde[K]
	Value Serde[V]
	Name  string
}

// Materialized says where a table is kept: the name of its state store
// (and of its changelog topic, <application.id>-<Name>-changelog), its
// serdes, and the kind of store.
type Materialized[K, V any] struct {
	Name            string
	Key             Serde[K]
	Value           Serde[V]
	InMemory        bool
	LoggingDisabled bool
}

// orSerde is s if it was given, else known.
func orSerde[T any](s, known Serde[T]) Serde[T] {
	if s.set() {
		return s
	}
	return known
}

// anySerde is s as the processor API takes it: nil if it was not given,
// so that a sink or source without one says so when it meets a record.
func anySerde[T any](s Serde[T]) AnySerde {
	if !s.set() {
		return nil
	}
	return s
}

// cast turns a record's key or value back into the type the DSL knows it
// has: nil (no key, a tombstone) is T's zero value.
func cast[T any](v any, what, node string) (T, error) {
	var zero T
	if v == nil {
		return zero, nil
	}
	t, ok := v.(T)
	if !ok {
		return zero, errorf("%s: %s is a %T, not the %T this stream holds", node, what, v, zero)
	}
	return t, nil
}

// kv casts a record's key and value.
func kv[K, V any](r Record, node string) (K, V, error) {
	k, err := cast[K](r.Key, "key", node)
	if err != nil {
		var v V
		return k, v, err
	}
	v, err := cast[V](r.Value, "value", node)
	return k, v, err
}

// noKey says a record has no key: nil, or a nil []byte.
func noKey(k any) bool {
	b, isBytes := k.([]byte)
	return k == nil || isBytes && b == nil
}
