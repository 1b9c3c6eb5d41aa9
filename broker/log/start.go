package log

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The log start offset. Retention deletes whole segments, so its start is
// always a segment's base offset; DeleteRecords (KIP-107) moves the start
// to any offset, inside a segment as often as not. The records below the
// start that share a segment with records above it stay on disk until the
// whole segment is below the start, but are no longer the log's: reads
// below the start are OFFSET_OUT_OF_RANGE, and ListOffsets' earliest is
// the start.
//
// A start inside a segment cannot be read back from the segment files, so
// it is kept in a file of its own, as Kafka keeps it in
// log-start-offset-checkpoint (one file per log directory there; one per
// partition here, beside leader-epoch-checkpoint). The file is two lines:
// a version (0) and the offset. It is rewritten whole, atomically, each
// time the start moves other than by retention (which leaves it a segment
// base, where the segments say it anyway). Open takes the larger of the
// file's offset and the first segment's base.

// startFile is where a log keeps its start offset.
const startFile = "log-start-offset-checkpoint"

// startFileVersion is the first line of startFile.
const startFileVersion = 0

// loadStart reads the start offset a log kept in dir, or -1 if it kept
// none.
func loadStart(dir string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(dir, startFile))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	lines := strings.Fields(string(data))
	if len(lines) != 2 || lines[0] != strconv.Itoa(startFileVersion) {
		return -1, fmt.Errorf("%s: want a version (%d) and an offset, got %q", filepath.Join(dir, startFile), startFileVersion, data)
	}
	offset, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || offset < 0 {
		return -1, fmt.Errorf("%s: bad offset %q", filepath.Join(dir, startFile), lines[1])
	}
	return offset, nil
}

// saveStart keeps offset as the log's start. The caller holds l.mu.
func (l *Log) saveStart(offset int64) error {
	data := fmt.Sprintf("%d\n%d\n", startFileVersion, offset)
	return writeAtomic(filepath.Join(l.dir, startFile), []byte(data))
}

// setStart moves the start to offset, in either direction, and keeps it
// on disk first: a crash never leaves the log starting below records that
// DeleteRecords was told were deleted. The caller holds l.mu.
func (l *Log) setStart(offset int64) error {
	if offset == l.start {
		return nil
	}
	if err := l.saveStart(offset); err != nil {
		return err
	}
	l.start = offset
	return nil
}

// AdvanceStart moves the log start offset forward to offset, as
// DeleteRecords asks of a leader (and a follower does after it, to keep
// its leader's start): the records below offset are gone for readers at
// once, and every segment wholly below offset is deleted. An offset at or
// below the start changes nothing; one past the log end offset is
// OFFSET_OUT_OF_RANGE (the broker refuses one past the high watermark
// before asking).
//
// The producer state is kept as retention keeps it: the producers whose
// batches are deleted are still known, so that a retry of their last
// batch is still a duplicate and their next batch must still follow it in
// sequence (KAFKA-7190); only the snapshots below the first segment left
// go, the newest of them always kept.
func (l *Log) AdvanceStart(offset int64) error {
	if moved, err := l.moveStart(offset); err != nil || !moved {
		return err
	}
	// Retention and compaction read sealed segments without l.mu, trusting
	// that only they, under cleanMu, remove any. While a compaction pass
	// holds it, the segments below the start stay until the cleaner's next
	// retention pass deletes them (EnforceRetention): the caller, a
	// follower's fetcher say, does not wait for the pass.
	if !l.cleanMu.TryLock() {
		return nil
	}
	defer l.cleanMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.deleteOldest(l.segmentsBelowStart())
}

// moveStart moves the start forward to offset, and reports whether it
// moved.
func (l *Log) moveStart(offset int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch end := l.active().nextOffset; {
	case l.closed:
		return false, ErrClosed
	case offset > end:
		return false, &OffsetOutOfRangeError{Offset: offset, Start: l.start, End: end}
	case offset <= l.start:
		return false, nil
	}
	return true, l.setStart(offset)
}

// segmentsBelowStart counts the segments, from the oldest, whose every
// record is below the start; never the active one. The caller holds l.mu.
func (l *Log) segmentsBelowStart() int {
	n := 0
	for n < len(l.segments)-1 && l.segments[n+1].base <= l.start {
		n++
	}
	return n
}

// deleteOldest deletes the n oldest segments, and the producer snapshots
// below the first segment left, the newest of them always kept
// (deleteSnapshotsBelow). The caller holds l.mu, and cleanMu or is Open.
func (l *Log) deleteOldest(n int) error {
	if n == 0 {
		return nil
	}
	for _, s := range l.segments[:n] {
		if err := s.remove(); err != nil {
			return err
		}
	}
	l.segments = l.segments[n:]
	// A segment base needs no keeping in the start file: Open takes the
	// larger of the two.
	l.start = max(l.start, l.segments[0].base)
	return l.producers.deleteSnapshotsBelow(l.segments[0].base)
}

// openStart sets the start of a log Open has just read: the kept start or
// the first segment's base, whichever is larger. If the log now ends
// before it (a crash lost records DeleteRecords had already deleted
// past), the log starts over empty at the kept start, as Kafka's does.
// The caller is Open.
func (l *Log) openStart() error {
	kept, err := loadStart(l.dir)
	if err != nil {
		return err
	}
	l.start = max(kept, l.segments[0].base)
	if l.start > l.active().nextOffset {
		return l.restartAt(l.start)
	}
	return l.deleteOldest(l.segmentsBelowStart())
}
