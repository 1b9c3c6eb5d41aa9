package streams

import (
	"bytes"
	"maps"
	"slices"
	"sync"
)

// KeyValueStore is a state store of bytes keys and values, as Kafka's
// KeyValueStore<Bytes, byte[]> under its typed layers: what processors
// keep between records. A task's stores are written by its own goroutine
// only; reads from elsewhere (interactive queries, the test driver) are
// safe.
type KeyValueStore interface {
	// Name is the store's name in the topology.
	Name() string
	// Get returns the value of key, nil if it has none.
	Get(key []byte) ([]byte, error)
	// Put sets key's value; a nil value deletes it, as in Kafka.
	Put(key, value []byte) error
	// Delete removes key.
	Delete(key []byte) error
	// All calls fn for every key, in byte order, until fn returns an
	// error.
	All(fn func(key, value []byte) error) error
	// Flush makes what was written durable, for a commit: a no-op in
	// memory.
	Flush() error
	// Close releases the store.
	Close() error
}

// memoryStore is a store in a map, lost when the process ends: restored
// from its changelog each time its task starts.
type memoryStore struct {
	name string
	mu   sync.RWMutex
	m    map[string][]byte
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(name string) KeyValueStore {
	return &memoryStore{name: name, m: map[string][]byte{}}
}

func (s *memoryStore) Name() string { return s.name }

func (s *memoryStore) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[string(key)], nil
}

func (s *memoryStore) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

func (s *memoryStore) Delete(key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, string(key))
	return nil
}

func (s *memoryStore) All(fn func(key, value []byte) error) error {
	s.mu.RLock()
	keys := slices.Sorted(maps.Keys(s.m))
	values := make([][]byte, len(keys))
	for i, k := range keys {
		values[i] = s.m[k]
	}
	s.mu.RUnlock()
	for i, k := range keys {
		if err := fn([]byte(k), values[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memoryStore) Flush() error { return nil }
func (s *memoryStore) Close() error { return nil }

// loggedStore writes every change of its store to the store's changelog
// topic, in the partition of its task, as Kafka's ChangeLoggingKeyValueBytesStore:
// a put is a record with the key and the new value, a delete a tombstone.
// The changelog is the store's backup: compacted, it holds the latest value
// of every key, and replaying it rebuilds the store anywhere.
type loggedStore struct {
	KeyValueStore
	task  *task
	topic string
}

func (s *loggedStore) Put(key, value []byte) error {
	if err := s.KeyValueStore.Put(key, value); err != nil {
		return err
	}
	return s.log(key, value)
}

func (s *loggedStore) Delete(key []byte) error {
	if err := s.KeyValueStore.Delete(key); err != nil {
		return err
	}
	return s.log(key, nil)
}

func (s *loggedStore) log(key, value []byte) error {
	return s.task.collector.send(s.topic, s.task.id.Partition, key, value, s.task.recordTime, nil)
}

// TypedStore is a KeyValueStore seen through serdes, as Kafka's
// MeteredKeyValueStore sits on the bytes store.
type TypedStore[K, V any] struct {
	Store KeyValueStore
	Key   Serde[K]
	Value Serde[V]
}

// Typed returns s seen as a store of K and V.
func Typed[K, V any](s KeyValueStore, key Serde[K], value Serde[V]) TypedStore[K, V] {
	return TypedStore[K, V]{Store: s, Key: key, Value: value}
}

// Get returns key's value, and false if it has none.
func (s TypedStore[K, V]) Get(key K) (V, bool, error) {
	var zero V
	k, err := s.Key.Serialize(s.Store.Name(), key)
	if err != nil {
		return zero, false, err
	}
	b, err := s.Store.Get(k)
	if err != nil || b == nil {
		return zero, false, err
	}
	v, err := s.Value.Deserialize(s.Store.Name(), b)
	return v, err == nil, err
}

// Put sets key's value.
func (s TypedStore[K, V]) Put(key K, value V) error {
	k, err := s.Key.Serialize(s.Store.Name(), key)
	if err != nil {
		return err
	}
	v, err := s.Value.Serialize(s.Store.Name(), value)
	if err != nil {
		return err
	}
	return s.Store.Put(k, v)
}

// Delete removes key.
func (s TypedStore[K, V]) Delete(key K) error {
	k, err := s.Key.Serialize(s.Store.Name(), key)
	if err != nil {
		return err
	}
	return s.Store.Delete(k)
}

// All calls fn for every entry, in the order of the keys' bytes.
func (s TypedStore[K, V]) All(fn func(key K, value V) error) error {
	return s.Store.All(func(kb, vb []byte) error {
		k, err := s.Key.Deserialize(s.Store.Name(), kb)
		if err != nil {
			return err
		}
		v, err := s.Value.Deserialize(s.Store.Name(), vb)
		if err != nil {
			return err
		}
		return fn(k, v)
	})
}
