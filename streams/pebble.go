package streams

import (
	"errors"
	"log"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleStore is a persistent store: an embedded Pebble database (an LSM
// tree, Go's counterpart of the RocksDB that Kafka Streams embeds) in a
// directory of its own under state.dir. It survives a restart, so a task
// that finds its checkpoint restores only what the changelog got after it.
type pebbleStore struct {
	name string
	db   *pebble.DB
}

// OpenPersistentStore opens (or creates) the persistent store called name
// in dir.
func OpenPersistentStore(name, dir string) (KeyValueStore, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return nil, err
	}
	return &pebbleStore{name: name, db: db}, nil
}

func (s *pebbleStore) Name() string { return s.name }

func (s *pebbleStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// Writes go without a sync: Flush syncs them at each commit, before the
// checkpoint says they are there, as Kafka flushes RocksDB at a commit.
func (s *pebbleStore) Put(key, value []byte) error {
	if value == nil {
		return s.Delete(key)
	}
	return s.db.Set(key, value, pebble.NoSync)
}

func (s *pebbleStore) Delete(key []byte) error { return s.db.Delete(key, pebble.NoSync) }

func (s *pebbleStore) All(fn func(key, value []byte) error) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(append([]byte{}, it.Key()...), append([]byte{}, it.Value()...)); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *pebbleStore) Flush() error { return s.db.LogData(nil, pebble.Sync) }

func (s *pebbleStore) Close() error { return s.db.Close() }

// quietPebble keeps Pebble's informational lines ("Found 0 WALs") out of
// the application's output, and passes its errors on.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any) {}
func (quietPebble) Errorf(format string, args ...any) {
	pebbleLog(format, args...)
}
func (quietPebble) Fatalf(format string, args ...any) {
	pebbleLog(format, args...)
	panic(errorf("pebble: "+format, args...))
}

func pebbleLog(format string, args ...any) { log.Printf("streams: pebble: "+format, args...) }
