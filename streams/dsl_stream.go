package streams

// KStream is a stream of records: every record is an event of its own, as
// Kafka's KStream. Two records with the same key are two facts, not an
// update of one (that is a KTable).
type KStream[K, V any] struct {
	b    *StreamsBuilder
	node string // the node whose output this stream is
	key  Serde[K]
	val  Serde[V]
	// topics are the source topics this stream's records come from, in
	// its sub-topology: what a join must be co-partitioned with.
	topics []string
	// keyChanged says the key was changed since the records were read
	// (Map, SelectKey, FlatMap): a record may now be in a partition other
	// than its key's, and a grouping or join must repartition first.
	keyChanged bool
}

// Stream reads topic as a KStream.
func Stream[K, V any](b *StreamsBuilder, topic string, c Consumed[K, V]) KStream[K, V] {
	name := b.name(c.Name, "KSTREAM-SOURCE")
	b.topo.AddSource(Source{Name: name, Topics: []string{topic}, Key: anySerde(c.Key), Value: anySerde(c.Value), TimestampExtractor: c.TimestampExtractor})
	return KStream[K, V]{b: b, node: name, key: c.Key, val: c.Value, topics: []string{topic}}
}

// derive is a stream of the same types downstream of a new node.
func (s KStream[K, V]) derive(node string) KStream[K, V] {
	s.node = node
	return s
}

// process adds a processor under the stream's node.
func (s KStream[K, V]) process(prefix string, f ProcessorFunc) string {
	name := s.b.name("", prefix)
	s.b.topo.AddProcessor(name, f.Supplier(), s.node)
	return name
}

// Filter keeps the records for which keep is true.
func (s KStream[K, V]) Filter(keep func(K, V) bool) KStream[K, V] {
	return s.derive(s.process("KSTREAM-FILTER", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "filter")
		if err != nil || !keep(k, v) {
			return err
		}
		return ctx.Forward(r)
	}))
}

// FilterNot drops the records for which drop is true.
func (s KStream[K, V]) FilterNot(drop func(K, V) bool) KStream[K, V] {
	return s.Filter(func(k K, v V) bool { return !drop(k, v) })
}

// Peek calls fn with every record and passes it on unchanged.
func (s KStream[K, V]) Peek(fn func(K, V)) KStream[K, V] {
	return s.derive(s.process("KSTREAM-PEEK", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "peek")
		if err != nil {
			return err
		}
		fn(k, v)
		return ctx.Forward(r)
	}))
}

// ForEach calls fn with every record; the stream ends there.
func (s KStream[K, V]) ForEach(fn func(K, V)) {
	s.process("KSTREAM-FOREACH", func(_ *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "foreach")
		if err == nil {
			fn(k, v)
		}
		return err
	})
}

// Merge is one stream of the records of both, in the order they are
// processed: no order between the two is promised.
func (s KStream[K, V]) Merge(other KStream[K, V]) KStream[K, V] {
	name := s.b.name("", "KSTREAM-MERGE")
	s.b.topo.AddProcessor(name, ProcessorFunc(func(ctx *ProcessorContext, r Record) error {
		return ctx.Forward(r)
	}).Supplier(), s.node, other.node)
	m := s.derive(name)
	m.topics = append(append([]string{}, s.topics...), other.topics...)
	m.keyChanged = s.keyChanged || other.keyChanged
	return m
}

// To writes the stream to topic, partitioned by key.
func (s KStream[K, V]) To(topic string, p Produced[K, V]) {
	key, val := orSerde(p.Key, s.key), orSerde(p.Value, s.val)
	s.b.topo.AddSink(Sink{Name: s.b.name(p.Name, "KSTREAM-SINK"), Topic: topic, Key: anySerde(key), Value: anySerde(val), Parents: []string{s.node}})
}

// MapValues changes each record's value; the key stays, and so does the
// partition: no repartition follows.
func MapValues[K, V, VR any](s KStream[K, V], fn func(K, V) VR) KStream[K, VR] {
	name := s.process("KSTREAM-MAPVALUES", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "mapValues")
		if err != nil {
			return err
		}
		r.Value = fn(k, v)
		return ctx.Forward(r)
	})
	return KStream[K, VR]{b: s.b, node: name, key: s.key, topics: s.topics, keyChanged: s.keyChanged}
}

// FlatMapValues makes any number of records of each, with its key.
func FlatMapValues[K, V, VR any](s KStream[K, V], fn func(K, V) []VR) KStream[K, VR] {
	name := s.process("KSTREAM-FLATMAPVALUES", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "flatMapValues")
		if err != nil {
			return err
		}
		for _, out := range fn(k, v) {
			r.Value = out
			if err := ctx.Forward(r); err != nil {
				return err
			}
		}
		return nil
	})
	return KStream[K, VR]{b: s.b, node: name, key: s.key, topics: s.topics, keyChanged: s.keyChanged}
}

// Map changes each record's key and value. The key changed: a grouping or
// a join downstream repartitions.
func Map[K, V, KR, VR any](s KStream[K, V], fn func(K, V) (KR, VR)) KStream[KR, VR] {
	name := s.process("KSTREAM-MAP", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "map")
		if err != nil {
			return err
		}
		r.Key, r.Value = fn(k, v)
		return ctx.Forward(r)
	})
	return KStream[KR, VR]{b: s.b, node: name, topics: s.topics, keyChanged: true}
}

// FlatMap makes any number of records, with new keys, of each.
func FlatMap[K, V, KR, VR any](s KStream[K, V], fn func(K, V) []KeyValue[KR, VR]) KStream[KR, VR] {
	name := s.process("KSTREAM-FLATMAP", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "flatMap")
		if err != nil {
			return err
		}
		for _, out := range fn(k, v) {
			r.Key, r.Value = out.Key, out.Value
			if err := ctx.Forward(r); err != nil {
				return err
			}
		}
		return nil
	})
	return KStream[KR, VR]{b: s.b, node: name, topics: s.topics, keyChanged: true}
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, KR any](s KStream[K, V], fn func(K, V) KR) KStream[KR, V] {
	name := s.process("KSTREAM-KEY-SELECT", func(ctx *ProcessorContext, r Record) error {
		k, v, err := kv[K, V](r, "selectKey")
		if err != nil {
			return err
		}
		r.Key = fn(k, v)
		return ctx.Forward(r)
	})
	return KStream[KR, V]{b: s.b, node: name, val: s.val, topics: s.topics, keyChanged: true}
}
