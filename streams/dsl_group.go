package streams

// KGroupedStream is a stream grouped by key, to be aggregated into a table
// (Count, Reduce, Aggregate).
type KGroupedStream[K, V any] struct {
	s   KStream[K, V]
	key Serde[K]
	val Serde[V]
	// name names the repartition topic, if the grouping needs one.
	name string
}

// GroupByKey groups the stream by its key. If the key changed since the
// records were read, the aggregation that follows repartitions them first.
func (s KStream[K, V]) GroupByKey(g Grouped[K, V]) KGroupedStream[K, V] {
	return KGroupedStream[K, V]{s: s, key: orSerde(g.Key, s.key), val: orSerde(g.Value, s.val), name: g.Name}
}

// GroupBy groups the stream by a new key, computed from each record: it
// is SelectKey then GroupByKey, so a repartition always follows.
func GroupBy[K, V, KR any](s KStream[K, V], fn func(K, V) KR, g Grouped[KR, V]) KGroupedStream[KR, V] {
	return SelectKey(s, fn).GroupByKey(g)
}

//klab:lesson 12 begin repartition

// repartition returns s itself if its records are still in the partitions
// their keys hash to. If the key changed since they were read, it writes
// them to the repartition topic <application.id>-<name>-repartition,
// partitioned by their new key, and returns the stream read back from it,
// the start of a new sub-topology: then every record of a key reaches the
// same task, and its aggregate is kept in one place. A record without a
// key has no partition to go to, and is dropped before the topic, as Kafka
// drops it. The topic needs serdes for the new key and the value; the
// topology's error says so if they are missing.
func repartition[K, V any](s KStream[K, V], name string, key Serde[K], value Serde[V]) KStream[K, V] {
	if !s.keyChanged {
		return s
	}
	if !key.set() || !value.set() {
		s.b.topo.fail("%s: the key changed, so the records go through a repartition topic, which needs serdes for them: give Grouped (or Joined) a Key and a Value serde", name)
		return s
	}
	topic := name + "-repartition"
	s.b.topo.internal[topic] = true
	filter := name + "-repartition-filter"
	s.b.topo.AddProcessor(filter, ProcessorFunc(func(ctx *ProcessorContext, r Record) error {
		if noKey(r.Key) {
			return nil
		}
		return ctx.Forward(r)
	}).Supplier(), s.node)
	s.b.topo.AddSink(Sink{Name: name + "-repartition-sink", Topic: topic, Key: key, Value: value, Parents: []string{filter}})
	source := name + "-repartition-source"
	s.b.topo.AddSource(Source{Name: source, Topics: []string{topic}, Key: key, Value: value})
	return KStream[K, V]{b: s.b, node: source, key: key, val: value, topics: []string{topic}}
}

//klab:lesson 12 stub
// func repartition[K, V any](s KStream[K, V], name string, key Serde[K], value Serde[V]) KStream[K, V] {
// 	s.b.topo.fail("%v", lessons.Todo("12", "repartition"))
// 	return s
// }
//klab:lesson 12 end

// repartitionNumbered is repartition, numbered as Kafka numbers it: the
// three nodes of a repartition use up three of the builder's numbers,
// though they are named after their topic, so that the nodes after them
// get the numbers Kafka gives them (the word count of Kafka's tutorial
// ends in KTABLE-TOSTREAM-0000000007 and KSTREAM-SINK-0000000008).
func repartitionNumbered[K, V any](s KStream[K, V], name string, key Serde[K], value Serde[V]) KStream[K, V] {
	out := repartition(s, name, key, value)
	if out.node != s.node {
		s.b.index += 3
	}
	return out
}

// Count counts the records of each key: a table of the latest count of
// every key.
func (g KGroupedStream[K, V]) Count(m Materialized[K, int64]) KTable[K, int64] {
	if !m.Value.set() {
		m.Value = Int64
	}
	return aggregate(g, "KSTREAM-AGGREGATE", m, func(_ K, _ V, count int64, _ bool) int64 { return count + 1 })
}

// Reduce combines the values of each key: the first value is the key's
// aggregate, and each later one is combined with it by fn.
func (g KGroupedStream[K, V]) Reduce(fn func(aggregate, value V) V, m Materialized[K, V]) KTable[K, V] {
	m.Value = orSerde(m.Value, g.val)
	return aggregate(g, "KSTREAM-REDUCE", m, func(_ K, v V, agg V, found bool) V {
		if !found {
			return v
		}
		return fn(agg, v)
	})
}

// Aggregate folds the values of each key into an aggregate of another
// type, starting from init().
func Aggregate[K, V, VA any](g KGroupedStream[K, V], init func() VA, fn func(key K, value V, aggregate VA) VA, m Materialized[K, VA]) KTable[K, VA] {
	return aggregate(g, "KSTREAM-AGGREGATE", m, func(k K, v V, agg VA, found bool) VA {
		if !found {
			agg = init()
		}
		return fn(k, v, agg)
	})
}

// aggregate adds the processor of an aggregation, its store, and the
// repartition before it if the key changed. fold computes a key's new
// aggregate from a record and the current one (found false: there is
// none yet, and agg is VA's zero value).
func aggregate[K, V, VA any](g KGroupedStream[K, V], prefix string, m Materialized[K, VA], fold func(k K, v V, agg VA, found bool) VA) KTable[K, VA] {
	b := g.s.b
	// Numbered in Kafka's order: the store's generated name, then the
	// processor's, then the repartition's.
	store := m.Name
	if store == "" {
		store = b.name("", prefix+"-STATE-STORE")
	}
	name := b.name("", prefix)
	repartitionName := g.name
	if repartitionName == "" {
		repartitionName = store
	}
	s := repartitionNumbered(g.s, repartitionName, g.key, g.val)
	key := orSerde(m.Key, g.key)
	if !key.set() || !m.Value.set() {
		b.topo.fail("%s: store %s needs serdes for its keys and values: give Materialized (or Grouped) a Key and a Value serde", name, store)
	}
	b.topo.AddProcessor(name, func() Processor {
		return &aggregateProcessor[K, V, VA]{name: name, storeName: store, key: key, value: m.Value, fold: fold}
	}, s.node)
	b.topo.AddStateStore(StoreSpec{Name: store, InMemory: m.InMemory, LoggingDisabled: m.LoggingDisabled}, name)
	t := KTable[K, VA]{b: b, node: name, key: key, val: m.Value, topics: s.topics, store: store, stores: []string{store}}
	t.lookup = storeLookup(t)
	return t
}

// aggregateProcessor keeps the aggregate of every key in a store.
type aggregateProcessor[K, V, VA any] struct {
	name       string
	storeName  string
	key        Serde[K]
	value      Serde[VA]
	fold       func(k K, v V, agg VA, found bool) VA
	ctx        *ProcessorContext
	aggregates TypedStore[K, VA]
}

func (p *aggregateProcessor[K, V, VA]) Init(ctx *ProcessorContext) error {
	s, err := ctx.Store(p.storeName)
	p.ctx, p.aggregates = ctx, Typed(s, p.key, p.value)
	return err
}

func (p *aggregateProcessor[K, V, VA]) Close() error { return nil }

//klab:lesson 13 begin (*aggregateProcessor).Process

// Process folds r into the aggregate of its key: it reads the key's
// current aggregate from the store, folds the record into it, writes the
// new aggregate back (its changelog gets it too), and forwards it
// downstream, keyed as r: the table's update. A record without a key or
// without a value is skipped, as Kafka's aggregations skip them.
func (p *aggregateProcessor[K, V, VA]) Process(r Record) error {
	if noKey(r.Key) || r.Value == nil {
		return nil
	}
	k, v, err := kv[K, V](r, p.name)
	if err != nil {
		return err
	}
	agg, found, err := p.aggregates.Get(k)
	if err != nil {
		return err
	}
	agg = p.fold(k, v, agg, found)
	if err := p.aggregates.Put(k, agg); err != nil {
		return err
	}
	return p.ctx.Forward(Record{Key: r.Key, Value: agg, Timestamp: r.Timestamp, Headers: r.Headers})
}

//klab:lesson 13 stub
// func (p *aggregateProcessor[K, V, VA]) Process(r Record) error {
// 	return lessons.Todo("13", "(*aggregateProcessor).Process")
// }
//klab:lesson 13 end
