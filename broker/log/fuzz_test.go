package log_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"klab.dev/klab/broker/log"
)

// FuzzBatch feeds arbitrary bytes to the batch decoder and to Append. Neither
// may panic; a batch that Append accepts must read back byte for byte, with
// only the base offset changed to the one the log assigned.
func FuzzBatch(f *testing.F) {
	ts := time.UnixMilli(1_700_000_000_000)
	f.Add(log.EncodeBatch(log.Record{Timestamp: ts, Key: []byte("k"), Value: []byte("v")}))
	f.Add(log.EncodeBatch(log.Record{Timestamp: ts}, log.Record{Timestamp: ts.Add(time.Hour), Value: []byte("x")}))
	f.Add([]byte{})
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = log.DecodeRecords(data)

		n++
		l, err := log.Open(filepath.Join(dir, fmt.Sprint(n)), log.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { l.Close(); os.RemoveAll(l.Dir()) }()
		in := bytes.Clone(data)
		base, err := l.Append(in)
		if err != nil {
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatalf("a refused batch changed the log: end offset %d, size %d", l.EndOffset(), l.Size())
			}
			return
		}
		got, err := l.Read(base, 1<<30)
		if err != nil {
			t.Fatalf("reading back an accepted batch: %v", err)
		}
		want := bytes.Clone(data)
		binary.BigEndian.PutUint64(want, uint64(base))
		if !bytes.Equal(got, want) {
			t.Fatalf("accepted batch read back changed:\n got %x\nwant %x", got, want)
		}
	})
}

// FuzzRecoveryCorruptTail damages the last segment of a closed log (flips a
// byte, cuts the file, or appends garbage) and reopens it. Recovery must
// keep every batch that lies wholly before the damage, byte for byte.
func FuzzRecoveryCorruptTail(f *testing.F) {
	f.Add(uint8(0), uint32(0), uint8(1))     // flip the first byte: the first batch's base offset
	f.Add(uint8(0), uint32(17), uint8(0x80)) // a CRC byte
	f.Add(uint8(0), uint32(9999), uint8(7))  // somewhere in the middle
	f.Add(uint8(1), uint32(5000), uint8(0))  // cut the file
	f.Add(uint8(2), uint32(0), uint8(61))    // garbage after the last batch
	f.Fuzz(func(t *testing.T, op uint8, at uint32, b uint8) {
		dir := t.TempDir()
		cfg := log.Config{SegmentBytes: 16 << 10, IndexIntervalBytes: 512}
		l, err := log.Open(dir, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ts := time.UnixMilli(1_700_000_000_000)
		var batches [][]byte // as stored, base offsets set
		for i := range 40 {
			recs := make([]log.Record, 1+i%3)
			for j := range recs {
				recs[j] = log.Record{Timestamp: ts, Key: []byte(fmt.Sprint(i)), Value: bytes.Repeat([]byte{byte(i)}, 100+i*10)}
			}
			batch := log.EncodeBatch(recs...)
			if _, err := l.Append(batch); err != nil {
				t.Fatal(err)
			}
			batches = append(batches, batch)
		}
		end := l.EndOffset()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}

		// Find the last segment and the batches in it.
		names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		last := names[len(names)-1]
		var lastBase int64
		fmt.Sscanf(filepath.Base(last), "%d.log", &lastBase)
		data, err := os.ReadFile(last)
		if err != nil {
			t.Fatal(err)
		}
		var inLast [][]byte
		for _, batch := range batches {
			if int64(binary.BigEndian.Uint64(batch)) >= lastBase {
				inLast = append(inLast, batch)
			}
		}

		// Damage it at position p; every batch ending at or before p is safe.
		p := int64(at) % int64(len(data)+1)
		switch op % 3 {
		case 0:
			if p == int64(len(data)) {
				p--
			}
			data[p] ^= b | 1
		case 1:
			data = data[:p]
		case 2:
			p = int64(len(data))
			data = append(data, bytes.Repeat([]byte{b}, int(at%200))...)
		}
		if err := os.WriteFile(last, data, 0o644); err != nil {
			t.Fatal(err)
		}

		l, err = log.Open(dir, cfg)
		if err != nil {
			t.Fatalf("reopening after damage at %d: %v", p, err)
		}
		defer l.Close()
		if l.EndOffset() > end {
			t.Fatalf("end offset grew from %d to %d", end, l.EndOffset())
		}
		var position int64
		for _, want := range inLast {
			position += int64(len(want))
			if position > p {
				break
			}
			base := int64(binary.BigEndian.Uint64(want))
			got, err := l.Read(base, 1)
			if err != nil {
				t.Fatalf("batch at offset %d, before the damage at byte %d, is lost: %v", base, p, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("batch at offset %d, before the damage at byte %d, changed", base, p)
			}
		}
	})
}
