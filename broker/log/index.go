package log

import (
	"encoding/binary"
	"fmt"
	"os"
)

// offsetIndex is a segment's sparse offset index: every index.interval.bytes
// of batches it records one (offset, file position) pair, so that a read
// finds its batch with a binary search and a short scan instead of reading
// the segment from its start. On disk each entry is 8 bytes, as in Kafka's
// .index files: the offset relative to the segment's base offset, then the
// position, both big-endian uint32.
type offsetIndex struct {
	file    *os.File
	entries []indexEntry
	written int // entries already in the file
}

type indexEntry struct {
	relOffset uint32
	position  uint32
}

const indexEntrySize = 8

// add records an entry for the batch that starts at position. It reaches
// the file at the next flush: the active segment's index is rebuilt by
// recovery anyway, so it is written when the segment is sealed, as Kafka
// flushes its memory-mapped indexes when it rolls a segment.
func (x *offsetIndex) add(relOffset uint32, position int64) {
	x.entries = append(x.entries, indexEntry{relOffset, uint32(position)})
}

// flush writes the entries not yet in the file.
func (x *offsetIndex) flush() error {
	b := make([]byte, 0, (len(x.entries)-x.written)*indexEntrySize)
	for _, e := range x.entries[x.written:] {
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
		b = binary.BigEndian.AppendUint32(b, e.position)
	}
	if _, err := x.file.Write(b); err != nil {
		return err
	}
	x.written = len(x.entries)
	return nil
}

// load reads the index file and checks it against the segment: entries must
// grow and point inside the segment. A damaged index is not trusted; the
// caller rebuilds it from the segment.
func (x *offsetIndex) load(segmentSize int64) error {
	b, err := readAll(x.file)
	if err != nil {
		return err
	}
	if len(b)%indexEntrySize != 0 {
		return fmt.Errorf("index %s: %d bytes is not a whole number of entries", x.file.Name(), len(b))
	}
	x.entries = x.entries[:0]
	for i := 0; i < len(b); i += indexEntrySize {
		e := indexEntry{binary.BigEndian.Uint32(b[i:]), binary.BigEndian.Uint32(b[i+4:])}
		if n := len(x.entries); n > 0 && (e.relOffset <= x.entries[n-1].relOffset || e.position <= x.entries[n-1].position) {
			return fmt.Errorf("index %s: entry %d goes backwards", x.file.Name(), n)
		}
		if int64(e.position) >= segmentSize {
			return fmt.Errorf("index %s: entry points past the segment's end", x.file.Name())
		}
		x.entries = append(x.entries, e)
	}
	x.written = len(x.entries)
	return nil
}

// reset empties the index, on disk too, before a rebuild.
func (x *offsetIndex) reset() error {
	x.entries, x.written = x.entries[:0], 0
	return truncate(x.file, 0)
}

// timeIndex maps timestamps to offsets, as Kafka's .timeindex does: an
// entry (largest timestamp so far, offset of the batch that has it) is
// written whenever the offset index gets one and the largest timestamp has
// grown, and once more when the segment is sealed. Its last entry is the
// segment's largest timestamp, which retention.ms compares with the clock.
type timeIndex struct {
	file    *os.File
	entries []timeEntry
	written int // entries already in the file
}

type timeEntry struct {
	timestamp int64
	relOffset uint32
}

const timeEntrySize = 12

// add records an entry if ts is newer than the last one; like the offset
// index's, it reaches the file at the next flush.
func (x *timeIndex) add(ts int64, relOffset uint32) {
	if n := len(x.entries); n > 0 && ts <= x.entries[n-1].timestamp {
		return
	}
	x.entries = append(x.entries, timeEntry{ts, relOffset})
}

// flush writes the entries not yet in the file.
func (x *timeIndex) flush() error {
	b := make([]byte, 0, (len(x.entries)-x.written)*timeEntrySize)
	for _, e := range x.entries[x.written:] {
		b = binary.BigEndian.AppendUint64(b, uint64(e.timestamp))
		b = binary.BigEndian.AppendUint32(b, e.relOffset)
	}
	if _, err := x.file.Write(b); err != nil {
		return err
	}
	x.written = len(x.entries)
	return nil
}

// last returns the largest timestamp recorded, or -1 for none.
func (x *timeIndex) last() int64 {
	if len(x.entries) == 0 {
		return -1
	}
	return x.entries[len(x.entries)-1].timestamp
}

func (x *timeIndex) load() error {
	b, err := readAll(x.file)
	if err != nil {
		return err
	}
	if len(b)%timeEntrySize != 0 {
		return fmt.Errorf("time index %s: %d bytes is not a whole number of entries", x.file.Name(), len(b))
	}
	x.entries = x.entries[:0]
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{int64(binary.BigEndian.Uint64(b[i:])), binary.BigEndian.Uint32(b[i+8:])}
		if n := len(x.entries); n > 0 && e.timestamp <= x.entries[n-1].timestamp {
			return fmt.Errorf("time index %s: entry %d goes backwards", x.file.Name(), n)
		}
		x.entries = append(x.entries, e)
	}
	x.written = len(x.entries)
	return nil
}

func (x *timeIndex) reset() error {
	x.entries, x.written = x.entries[:0], 0
	return truncate(x.file, 0)
}

// readAll reads a whole file from its start and leaves the write position at
// its end, where appends go.
func readAll(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, err
	}
	_, err = f.Seek(0, 2)
	return b, err
}

// truncate cuts f to size and moves its write position there.
func truncate(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	_, err := f.Seek(size, 0)
	return err
}
