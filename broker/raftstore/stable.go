package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// ErrKeyNotFound is returned by Get and GetUint64 for a key that was never
// set. Its message must be exactly "not found": raft does not use errors.Is
// here but compares err.Error() with "not found" (the error raft-boltdb
// returns) to tell a fresh node, which has no term or vote yet, from a
// failing store.
var ErrKeyNotFound = errors.New("not found")

// loadStable reads the stable file in dir. A missing file means nothing has
// been set yet.
//
// Unlike a torn log tail, a damaged stable file is not repaired: it is only
// ever replaced by an atomic rename, so damage means something outside this
// package went wrong, and guessing the term or vote could let this node vote
// twice in one term. Open fails instead.
func loadStable(dir string) (map[string][]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, stableFileName))
	if errors.Is(err, os.ErrNotExist) {
		return make(map[string][]byte), nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: reading stable file: %w", err)
	}
	payload, n, ok := readRecord(data)
	if !ok || n != len(data) {
		return nil, errors.New("raftstore: stable file is corrupt")
	}
	kv, err := decodeStablePayload(payload)
	if err != nil {
		return nil, fmt.Errorf("raftstore: stable file: %w", err)
	}
	return kv, nil
}

// Set stores val under key and returns once it is on disk. Part of
// raft.StableStore.
func (s *Store) Set(key []byte, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return ErrClosed
	}
	// Build the new set of values on the side and only adopt it once the
	// file has been replaced, so memory never claims more than the disk
	// holds.
	next := maps.Clone(s.stable)
	next[string(key)] = slices.Clone(val)
	data := appendRecord(nil, appendStablePayload(nil, next))
	if err := replaceFile(s.dir, stableFileName, data); err != nil {
		return err
	}
	s.stable = next
	return nil
}

// Get returns the value stored under key, or ErrKeyNotFound. Part of
// raft.StableStore.
func (s *Store) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return nil, ErrClosed
	}
	val, ok := s.stable[string(key)]
	if !ok {
		return nil, ErrKeyNotFound
	}
	// A copy, so the caller cannot change the stored value. Appending to an
	// empty non-nil slice also means a key that is set never comes back as
	// nil, even when its value is empty: raft tests the vote candidate
	// against nil.
	return append([]byte{}, val...), nil
}

// SetUint64 stores val under key as 8 big-endian bytes, the same encoding
// raft-boltdb uses. Part of raft.StableStore.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the number stored under key by SetUint64. For a key that
// was never set it returns 0 and ErrKeyNotFound, as raft-boltdb does; raft
// accepts that error as "no value yet" and carries on with 0. Part of
// raft.StableStore.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftstore: value of key %q is %d bytes, not a uint64", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}
