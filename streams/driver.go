package streams

import (
	"errors"
	"klab.dev/klab/consumer"
	"os"
	"path/filepath"
	"time"
)

// TestDriver runs a topology without a cluster, as Kafka's
// TopologyTestDriver does: records piped into its input topics are
// processed at once, one at a time, in one task per sub-topology (every
// topic has one partition, 0); what the sinks and the stores' changelogs
// write is kept, per topic, to be read back; a record written to a topic
// the topology reads itself (a repartition topic) is processed next, as
// the cluster would deliver it. Stream time follows the records' timestamps; wall-clock
// time moves only when AdvanceWallClockTime says.
type TestDriver struct {
	topo     *Topology
	appID    string
	tasks    map[int]*task // by sub-topology
	clock    time.Time
	stateDir string
	ownDir   bool

	outputs map[string][]TestRecord[[]byte, []byte] // by topic, unread
	offsets map[string]int64                        // the next offset of each topic
	queue   []queued                                // records for the topology's own sources
	closed  bool
}

type queued struct {
	topic      string
	key, value []byte
	ts         time.Time
	headers    []Header
	offset     int64 // -1 for an input record, which has none yet
}

// TestDriverOptions are a TestDriver's settings.
type TestDriverOptions struct {
	// ApplicationID is application.id, which names internal topics;
	// "test-driver" if empty.
	ApplicationID string
	// WallClock is where wall-clock time starts; zero is time.Now().
	WallClock time.Time
	// StateDir holds persistent stores; empty is a temporary directory,
	// removed by Close. A driver given the StateDir of a closed one finds
	// its persistent stores and their checkpoints, as an application
	// restarted on the same machine does.
	StateDir string
	// Changelogs are what the changelog topics hold when the driver
	// starts (by topic: ChangelogTopic(ApplicationID, store)), as a new
	// instance of the application would find them on the cluster: each
	// logged store is restored from its changelog before the first
	// record, from its checkpoint if it is persistent and has one, from
	// the start otherwise. Offsets must increase; they may have gaps, as a
	// compacted topic has.
	Changelogs map[string][]TestRecord[[]byte, []byte]
	// ChangelogEnds are the changelogs' end offsets when the restore
	// begins, by topic; missing, a changelog ends after its last record.
	// Records at or after its end were written after the restore began
	// (by an instance that still thinks it owns the task), and are not
	// the restore's.
	ChangelogEnds map[string]int64
}

// NewTestDriver starts t: makes its tasks, opens their stores, and
// initializes their processors.
func NewTestDriver(t *Topology, opts TestDriverOptions) (*TestDriver, error) {
	if t.Err() != nil {
		return nil, t.Err()
	}
	d := &TestDriver{
		topo:    t,
		appID:   opts.ApplicationID,
		tasks:   map[int]*task{},
		clock:   opts.WallClock,
		outputs: map[string][]TestRecord[[]byte, []byte]{},
		offsets: map[string]int64{},
	}
	if d.appID == "" {
		d.appID = "test-driver"
	}
	if d.clock.IsZero() {
		d.clock = time.Now()
	}
	d.stateDir = opts.StateDir
	if d.stateDir == "" {
		dir, err := os.MkdirTemp("", "klab-streams-test-driver-")
		if err != nil {
			return nil, err
		}
		d.stateDir, d.ownDir = dir, true
	}
	open := func(spec StoreSpec, id TaskID) (KeyValueStore, error) {
		topic := ChangelogTopic(d.appID, spec.Name)
		end, ok := opts.ChangelogEnds[topic]
		if !ok {
			end = -1
		}
		return d.openRestored(spec, id, opts.Changelogs[topic], end)
	}
	for _, sub := range t.subtopologies() {
		tk, err := newTask(t, d.appID, sub, 0, d, func() time.Time { return d.clock }, open)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.tasks[sub.id] = tk
	}
	return d, nil
}

// openRestored opens a task's store and restores it from changelog, as
// the application does when a task starts: a persistent store from its
// checkpoint, if it has one the changelog reaches; otherwise the store is
// rebuilt from the changelog's start.
func (d *TestDriver) openRestored(spec StoreSpec, id TaskID, changelog []TestRecord[[]byte, []byte], givenEnd int64) (KeyValueStore, error) {
	taskDir := filepath.Join(d.stateDir, d.appID, id.String())
	storeDir := filepath.Join(taskDir, spec.Name)
	topic := ChangelogTopic(d.appID, spec.Name)
	var next int64 // the offset after the last record given
	records := make([]consumer.Record, len(changelog))
	for i, r := range changelog {
		if r.Offset < next {
			return nil, errorf("changelog %s: offset %d after offset %d: offsets must increase", topic, r.Offset, next-1)
		}
		records[i] = consumer.Record{Topic: topic, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
		next = r.Offset + 1
	}
	end := next
	if givenEnd >= 0 {
		end = givenEnd
	}
	if !spec.LoggingDisabled {
		d.offsets[topic] = next // where the changelog's next record goes
	}
	if spec.InMemory {
		s := NewMemoryStore(spec.Name)
		if !spec.LoggingDisabled {
			if err := restoreAll(s, records, 0, end); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	var from int64
	if !spec.LoggingDisabled {
		var wipe bool
		var err error
		from, wipe, err = restoreFrom(taskDir, changelogPartition{Topic: topic, Partition: id.Partition}, end)
		if err != nil {
			return nil, err
		}
		if wipe {
			if err := os.RemoveAll(storeDir); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		return nil, err
	}
	s, err := OpenPersistentStore(spec.Name, storeDir)
	if err != nil || spec.LoggingDisabled {
		return s, err
	}
	if err := restoreAll(s, records, from, end); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// restoreAll restores store from records, all the changelog holds up to
// end, starting at offset from: having been given every record, the
// restore must be done.
func restoreAll(store KeyValueStore, records []consumer.Record, from, end int64) error {
	next, done, err := restoreRecords(store, records, from, end)
	if err == nil && (!done || next != end) {
		err = errorf("restoring %s: given the changelog up to its end offset %d, the restore stopped at offset %d", store.Name(), end, next)
	}
	return err
}

// send is the driver's collector: it keeps what is written, and queues
// what the topology reads itself.
func (d *TestDriver) send(topic string, partition int32, key, value []byte, ts time.Time, headers []Header) error {
	offset := d.offsets[topic]
	d.offsets[topic]++
	d.outputs[topic] = append(d.outputs[topic], TestRecord[[]byte, []byte]{
		Key: key, Value: value, Tombstone: value == nil, Timestamp: ts, Headers: headers, Offset: offset,
	})
	if _, ok := d.topo.subtopologyOf(d.appID, topic); ok {
		d.queue = append(d.queue, queued{topic: topic, key: key, value: value, ts: ts, headers: headers, offset: offset})
	}
	return nil
}

// Pipe processes one record read from topic, and then every record it
// led the topology to write to its own internal topics.
func (d *TestDriver) Pipe(topic string, key, value []byte, ts time.Time, headers ...Header) error {
	if d.closed {
		return errorf("test driver is closed")
	}
	if _, ok := d.topo.subtopologyOf(d.appID, topic); !ok {
		return errorf("the topology reads no topic %s", topic)
	}
	d.queue = append(d.queue, queued{topic: topic, key: key, value: value, ts: ts, headers: headers, offset: -1})
	for len(d.queue) > 0 {
		q := d.queue[0]
		d.queue = d.queue[1:]
		sub, _ := d.topo.subtopologyOf(d.appID, q.topic)
		// A record the topology wrote has its offset already; an input
		// record takes its topic's next one.
		offset := d.offsets[q.topic]
		if q.offset >= 0 {
			offset = q.offset
		} else {
			d.offsets[q.topic]++
		}
		meta := RecordMetadata{Topic: q.topic, Partition: 0, Offset: offset}
		if err := d.tasks[sub.id].processInput(meta, q.key, q.value, q.ts, q.headers); err != nil {
			d.queue = nil
			return err
		}
	}
	return nil
}

// AdvanceWallClockTime moves wall-clock time by by, and fires the
// wall-clock punctuations that became due.
func (d *TestDriver) AdvanceWallClockTime(by time.Duration) error {
	d.clock = d.clock.Add(by)
	for _, sub := range d.topo.subtopologies() {
		if err := d.tasks[sub.id].punctuate(WallClockTime, d.clock); err != nil {
			return err
		}
	}
	return nil
}

// Store returns the state store called name.
func (d *TestDriver) Store(name string) (KeyValueStore, error) {
	for _, t := range d.tasks {
		if s, ok := t.stores[name]; ok {
			return s, nil
		}
	}
	return nil, errorf("no state store %q in the topology", name)
}

// Dropped is how many records were dropped for a timestamp before 1970.
func (d *TestDriver) Dropped() int {
	n := 0
	for _, t := range d.tasks {
		n += t.dropped
	}
	return n
}

// StreamTime is the stream time of the task of sub-topology sub.
func (d *TestDriver) StreamTime(sub int) time.Time { return d.tasks[sub].streamTime }

// Close closes the tasks (processors, then stores), and removes the state
// directory the driver made.
func (d *TestDriver) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, t := range d.tasks {
		errs = append(errs, d.checkpoint(t), t.close())
	}
	if d.ownDir {
		errs = append(errs, os.RemoveAll(d.stateDir))
	}
	return errors.Join(errs...)
}

// checkpoint writes the checkpoint of t's persistent logged stores, as a
// clean shutdown of the application does: their changelogs' next offsets,
// which a restart restores from.
func (d *TestDriver) checkpoint(t *task) error {
	offsets := map[changelogPartition]int64{}
	for _, name := range t.sub.stores {
		spec := t.topo.store(name)
		if spec.InMemory || spec.LoggingDisabled {
			continue
		}
		if err := t.stores[name].Flush(); err != nil {
			return err
		}
		topic := ChangelogTopic(d.appID, name)
		offsets[changelogPartition{Topic: topic, Partition: t.id.Partition}] = d.offsets[topic]
	}
	if len(offsets) == 0 {
		return nil
	}
	return writeCheckpoint(filepath.Join(d.stateDir, d.appID, t.id.String()), offsets)
}

// read takes the unread records of topic.
func (d *TestDriver) read(topic string) []TestRecord[[]byte, []byte] {
	out := d.outputs[topic]
	d.outputs[topic] = nil
	return out
}

// TestRecord is a record a test pipes in or reads out.
type TestRecord[K, V any] struct {
	Key   K
	Value V
	// Tombstone says the record had no value (Value is V's zero value).
	Tombstone bool
	Timestamp time.Time
	Headers   []Header
	Offset    int64
}

// TestInputTopic pipes typed records into a driver's topic.
type TestInputTopic[K, V any] struct {
	d          *TestDriver
	topic      string
	key        Serde[K]
	value      Serde[V]
	lastOffset int64
}

// InputTopic returns topic of d, serializing with key and value.
func InputTopic[K, V any](d *TestDriver, topic string, key Serde[K], value Serde[V]) *TestInputTopic[K, V] {
	return &TestInputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// Pipe processes a record with key and value, with timestamp ts.
func (in *TestInputTopic[K, V]) Pipe(key K, value V, ts time.Time) error {
	k, err := in.key.Serialize(in.topic, key)
	if err != nil {
		return err
	}
	v, err := in.value.Serialize(in.topic, value)
	if err != nil {
		return err
	}
	return in.d.Pipe(in.topic, k, v, ts)
}

// PipeTombstone processes a record with key and no value.
func (in *TestInputTopic[K, V]) PipeTombstone(key K, ts time.Time) error {
	k, err := in.key.Serialize(in.topic, key)
	if err != nil {
		return err
	}
	return in.d.Pipe(in.topic, k, nil, ts)
}

// TestOutputTopic reads typed records a driver's topology wrote to a
// topic.
type TestOutputTopic[K, V any] struct {
	d     *TestDriver
	topic string
	key   Serde[K]
	value Serde[V]
}

// OutputTopic returns topic of d, deserializing with key and value.
func OutputTopic[K, V any](d *TestDriver, topic string, key Serde[K], value Serde[V]) *TestOutputTopic[K, V] {
	return &TestOutputTopic[K, V]{d: d, topic: topic, key: key, value: value}
}

// ReadRecords takes every record written to the topic since the last
// read, in the order written.
func (out *TestOutputTopic[K, V]) ReadRecords() ([]TestRecord[K, V], error) {
	var rs []TestRecord[K, V]
	for _, raw := range out.d.read(out.topic) {
		r := TestRecord[K, V]{Tombstone: raw.Tombstone, Timestamp: raw.Timestamp, Headers: raw.Headers, Offset: raw.Offset}
		var err error
		if raw.Key != nil {
			if r.Key, err = out.key.Deserialize(out.topic, raw.Key); err != nil {
				return rs, err
			}
		}
		if raw.Value != nil {
			if r.Value, err = out.value.Deserialize(out.topic, raw.Value); err != nil {
				return rs, err
			}
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// KeyValue is a key and its value.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// ReadKeyValues takes the records written since the last read as keys and
// values (a tombstone's value is V's zero value).
func (out *TestOutputTopic[K, V]) ReadKeyValues() ([]KeyValue[K, V], error) {
	rs, err := out.ReadRecords()
	kvs := make([]KeyValue[K, V], len(rs))
	for i, r := range rs {
		kvs[i] = KeyValue[K, V]{r.Key, r.Value}
	}
	return kvs, err
}
