package log_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

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
