package perf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"klab.dev/klab/broker/log"
)

// ByteSteps, if set, is told when a step that writes or reads bytes
// starts, with how many it will; it returns how to report the bytes done
// so far, called in the measured loop (so it must be cheap), and how to
// report the step's end.
type ByteSteps func(label string, total int64) (done func(int64), finish func())

// LogConfig is one run of LogAgainstFile.
type LogConfig struct {
	Dir          string // where the log and the plain file go
	TotalBytes   int64  // written, in all, to each of the log and the file
	BatchBytes   int    // the size of each batch
	SegmentBytes int64  // segment.bytes of the log
	Rounds       int    // the log and the file take turns, round by round
	Steps        ByteSteps
}

// LogResult is what LogAgainstFile measured: each side wrote and then
// read Bytes, in batches of BatchBytes.
type LogResult struct {
	Bytes      int64
	BatchBytes int
	// How long each side took, in all its rounds.
	PlainWrite, LogAppend, PlainRead, LogRead time.Duration
}

// MBPerSec is Bytes over d, in megabytes (10^6) per second.
func (r LogResult) MBPerSec(d time.Duration) float64 { return float64(r.Bytes) / 1e6 / d.Seconds() }

// LogAgainstFile appends batches to a broker/log.Log and writes the same
// bytes to a plain os.File, then reads both back, and times each: what
// the log's indexes, CRC checks and segments cost over the bare file
// (lesson 01). The log and the file take turns, round by round, so that
// both meet the same page-cache state.
func LogAgainstFile(cfg LogConfig) (LogResult, error) {
	batch := BatchOfSize(cfg.BatchBytes)
	perRound := cfg.TotalBytes / int64(len(batch)) / int64(cfg.Rounds)
	roundBytes := perRound * int64(len(batch))
	res := LogResult{Bytes: int64(cfg.Rounds) * roundBytes, BatchBytes: len(batch)}

	plain, err := os.Create(filepath.Join(cfg.Dir, "plain"))
	if err != nil {
		return res, err
	}
	defer plain.Close()
	l, err := log.Open(filepath.Join(cfg.Dir, "log"), log.Config{SegmentBytes: cfg.SegmentBytes})
	if err != nil {
		return res, err
	}
	defer l.Close()

	writePlain := func(done func(int64)) error {
		for i := int64(0); i < perRound; i++ {
			if _, err := plain.Write(batch); err != nil {
				return err
			}
			done((i + 1) * int64(len(batch)))
		}
		return nil
	}
	appendLog := func(done func(int64)) error {
		for i := int64(0); i < perRound; i++ {
			if _, err := l.Append(batch); err != nil {
				return err
			}
			done((i + 1) * int64(len(batch)))
		}
		return nil
	}
	var plainPos, logOffset int64
	readPlain := func(report func(int64)) error {
		var done int64
		for done < roundBytes {
			out := make([]byte, min(1<<20, roundBytes-done)) // each read gets its own buffer, as the log's do
			k, err := plain.ReadAt(out, plainPos)
			done, plainPos = done+int64(k), plainPos+int64(k)
			report(done)
			if err != nil {
				return err
			}
		}
		return nil
	}
	readLog := func(report func(int64)) error {
		var done int64
		for done < roundBytes {
			raw, err := l.Read(logOffset, min(1<<20, roundBytes-done))
			if err != nil {
				return err
			}
			done += int64(len(raw))
			logOffset += int64(len(raw) / len(batch)) // one record per batch
			report(done)
		}
		return nil
	}

	took := []*time.Duration{&res.PlainWrite, &res.LogAppend, &res.PlainRead, &res.LogRead}
	steps := []func(func(int64)) error{writePlain, appendLog, readPlain, readLog}
	labels := []string{"plain file write", "log append", "plain file read", "log read"}
	for phase := 0; phase < 4; phase += 2 { // the writes, then the reads
		for r := 0; r < cfg.Rounds; r++ {
			order := []int{phase, phase + 1}
			if r%2 == 1 {
				order = []int{phase + 1, phase}
			}
			for _, k := range order {
				d, err := timeStep(cfg.Steps, fmt.Sprintf("%s %d/%d", labels[k], r+1, cfg.Rounds), roundBytes, steps[k])
				if err != nil {
					return res, err
				}
				*took[k] += d
			}
		}
	}
	return res, nil
}

// timeStep runs fn, which writes or reads total bytes, reported to steps,
// and returns how long it took.
func timeStep(steps ByteSteps, label string, total int64, fn func(done func(int64)) error) (time.Duration, error) {
	done, finish := func(int64) {}, func() {}
	if steps != nil {
		done, finish = steps(label, total)
	}
	start := time.Now()
	err := fn(done)
	took := time.Since(start)
	finish()
	return took, err
}

// BatchOfSize builds a one-record batch of exactly size bytes.
func BatchOfSize(size int) []byte {
	value := size - len(log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte{}}))
	for {
		b := log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: make([]byte, max(value, 0))})
		if len(b) <= size || value <= 0 {
			return b
		}
		value-- // the value's varint length grew by a byte
	}
}

// RecoveryConfig is one run of Recovery.
type RecoveryConfig struct {
	Dir          string
	Sizes        []int64 // the sizes of the logs to recover
	SegmentBytes int64   // segment.bytes of the logs
	Steps        ByteSteps
}

// LogRecovery is how one log of Size bytes recovered.
type LogRecovery struct {
	Size     int64
	Recovery log.Recovery
}

// Recovery builds a log of each size in 1 KiB batches, leaves it as a
// crash would (never closed, half a batch torn onto its end), opens it
// again and reports what the recovery did and how long it took.
func Recovery(cfg RecoveryConfig) ([]LogRecovery, error) {
	batch := BatchOfSize(1 << 10)
	var results []LogRecovery
	for i, size := range cfg.Sizes {
		path := filepath.Join(cfg.Dir, fmt.Sprintf("log-%d", i))
		if err := writeUncleanLog(path, size, cfg.SegmentBytes, batch, cfg.Steps); err != nil {
			return results, err
		}
		l, err := log.Open(path, log.Config{SegmentBytes: cfg.SegmentBytes})
		if err != nil {
			return results, err
		}
		results = append(results, LogRecovery{size, l.Recovered()})
		l.Close()
		os.RemoveAll(path)
	}
	return results, nil
}

// writeUncleanLog fills a log to size and leaves it as a crash would: never
// closed, so the last segment's time index is not sealed, and with half a
// batch torn at the end of the last segment.
func writeUncleanLog(path string, size, segment int64, batch []byte, steps ByteSteps) error {
	l, err := log.Open(path, log.Config{SegmentBytes: segment})
	if err != nil {
		return err
	}
	n := size / int64(len(batch))
	if _, err := timeStep(steps, "write "+sizeText(size), n*int64(len(batch)), func(done func(int64)) error {
		for i := int64(0); i < n; i++ {
			if _, err := l.Append(batch); err != nil {
				return err
			}
			done((i + 1) * int64(len(batch)))
		}
		return nil
	}); err != nil {
		return err
	}
	names, err := filepath.Glob(filepath.Join(path, "*.log"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no segments written in %s: %v", path, err)
	}
	f, err := os.OpenFile(names[len(names)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(batch[:len(batch)/2])
	return errors.Join(err, f.Close())
}

// sizeText writes a size in MiB when it is whole MiBs, else in bytes.
func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
