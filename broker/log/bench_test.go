package log_test

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// batch1KiB is a one-record batch of exactly 1 KiB, the size the benchmarks use.
func batch1KiB(tb testing.TB) []byte {
	for value := 1024 - 70; ; value++ {
		b := log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: make([]byte, value)})
		if len(b) == 1024 {
			return b
		}
		if len(b) > 1024 {
			tb.Fatalf("no value size gives a 1 KiB batch")
		}
	}
}

// BenchmarkAppend1KiB appends 1 KiB batches to a log; compare it with
// BenchmarkPlainWrite1KiB, the same bytes written to a plain file.
func BenchmarkAppend1KiB(b *testing.B) {
	batch := batch1KiB(b)
	l, err := log.Open(b.TempDir(), log.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlainWrite1KiB(b *testing.B) {
	batch := batch1KiB(b)
	f, err := os.Create(filepath.Join(b.TempDir(), "plain"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadSequential reads a 64 MiB log from start to end in reads of
// up to 1 MiB, as a consumer catching up does; compare with
// BenchmarkPlainReadSequential.
func BenchmarkReadSequential(b *testing.B) {
	batch := batch1KiB(b)
	l, err := log.Open(b.TempDir(), log.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const n = 64 << 10
	for range n {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(n * 1024)
	for b.Loop() {
		for offset := int64(0); offset < n; {
			raw, err := l.Read(offset, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			offset += int64(len(raw) / 1024)
		}
	}
}

func BenchmarkPlainReadSequential(b *testing.B) {
	batch := batch1KiB(b)
	path := filepath.Join(b.TempDir(), "plain")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	const n = 64 << 10
	for range n {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	b.SetBytes(n * 1024)
	buf := make([]byte, 1<<20)
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for position := int64(0); position < n*1024; position += 1 << 20 {
			out := make([]byte, len(buf)) // the log hands each reader its own copy too
			if _, err := f.ReadAt(out, position); err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}

// BenchmarkAppendIdempotent1KiB appends 1 KiB batches of one idempotent
// producer, each with the next sequence, as a leader does: the cost of
// checking and remembering the sequences. Compare it with
// BenchmarkAppendRestamped1KiB, the same work on the batch (a sequence
// written, the CRC computed again) for a producer that is not idempotent.
func BenchmarkAppendIdempotent1KiB(b *testing.B) {
	benchmarkRestamped(b, 4000)
}

// BenchmarkAppendRestamped1KiB is BenchmarkAppendIdempotent1KiB's peer:
// producer id -1, nothing to check.
func BenchmarkAppendRestamped1KiB(b *testing.B) {
	benchmarkRestamped(b, -1)
}

func benchmarkRestamped(b *testing.B, producerID int64) {
	var records []byte
	records = log.AppendRecord(records, kmsg.Record{Value: make([]byte, 1024-61-8)})
	now := time.Now().UnixMilli()
	batch := log.SealBatch(kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: producerID, ProducerEpoch: 0, FirstSequence: 0, NumRecords: 1,
	}, records)
	if producerID < 0 {
		binary.BigEndian.PutUint16(batch[51:], 0xffff) // epoch -1, as a plain producer writes it
	}
	l, err := log.Open(b.TempDir(), log.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	b.SetBytes(int64(len(batch)))
	seq := int32(0)
	for b.Loop() {
		if producerID >= 0 {
			binary.BigEndian.PutUint32(batch[53:], uint32(seq)) // base sequence
			seq = log.AddSequence(seq, 1)
		}
		binary.BigEndian.PutUint32(batch[17:], crc32.Checksum(batch[21:], castagnoli))
		if _, err := l.AppendLeader(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
}
