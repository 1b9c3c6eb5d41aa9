// Package raftstore is a durable, file-backed raft.LogStore and
// raft.StableStore for github.com/hashicorp/raft.
//
// The cluster's metadata log is small: at most a few thousand entries sit
// between two snapshots. So this store picks the simplest design that is
// obviously correct over one that is fast:
//
//   - All log entries are kept in memory, in a slice ordered by index.
//   - Every StoreLogs appends the new entries to the file "log" as
//     checksummed records and fsyncs before returning, because raft treats
//     an entry as durable as soon as StoreLogs returns.
//   - DeleteRange rewrites the whole log file: a temporary file is written
//     and fsynced, then renamed over "log", so a crash leaves either the old
//     file or the new one, never a mix.
//   - The stable values (current term, last vote) live in the file "stable",
//     rewritten the same atomic way on every Set.
//   - Open reads both files back. A crash in the middle of an append leaves a
//     torn record at the end of "log"; Open cuts it off and keeps everything
//     before it.
//
// The usual alternative, raft-boltdb, cannot be used here: its go-metrics
// dependency conflicts with the version memberlist needs.
package raftstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/hashicorp/raft"
)

// File names inside a store directory.
const (
	logFileName    = "log"
	stableFileName = "stable"
	// tmpSuffix marks the temporary file a rewrite builds before renaming
	// it over the real one.
	tmpSuffix = ".tmp"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("raftstore: store is closed")

// The compiler checks that Store provides what raft needs.
var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.StableStore       = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
)

// Store keeps a raft node's log entries and its stable values (current term,
// vote) in one directory. It is safe for concurrent use. Only one Store may
// have a directory open at a time.
type Store struct {
	// mu guards every field below. One lock for everything is plenty: raft
	// calls the store from a handful of goroutines and each call is short.
	mu sync.Mutex

	dir string

	// logFile is "log", opened for appending. It is nil once the store is
	// closed.
	logFile *os.File

	// entries holds every log entry, FirstIndex first, with no gaps:
	// entries[i].Index == entries[0].Index + i. The slice only ever reflects
	// what is already durable on disk.
	entries []raft.Log

	// broken is set when writing to the log file failed in a way that may
	// have left the file different from entries (half an append on disk, or
	// a rename we cannot be sure reached the disk). Appending after that
	// could bury good records behind garbage, so further writes are refused
	// with this error. Reopening the store repairs the file.
	broken error

	// stable holds the stable key/value pairs, exactly as in "stable".
	stable map[string][]byte
}

// Open opens the store in dir, creating the directory if needed, and loads
// the log entries and stable values found there. A torn or corrupt record at
// the end of the log file (what a crash in the middle of an append leaves) is
// cut off; every entry before it is kept.
//
// A record that passes its checksum but makes no sense (an index that does
// not follow the previous one, say) is not what a crash produces, so Open
// returns an error rather than silently dropping data.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("raftstore: creating directory: %w", err)
	}
	// A temporary file can only be left behind by a rewrite that crashed
	// before its rename, in which case the file it was meant to replace is
	// still intact. The leftover is of no use, so drop it.
	for _, name := range []string{logFileName, stableFileName} {
		err := os.Remove(filepath.Join(dir, name+tmpSuffix))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("raftstore: removing leftover temporary file: %w", err)
		}
	}

	stable, err := loadStable(dir)
	if err != nil {
		return nil, err
	}
	logFile, entries, err := openLog(dir)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, logFile: logFile, entries: entries, stable: stable}, nil
}

// openLog opens the log file for appending (creating it if needed), reads
// every complete record, and truncates a torn tail.
func openLog(dir string) (*os.File, []raft.Log, error) {
	// O_APPEND makes every write land at the current end of the file, so
	// after a truncation there is no file offset to keep in step.
	f, err := os.OpenFile(filepath.Join(dir, logFileName), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("raftstore: opening log file: %w", err)
	}
	// The log is small enough to read in one go.
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("raftstore: reading log file: %w", err)
	}
	entries, good, err := parseLog(data)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if good < len(data) {
		// Cut the torn tail off now: a later append must come straight
		// after the last good record, or the next Open would stop at the
		// garbage in between and lose everything appended after it.
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("raftstore: truncating torn log tail: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("raftstore: syncing truncated log: %w", err)
		}
	}
	// The file may have just been created. Its directory entry is only
	// durable once the directory itself is synced.
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, entries, nil
}

// parseLog decodes the records in data. It returns the entries and the
// number of bytes they occupy; any bytes after that are a torn tail.
func parseLog(data []byte) ([]raft.Log, int, error) {
	var entries []raft.Log
	off := 0
	for off < len(data) {
		payload, n, ok := readRecord(data[off:])
		if !ok {
			break // torn or corrupt tail: keep what we have so far
		}
		l, err := decodeLogPayload(payload)
		if err != nil {
			return nil, 0, fmt.Errorf("raftstore: log record at offset %d: %w", off, err)
		}
		var prev uint64
		if len(entries) > 0 {
			prev = entries[len(entries)-1].Index
		}
		if err := checkNext(prev, l.Index); err != nil {
			return nil, 0, fmt.Errorf("raftstore: log record at offset %d: %w", off, err)
		}
		entries = append(entries, l)
		off += n
	}
	return entries, off, nil
}

// checkNext reports whether an entry with the given index may follow the
// entry at index prev, where prev 0 means there is no previous entry. Raft
// never leaves gaps, so index must be prev+1. With no previous entry any
// index but 0 is fine: after a snapshot has replaced the whole log, the next
// entry carries on from the snapshot's index.
func checkNext(prev, index uint64) error {
	if index == 0 {
		// Raft numbers entries from 1; FirstIndex and LastIndex use 0 to
		// mean "no entries".
		return errors.New("log index 0 is not valid")
	}
	if prev != 0 && index != prev+1 {
		return fmt.Errorf("log index %d does not follow the last index %d", index, prev)
	}
	return nil
}

// lastIndex returns the index of the last entry, or 0 if there are none.
// The caller must hold s.mu.
func (s *Store) lastIndex() uint64 {
	if len(s.entries) == 0 {
		return 0
	}
	return s.entries[len(s.entries)-1].Index
}

// Close closes the store. Everything written has already been synced, so
// nothing is lost by not calling it; it releases the open file. Calling Close
// again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return nil
	}
	err := s.logFile.Close()
	s.logFile = nil
	return err
}

// IsMonotonic reports true: this store refuses gaps between indexes (see
// StoreLogs). It is raft's optional raft.MonotonicLogStore interface, and
// saying true makes raft delete the whole log after installing a snapshot,
// rather than leave the old entries in place and append the entries that
// follow the snapshot after a gap.
func (s *Store) IsMonotonic() bool {
	return true
}

// FirstIndex returns the index of the first log entry, or 0 if there are
// none. Part of raft.LogStore.
func (s *Store) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return 0, ErrClosed
	}
	if len(s.entries) == 0 {
		return 0, nil
	}
	return s.entries[0].Index, nil
}

// LastIndex returns the index of the last log entry, or 0 if there are none.
// Part of raft.LogStore.
func (s *Store) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return 0, ErrClosed
	}
	return s.lastIndex(), nil
}

// GetLog copies the entry at index into log, or returns raft.ErrLogNotFound
// if the store does not hold it. Part of raft.LogStore.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logFile == nil {
		return ErrClosed
	}
	if len(s.entries) == 0 || index < s.entries[0].Index || index > s.entries[len(s.entries)-1].Index {
		return raft.ErrLogNotFound
	}
	// No gaps, so the position in the slice follows from the index.
	*log = cloneLog(&s.entries[index-s.entries[0].Index])
	return nil
}

// StoreLog stores one entry. Part of raft.LogStore.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs appends entries to the log and returns once they are on disk.
// The first must carry the index after LastIndex (any index, if the store is
// empty) and the rest must follow on without gaps; raft always stores entries
// that way, so anything else is a bug and is refused. Part of raft.LogStore.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if len(logs) == 0 {
		return nil
	}

	// Check and encode everything before writing anything, so a bad entry
	// in the middle of the batch does not leave half the batch on disk.
	prev := s.lastIndex()
	var buf []byte
	for _, l := range logs {
		if err := checkNext(prev, l.Index); err != nil {
			return fmt.Errorf("raftstore: StoreLogs: %w", err)
		}
		prev = l.Index
		payload, err := appendLogPayload(nil, l)
		if err != nil {
			return err
		}
		buf = appendRecord(buf, payload)
	}

	// One write for the whole batch, then fsync: raft counts the entries as
	// durable the moment we return. If the crash comes first, Open finds a
	// torn tail and cuts it off, which is safe: raft never acknowledged
	// those entries to anyone.
	if _, err := s.logFile.Write(buf); err != nil {
		s.broken = fmt.Errorf("raftstore: appending to log: %w", err)
		return s.broken
	}
	if err := s.logFile.Sync(); err != nil {
		s.broken = fmt.Errorf("raftstore: syncing log: %w", err)
		return s.broken
	}
	// Only now, with the entries on disk, do they become visible.
	for _, l := range logs {
		s.entries = append(s.entries, cloneLog(l))
	}
	return nil
}

// DeleteRange deletes the entries from min to max, inclusive. Raft deletes
// either a prefix (after a snapshot has made old entries redundant) or a
// suffix (entries that conflict with the leader's log), and those are the two
// cases supported; a range strictly inside the log would leave a gap, so it
// is refused. Indexes outside the log are ignored: deleting 1..10 from a log
// holding 5..20 deletes 5..10. Part of raft.LogStore.
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	if len(s.entries) == 0 || min > max {
		return nil
	}
	first := s.entries[0].Index
	last := s.entries[len(s.entries)-1].Index
	if max < first || min > last {
		return nil // nothing stored in that range
	}

	var keep []raft.Log
	switch {
	case min <= first && max >= last:
		keep = nil // everything goes
	case min <= first:
		keep = s.entries[max-first+1:] // a prefix goes
	case max >= last:
		keep = s.entries[:min-first] // a suffix goes
	default:
		return fmt.Errorf("raftstore: DeleteRange(%d, %d) is inside the log %d..%d and would leave a gap", min, max, first, last)
	}
	// Copy, so the new slice does not pin the old, longer backing array.
	keep = slices.Clone(keep)

	var buf []byte
	for i := range keep {
		payload, err := appendLogPayload(nil, &keep[i])
		if err != nil {
			return err
		}
		buf = appendRecord(buf, payload)
	}
	// From here on a failure may leave the file on disk different from
	// s.entries (the rename may or may not have happened), so any error
	// marks the store broken until it is reopened.
	if err := replaceFile(s.dir, logFileName, buf); err != nil {
		s.broken = err
		return err
	}
	// logFile still points at the old, now unlinked, file. Appends must go
	// to the new one.
	f, err := os.OpenFile(filepath.Join(s.dir, logFileName), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		s.broken = fmt.Errorf("raftstore: reopening log after rewrite: %w", err)
		return s.broken
	}
	// Every write to the old file was synced already, so an error from
	// closing it changes nothing.
	s.logFile.Close()
	s.logFile = f
	s.entries = keep
	return nil
}

// writable returns an error if the log may not be written to.
func (s *Store) writable() error {
	if s.logFile == nil {
		return ErrClosed
	}
	if s.broken != nil {
		return fmt.Errorf("raftstore: log needs repair after an earlier error, reopen the store: %w", s.broken)
	}
	return nil
}

// cloneLog returns a copy of l that shares no memory with it, so neither the
// caller nor the store can change the other's entry by writing into Data or
// Extensions.
func cloneLog(l *raft.Log) raft.Log {
	c := *l
	c.Data = slices.Clone(l.Data)
	c.Extensions = slices.Clone(l.Extensions)
	return c
}

// replaceFile atomically replaces dir/name with data: it writes a temporary
// file, fsyncs it, renames it over name, and fsyncs the directory. Rename
// within a directory is atomic, so after a crash the file holds either all of
// the old contents or all of the new; the directory fsync makes the rename
// itself durable.
func replaceFile(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+tmpSuffix)
	if err := writeAndSync(tmp, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("raftstore: replacing %s: %w", name, err)
	}
	return syncDir(dir)
}

// writeAndSync creates (or truncates) path, writes data to it, and fsyncs it.
func writeAndSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("raftstore: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("raftstore: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("raftstore: %w", err)
	}
	return nil
}

// syncDir fsyncs a directory, which makes file creations and renames in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("raftstore: opening directory to sync: %w", err)
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("raftstore: syncing directory: %w", err)
	}
	return nil
}
