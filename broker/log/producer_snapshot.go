package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Producer-state snapshots. Rebuilding the state by reading every batch of
// the log would make a restart cost as much as the log is large; so, as
// Kafka does, the log writes the state to a file when it rolls a segment,
// named after the new segment's base offset (00000000000000001234.snapshot:
// the state of every batch below offset 1234), and when it closes. Open
// loads the newest snapshot and replays only the batches after it: the
// active segment, which recovery reads anyway.
//
// The file: a version (int16, 1), the CRC-32C of the rest (uint32), the
// number of producers (int32), then for each its id (int64), epoch (int16),
// number of batches (int16) and each batch's first and last sequence
// (int32), first and last offset and timestamp (int64). A snapshot that
// fails its checks (CRC, version, lengths) is deleted, and an older one is
// used. Kafka's keeps only each producer's last batch; this one keeps the
// five, so that every retry is still recognised after a restart.

const (
	snapshotSuffix        = ".snapshot"
	snapshotVersion       = 1
	snapshotHeaderSize    = 2 + 4 + 4
	snapshotProducerSize  = 8 + 2 + 2
	snapshotBatchSize     = 4 + 4 + 8 + 8 + 8
	snapshotVersionOffset = 0
	snapshotCRCOffset     = 2
)

func snapshotPath(dir string, offset int64) string {
	return segmentPath(dir, offset, snapshotSuffix)
}

// snapshotOffsets lists the offsets of the snapshots in dir, in order.
func snapshotOffsets(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var offsets []int64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), snapshotSuffix)
		if !ok {
			continue
		}
		if offset, err := strconv.ParseInt(name, 10, 64); err == nil {
			offsets = append(offsets, offset)
		}
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	return offsets, nil
}

// snapshot writes the state, which covers every batch below offset.
func (s *producerState) snapshot(offset int64) error {
	b := make([]byte, snapshotHeaderSize, snapshotHeaderSize+len(s.producers)*(snapshotProducerSize+BatchesKept*snapshotBatchSize))
	binary.BigEndian.PutUint16(b[snapshotVersionOffset:], snapshotVersion)
	binary.BigEndian.PutUint32(b[snapshotCRCOffset+4:], uint32(len(s.producers)))
	for _, p := range s.list() {
		b = binary.BigEndian.AppendUint64(b, uint64(p.ID))
		b = binary.BigEndian.AppendUint16(b, uint16(p.Epoch))
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.Batches)))
		for _, m := range p.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSequence))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSequence))
			b = binary.BigEndian.AppendUint64(b, uint64(m.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
		}
	}
	binary.BigEndian.PutUint32(b[snapshotCRCOffset:], crc32.Checksum(b[snapshotCRCOffset+4:], castagnoli))
	return writeAtomic(snapshotPath(s.dir, offset), b)
}

// errDamagedSnapshot is the error of a snapshot file that fails its
// checks: unlike an error reading it, it will not pass.
var errDamagedSnapshot = errors.New("damaged producer snapshot")

// readSnapshot decodes a snapshot file.
func readSnapshot(path string) (map[int64]*Producer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(why string) error { return fmt.Errorf("%w %s: %s", errDamagedSnapshot, filepath.Base(path), why) }
	if len(b) < snapshotHeaderSize {
		return nil, bad("shorter than its header")
	}
	if v := binary.BigEndian.Uint16(b[snapshotVersionOffset:]); v != snapshotVersion {
		return nil, bad(fmt.Sprintf("version %d, want %d", v, snapshotVersion))
	}
	if got, want := crc32.Checksum(b[snapshotCRCOffset+4:], castagnoli), binary.BigEndian.Uint32(b[snapshotCRCOffset:]); got != want {
		return nil, bad("CRC mismatch")
	}
	n := int(binary.BigEndian.Uint32(b[snapshotCRCOffset+4:]))
	rest := b[snapshotHeaderSize:]
	producers := make(map[int64]*Producer, min(n, len(rest)/snapshotProducerSize))
	for range n {
		if len(rest) < snapshotProducerSize {
			return nil, bad("cut short")
		}
		p := &Producer{
			ID:    int64(binary.BigEndian.Uint64(rest)),
			Epoch: int16(binary.BigEndian.Uint16(rest[8:])),
		}
		batches := int(binary.BigEndian.Uint16(rest[10:]))
		rest = rest[snapshotProducerSize:]
		if batches == 0 || batches > BatchesKept || len(rest) < batches*snapshotBatchSize {
			return nil, bad(fmt.Sprintf("producer %d: %d batches", p.ID, batches))
		}
		for range batches {
			p.Batches = append(p.Batches, ProducerBatch{
				FirstSequence: int32(binary.BigEndian.Uint32(rest)),
				LastSequence:  int32(binary.BigEndian.Uint32(rest[4:])),
				FirstOffset:   int64(binary.BigEndian.Uint64(rest[8:])),
				LastOffset:    int64(binary.BigEndian.Uint64(rest[16:])),
				Timestamp:     int64(binary.BigEndian.Uint64(rest[24:])),
			})
			rest = rest[snapshotBatchSize:]
		}
		producers[p.ID] = p
	}
	if len(rest) != 0 {
		return nil, bad("trailing bytes")
	}
	return producers, nil
}

// load replaces the state with the newest good snapshot at or below limit,
// the log end offset, and returns its offset, or -1 when there is none (the
// state is then empty). Snapshots above limit describe records the log no
// longer has (recovery or a truncation cut them) and are deleted, as are
// snapshots that fail their checks, and a snapshot a crash left half
// written (.snapshot.tmp). An error reading a file is returned: it says
// nothing of the snapshot, which is kept.
func (s *producerState) load(limit int64) (int64, error) {
	tmp, err := filepath.Glob(filepath.Join(s.dir, "*"+snapshotSuffix+".tmp"))
	if err != nil {
		return -1, err
	}
	for _, path := range tmp {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return -1, err
		}
	}
	offsets, err := snapshotOffsets(s.dir)
	if err != nil {
		return -1, err
	}
	s.producers = map[int64]*Producer{}
	for i := len(offsets) - 1; i >= 0; i-- {
		path := snapshotPath(s.dir, offsets[i])
		if offsets[i] <= limit {
			producers, err := readSnapshot(path)
			if err == nil {
				s.producers = producers
				return offsets[i], nil
			}
			if !errors.Is(err, errDamagedSnapshot) {
				return -1, err
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return -1, err
		}
	}
	return -1, nil
}

// deleteSnapshotsBelow deletes the snapshots of offsets below offset, the
// new log start offset: a log never goes back before its start. The newest
// snapshot is kept whatever its offset: the state keeps the producers
// whose records retention deleted (KAFKA-7190), so that such a producer
// still continues its sequence and its retries are still recognised, and
// only a snapshot holds them (had the roll's snapshot of the first segment
// left not been written, a crash then, the newest would be below it).
func (s *producerState) deleteSnapshotsBelow(offset int64) error {
	offsets, err := snapshotOffsets(s.dir)
	if err != nil {
		return err
	}
	var errs error
	for i, o := range offsets {
		if o < offset && i < len(offsets)-1 {
			if err := os.Remove(snapshotPath(s.dir, o)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = errors.Join(errs, err)
			}
		}
	}
	return errs
}

// deleteSnapshotsAbove deletes the snapshots of offsets above offset, the
// log end offset after an append was undone: a roll during the append wrote
// them, and they describe batches the log does not have. Left, one would be
// taken at the next Open for the state of batches written since.
func (s *producerState) deleteSnapshotsAbove(offset int64) error {
	offsets, err := snapshotOffsets(s.dir)
	if err != nil {
		return err
	}
	var errs error
	for _, o := range offsets {
		if o > offset {
			if err := os.Remove(snapshotPath(s.dir, o)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = errors.Join(errs, err)
			}
		}
	}
	return errs
}

// deleteSnapshots deletes every snapshot, and forgets every producer: the
// log starts over empty.
func (s *producerState) deleteSnapshots() error {
	s.producers = map[int64]*Producer{}
	offsets, err := snapshotOffsets(s.dir)
	if err != nil {
		return err
	}
	var errs error
	for _, o := range offsets {
		if err := os.Remove(snapshotPath(s.dir, o)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = errors.Join(errs, err)
		}
	}
	return errs
}
