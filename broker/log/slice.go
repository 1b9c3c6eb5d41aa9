package log

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"

	"klab.dev/klab/broker/bufpool"
)

// Slice is a range of a segment file holding whole record batches, as
// Kafka's FileRecords.slice is: a Fetch response names it instead of
// carrying the bytes, and the connection's writer sends it from the file
// to the socket (sendfile(2)), so that the records never enter the
// broker's memory. It holds the file open, so that the segment may be
// closed, deleted or compacted away before the response is written: the
// bytes stay readable until Close. The zero Slice is empty; closing a
// Slice, or a copy of it, a second time does nothing.
type Slice struct {
	hold     *hold
	position int64
	size     int64
}

// hold is a Slice's claim on its file, let go of once.
type hold struct {
	file *sharedFile
	done atomic.Bool
}

// sharedFile is a segment's .log file with a count of who holds it open:
// the segment until it is closed, and every Slice of it until closed. The
// last to let go closes it. (Kafka's FileRecords share the segment's
// FileChannel the same way; a descriptor per Slice, dup(2), would cost two
// system calls each and could run a broker with many partitions out of
// descriptors.)
type sharedFile struct {
	f    *os.File
	refs atomic.Int64
}

func newSharedFile(f *os.File) *sharedFile {
	sf := &sharedFile{f: f}
	sf.refs.Store(1)
	return sf
}

// release lets go of one hold, and closes the file with the last.
func (sf *sharedFile) release() error {
	if sf.refs.Add(-1) == 0 {
		return sf.f.Close()
	}
	return nil
}

// Len is the size of the range in bytes.
func (s Slice) Len() int { return int(s.size) }

// File is the file the range is in, where it starts, and its size; nil if
// the Slice is empty. The file is the Slice's until Close.
func (s Slice) File() (f *os.File, position, size int64) {
	if s.hold == nil {
		return nil, 0, 0
	}
	return s.hold.file.f, s.position, s.size
}

// ReadAt reads len(b) bytes of the range from off, for a writer that cannot
// send from the file. A range that has become shorter than it was (the
// log was truncated since) is io.ErrUnexpectedEOF.
func (s Slice) ReadAt(b []byte, off int64) (int, error) {
	if len(b) == 0 && off == 0 {
		return 0, nil
	}
	if off < 0 || off+int64(len(b)) > s.size {
		return 0, fmt.Errorf("reading %d bytes at %d of a slice of %d: %w", len(b), off, s.size, io.ErrUnexpectedEOF)
	}
	n, err := s.hold.file.f.ReadAt(b, s.position+off)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Bytes reads the whole range into a buffer from bufpool.
func (s Slice) Bytes() ([]byte, error) {
	b := bufpool.Get(int(s.size))
	if _, err := s.ReadAt(b, 0); err != nil {
		bufpool.Put(b)
		return nil, err
	}
	return b, nil
}

// Close lets go of the file.
func (s Slice) Close() error {
	if s.hold == nil || !s.hold.done.CompareAndSwap(false, true) {
		return nil
	}
	return s.hold.file.release()
}

// Slice is Read without reading: the whole batches Read would return,
// as a range of the segment file that holds them.
func (l *Log) Slice(offset, maxBytes int64) (Slice, error) {
	return l.slice(offset, maxBytes, -1)
}

// SliceBelow is ReadBelow without reading: the whole batches it would
// return, which end before limit, as a range of the segment file.
func (l *Log) SliceBelow(offset, maxBytes, limit int64) (Slice, error) {
	if offset >= limit {
		if end := l.EndOffset(); offset > end || offset < l.StartOffset() {
			return Slice{}, &OffsetOutOfRangeError{Offset: offset, Start: l.StartOffset(), End: end}
		}
		return Slice{}, nil
	}
	return l.slice(offset, maxBytes, limit)
}

// slice finds the range as Read does and, with limit >= 0, cuts it before
// the first batch that reaches limit.
func (l *Log) slice(offset, maxBytes, limit int64) (Slice, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Slice{}, ErrClosed
	}
	start, end := l.start, l.active().nextOffset
	if offset < start || offset > end {
		return Slice{}, &OffsetOutOfRangeError{Offset: offset, Start: start, End: end}
	}
	if offset == end {
		// Nothing yet: a caught-up follower asks for this in every fetch,
		// for every partition it follows, busy or idle. Without this the
		// search would read batch headers to find there is nothing.
		return Slice{}, nil
	}
	s, position, err := l.locate(offset)
	if s == nil || err != nil {
		return Slice{}, err
	}
	size, err := s.slice(position, maxBytes)
	if err != nil {
		return Slice{}, err
	}
	if limit >= 0 {
		// Batches are appended whole and copied whole to followers, so
		// the high watermark is where a batch starts: the one find
		// returns for it is the first that must not be sent.
		stop, err := s.find(limit)
		if err != nil {
			return Slice{}, err
		}
		size = max(min(size, stop-position), 0)
	}
	if size == 0 {
		return Slice{}, nil
	}
	// Held under the log's lock: the segment cannot be closed between
	// finding the range and holding its file.
	s.shared.refs.Add(1)
	return Slice{hold: &hold{file: s.shared}, position: position, size: size}, nil
}

// slice returns how many bytes from position read would return: the
// first batch whatever its size, then the whole batches that fit in
// maxBytes. It reads only batch headers: the offset index points at a
// batch every index.interval.bytes, so the last whole batch is found from
// the last entry before the end, a few headers on.
func (s *segment) slice(position, maxBytes int64) (int64, error) {
	first, err := s.headerAt(position)
	if err != nil {
		return 0, err
	}
	end := position + min(max(maxBytes, first.size), s.size-position)
	if end == s.size {
		return end - position, nil // the segment ends with a whole batch
	}
	from := position + first.size
	entries := s.index.entries
	if i := sort.Search(len(entries), func(i int) bool { return int64(entries[i].position) > end }); i > 0 {
		from = max(from, int64(entries[i-1].position))
	}
	for from < end {
		h, err := s.headerAt(from)
		if err != nil {
			return 0, err
		}
		if from+h.size > end {
			break
		}
		from += h.size
	}
	return from - position, nil
}
