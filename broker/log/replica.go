package log

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// This file is what replication needs of a log: a follower appends the
// leader's batches as they are, offsets and epochs included; a replica that
// diverged from its leader cuts its log back; a leader answers where each
// of its epochs ends; consumers read only up to the high watermark.

// AppendReplica appends batches copied from the partition's leader, as a
// follower does: their offsets and leader epochs are the leader's and are
// kept. A batch must start at or after the log end offset (compaction on
// the leader may leave gaps); a batch that overlaps the log is an error,
// since the follower asked for exactly what follows its log.
func (l *Log) AppendReplica(records []byte) error {
	var oneBatch [1][]byte
	var oneHeader [1]header
	batches, headers, err := l.checkBatches(oneBatch[:0], oneHeader[:0], records)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.unwritable != nil {
		return l.unwritable
	}
	// As in Append, the batches are written all or none (undo).
	start := l.appendStart(batches, headers)
	for i, b := range batches {
		h := headers[i]
		if end := l.active().nextOffset; h.baseOffset < end {
			return l.undo(start, fmt.Errorf("%w: a replicated batch at offset %d overlaps the log, which ends at %d",
				kerr.OffsetOutOfRange, h.baseOffset, end))
		}
		epoch := int32(binary.BigEndian.Uint32(b[offLeaderEpoch:]))
		if err := l.epochs.assign(epoch, h.baseOffset); err != nil {
			return l.undo(start, err)
		}
		if err := l.write(b, h); err != nil {
			return l.undo(start, err)
		}
	}
	return nil
}

// TruncateTo removes every record at offset and after, as a follower does
// where its log diverged from the leader's. Batches are removed whole: the
// batch holding offset goes with everything after it, so the log may end a
// little before offset. The leader epoch cache forgets epochs that started
// in the removed part, and the producer state is rebuilt from the newest
// snapshot below the new end.
func (l *Log) TruncateTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset >= l.active().nextOffset {
		return l.epochs.truncateFrom(offset) // epochs begun here, with no records yet
	}
	if offset <= l.segments[0].base {
		// Nothing before offset is kept: start over, empty, at offset.
		return l.restartAt(offset)
	}
	// Drop whole segments that start at or after offset.
	for l.active().base >= offset {
		last := l.active()
		l.segments = l.segments[:len(l.segments)-1]
		if err := last.remove(); err != nil {
			return err
		}
	}
	s := l.active()
	if err := s.indexes(); err != nil {
		return err
	}
	position, err := s.find(offset)
	if err != nil {
		return err
	}
	if err := truncate(s.file, position); err != nil {
		return err
	}
	s.size = position
	// Rebuild the indexes and the segment's end from what is left; the
	// segment may have been a sealed one, now active again.
	s.lazy = nil
	if _, err := s.recover(l.cfg.IndexIntervalBytes, true); err != nil {
		return err
	}
	if err := l.epochs.truncateFrom(s.nextOffset); err != nil {
		return err
	}
	// The start never passes the end, which may now be below it.
	if err := l.setStart(min(l.start, s.nextOffset)); err != nil {
		return err
	}
	// The producer state may describe batches that are gone.
	_, _, err = l.rebuildProducers()
	return err
}

// ResetTo empties the log and starts it again at offset: a follower does
// so when its leader no longer has the records that follow its log
// (retention deleted them), and must start again from the leader's log
// start offset. The producer state starts over empty: the producers it
// knew are unknown, and taken at any sequence (KIP-360).
func (l *Log) ResetTo(offset int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.restartAt(offset)
}

// restartAt removes every segment and starts the log empty at offset.
// The caller holds l.mu.
func (l *Log) restartAt(offset int64) error {
	// The snapshots go first: a crash after them and before the segments
	// costs a replay of the old log at the next Open, while a crash the
	// other way round would leave them beside an empty log they do not
	// describe.
	if err := l.producers.deleteSnapshots(); err != nil {
		return err
	}
	var err error
	for _, s := range l.segments {
		err = errors.Join(err, s.remove())
	}
	if err != nil {
		return err
	}
	s, err := openSegment(l.dir, offset)
	if err != nil {
		return err
	}
	l.segments = []*segment{s}
	if err := l.epochs.truncateFrom(offset); err != nil {
		return err
	}
	return l.setStart(offset)
}

// ReadBelow is Read for a consumer of a replicated partition: only batches
// that end before limit, the high watermark, are returned. Reading at or
// past limit, but not past the log end, returns nothing.
func (l *Log) ReadBelow(offset, maxBytes, limit int64) ([]byte, error) {
	if offset >= limit {
		if end := l.EndOffset(); offset > end || offset < l.StartOffset() {
			return nil, &OffsetOutOfRangeError{Offset: offset, Start: l.StartOffset(), End: end}
		}
		return nil, nil
	}
	b, err := l.Read(offset, maxBytes)
	if err != nil {
		return nil, err
	}
	end := 0
	for end+batchHeaderSize <= len(b) {
		h, err := readHeader(b[end:])
		if err != nil || h.lastOffset() >= limit {
			break
		}
		end += int(h.size)
	}
	return b[:end], nil
}

// LatestEpoch is the newest leader epoch the log has records (or a leader
// start) of, or -1.
func (l *Log) LatestEpoch() int32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.latest()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch (KIP-101, KIP-279): the
// largest epoch at or below epoch that the log has, and the offset where
// it ends (where the next epoch starts, or the log end offset for the
// latest). An epoch older than the log knows is (-1, -1).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.active().nextOffset)
}

// Epochs returns the leader epoch cache's entries, oldest first.
func (l *Log) Epochs() []EpochStart {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]EpochStart(nil), l.epochs.entries...)
}

// BeginEpoch records that leaderEpoch starts at the log end offset, as a
// new leader does before its first write, so that it can answer
// OffsetForLeaderEpoch for the epoch at once.
func (l *Log) BeginEpoch(leaderEpoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.epochs.assign(leaderEpoch, l.active().nextOffset)
}
