package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/broker/log"
)

const perfHelp = `klab perf log       append and read batches through the log, against a plain file
klab perf recovery  time the recovery of logs of two sizes after an unclean stop
klab perf produce   produce records to a cluster, as kafka-producer-perf-test does
klab perf consume   consume records from a cluster, as kafka-consumer-perf-test does
klab perf compare   every figure in one run, each against its peer (kfake, mostly) and its target, in one table
klab perf clients   the course's producer and consumer against franz-go's, on one klab broker
klab perf replicated  acks=all to three klab brokers (replication factor 3) against one kfake broker
klab perf failover  SIGKILL a partition leader's process, time until a producer's next write is acknowledged
klab perf streams   the DSL word count as a streams application against a hand-written loop, in one run
Add -h after any of them for its flags.`

func runPerf(args []string) error {
	if len(args) == 0 {
		fmt.Println(perfHelp)
		return nil
	}
	switch args[0] {
	case "log":
		return perfLog(args[1:])
	case "recovery":
		return perfRecovery(args[1:])
	case "produce":
		return perfProduce(args[1:])
	case "consume":
		return perfConsume(args[1:])
	case "compare":
		return perfCompare(args[1:])
	case "clients":
		return perfClients(args[1:])
	case "replicated":
		return perfReplicated(args[1:])
	case "failover":
		return perfFailover(args[1:])
	case "streams":
		return perfStreams(args[1:])
	}
	return errors.New("unknown perf command\n" + perfHelp)
}

// byteSize is a flag value like 512MiB, 1GiB, 4096.
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	*b = byteSize(n)
	return err
}

func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// batchOfSize builds a one-record batch of exactly size bytes.
func batchOfSize(size int) []byte {
	value := size - len(log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: []byte{}}))
	for {
		b := log.EncodeBatch(log.Record{Timestamp: time.Now(), Value: make([]byte, max(value, 0))})
		if len(b) <= size || value <= 0 {
			return b
		}
		value-- // the value's varint length grew by a byte
	}
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

func perfLog(args []string) error {
	fs := flag.NewFlagSet("perf log", flag.ContinueOnError)
	total, batchSize, segment := byteSize(512<<20), byteSize(1<<10), byteSize(1<<30)
	fs.Var(&total, "bytes", "how much to write, in all, to each of the log and the plain file")
	fs.Var(&batchSize, "batch", "size of each batch")
	fs.Var(&segment, "segment-bytes", "segment.bytes of the log")
	rounds := fs.Int("rounds", 4, "rounds: the log and the plain file take turns, so both meet the same page-cache state")
	dir := fs.String("dir", "", "where to write (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	batch := batchOfSize(int(batchSize))
	perRound := int64(total) / int64(len(batch)) / int64(*rounds)
	roundBytes := perRound * int64(len(batch))
	fmt.Printf("klab perf log: %d rounds of %d batches of %d bytes (%d MiB in all), segment.bytes=%s, in %s\n",
		*rounds, perRound, len(batch), int64(*rounds)*roundBytes>>20, formatBytes(int64(segment)), work)

	plain, err := os.Create(filepath.Join(work, "plain"))
	if err != nil {
		return err
	}
	defer plain.Close()
	l, err := log.Open(filepath.Join(work, "log"), log.Config{SegmentBytes: int64(segment)})
	if err != nil {
		return err
	}
	defer l.Close()

	writePlain := func(p *progress) error {
		for i := int64(0); i < perRound; i++ {
			if _, err := plain.Write(batch); err != nil {
				return err
			}
			p.update((i + 1) * int64(len(batch)))
		}
		return nil
	}
	appendLog := func(p *progress) error {
		for i := int64(0); i < perRound; i++ {
			if _, err := l.Append(batch); err != nil {
				return err
			}
			p.update((i + 1) * int64(len(batch)))
		}
		return nil
	}
	var plainPos, logOffset int64
	readPlain := func(p *progress) error {
		var done int64
		for done < roundBytes {
			out := make([]byte, min(1<<20, roundBytes-done)) // each read gets its own buffer, as the log's do
			k, err := plain.ReadAt(out, plainPos)
			done, plainPos = done+int64(k), plainPos+int64(k)
			p.update(done)
			if err != nil {
				return err
			}
		}
		return nil
	}
	readLog := func(p *progress) error {
		var done int64
		for done < roundBytes {
			raw, err := l.Read(logOffset, min(1<<20, roundBytes-done))
			if err != nil {
				return err
			}
			done += int64(len(raw))
			logOffset += int64(len(raw) / len(batch)) // one record per batch
			p.update(done)
		}
		return nil
	}

	var took [4]time.Duration // plain write, log append, plain read, log read
	steps := []func(*progress) error{writePlain, appendLog, readPlain, readLog}
	labels := []string{"plain file write", "log append", "plain file read", "log read"}
	for phase := 0; phase < 4; phase += 2 {
		for r := 0; r < *rounds; r++ {
			order := []int{phase, phase + 1}
			if r%2 == 1 {
				order = []int{phase + 1, phase}
			}
			for _, k := range order {
				d, err := timeRun(fmt.Sprintf("%s %d/%d", labels[k], r+1, *rounds), roundBytes, steps[k])
				if err != nil {
					return err
				}
				took[k] += d
			}
		}
	}
	all := int64(*rounds) * roundBytes
	rate := func(k int) float64 { return mbps(all, took[k]) }
	fmt.Printf("\n%-8s %12s %12s %8s\n", "", "log MB/s", "file MB/s", "log/file")
	fmt.Printf("%-8s %12.1f %12.1f %8.2f\n", "append", rate(1), rate(0), rate(1)/rate(0))
	fmt.Printf("%-8s %12.1f %12.1f %8.2f\n", "read", rate(3), rate(2), rate(3)/rate(2))
	return nil
}

// timeRun runs fn, which writes or reads bytes, with its progress shown,
// and returns how long it took.
func timeRun(label string, bytes int64, fn func(*progress) error) (time.Duration, error) {
	p := newProgress(label, "bytes", bytes, time.Now())
	err := fn(p)
	took := time.Since(p.start)
	p.finish()
	return took, err
}

// workDir returns dir, or a new temporary folder that cleanup removes.
func workDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	tmp, err := os.MkdirTemp("", "klab-perf-")
	return tmp, func() { os.RemoveAll(tmp) }, err
}

func perfRecovery(args []string) error {
	fs := flag.NewFlagSet("perf recovery", flag.ContinueOnError)
	segment := byteSize(1 << 20)
	fs.Var(&segment, "segment-bytes", "segment.bytes of the logs")
	sizes := fs.String("sizes", "256MiB,1GiB", "the log sizes to recover, comma-separated")
	dir := fs.String("dir", "", "where to write (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	batch := batchOfSize(1 << 10)
	type result struct {
		size int64
		r    log.Recovery
	}
	var results []result
	for i, s := range strings.Split(*sizes, ",") {
		size, err := parseBytes(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--sizes: %w", err)
		}
		path := filepath.Join(work, fmt.Sprintf("log-%d", i))
		if err := writeUncleanLog(path, size, int64(segment), batch); err != nil {
			return err
		}
		l, err := log.Open(path, log.Config{SegmentBytes: int64(segment)})
		if err != nil {
			return err
		}
		results = append(results, result{size, l.Recovered()})
		l.Close()
		os.RemoveAll(path)
	}
	fmt.Printf("\n%10s %10s %14s %16s %12s\n", "log", "segments", "scanned", "torn tail cut", "recovery")
	for _, r := range results {
		fmt.Printf("%10s %10d %14s %16s %12s\n", formatBytes(r.size), r.r.Segments,
			formatBytes(r.r.ScannedBytes), formatBytes(r.r.TruncatedBytes), r.r.Took.Round(time.Microsecond))
	}
	fmt.Println("\nThe files are in the page cache: this is the time to check and index the tail, not to read a cold disk.")
	return nil
}

// writeUncleanLog fills a log to size and leaves it as a crash would: never
// closed, so the last segment's time index is not sealed, and with half a
// batch torn at the end of the last segment.
func writeUncleanLog(path string, size, segment int64, batch []byte) error {
	l, err := log.Open(path, log.Config{SegmentBytes: segment})
	if err != nil {
		return err
	}
	n := size / int64(len(batch))
	if _, err := timeRun("write "+formatBytes(size), n*int64(len(batch)), func(p *progress) error {
		for i := int64(0); i < n; i++ {
			if _, err := l.Append(batch); err != nil {
				return err
			}
			p.update((i + 1) * int64(len(batch)))
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
