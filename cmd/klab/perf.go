package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
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

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// perfLog measures the log against a plain file (perf.LogAgainstFile).
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
	batch := int64(len(perf.BatchOfSize(int(batchSize))))
	perRound := int64(total) / batch / int64(*rounds)
	fmt.Printf("klab perf log: %d rounds of %d batches of %d bytes (%d MiB in all), segment.bytes=%s, in %s\n",
		*rounds, perRound, batch, int64(*rounds)*perRound*batch>>20, formatBytes(int64(segment)), work)
	r, err := perf.LogAgainstFile(perf.LogConfig{
		Dir: work, TotalBytes: int64(total), BatchBytes: int(batchSize), SegmentBytes: int64(segment), Rounds: *rounds,
		Steps: byteProgress,
	})
	if err != nil {
		return err
	}
	fmt.Printf("\n%-8s %12s %12s %8s\n", "", "log MB/s", "file MB/s", "log/file")
	fmt.Printf("%-8s %12.1f %12.1f %8.2f\n", "append", r.MBPerSec(r.LogAppend), r.MBPerSec(r.PlainWrite), r.PlainWrite.Seconds()/r.LogAppend.Seconds())
	fmt.Printf("%-8s %12.1f %12.1f %8.2f\n", "read", r.MBPerSec(r.LogRead), r.MBPerSec(r.PlainRead), r.PlainRead.Seconds()/r.LogRead.Seconds())
	return nil
}

// byteProgress shows a step that writes or reads bytes (perf.ByteSteps).
func byteProgress(label string, total int64) (done func(int64), finish func()) {
	p := newProgress(label, "bytes", total, time.Now())
	return p.update, p.finish
}

// workDir returns dir, or a new temporary folder that cleanup removes.
func workDir(dir string) (string, func(), error) {
	if dir != "" {
		return dir, func() {}, os.MkdirAll(dir, 0o755)
	}
	tmp, err := os.MkdirTemp("", "klab-perf-")
	return tmp, func() { os.RemoveAll(tmp) }, err
}

// perfRecovery times the recovery of logs left as a crash leaves them
// (perf.Recovery).
func perfRecovery(args []string) error {
	fs := flag.NewFlagSet("perf recovery", flag.ContinueOnError)
	segment := byteSize(1 << 20)
	fs.Var(&segment, "segment-bytes", "segment.bytes of the logs")
	sizes := fs.String("sizes", "256MiB,1GiB", "the log sizes to recover, comma-separated")
	dir := fs.String("dir", "", "where to write (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizeList []int64
	for _, s := range strings.Split(*sizes, ",") {
		size, err := parseBytes(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--sizes: %w", err)
		}
		sizeList = append(sizeList, size)
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	results, err := perf.Recovery(perf.RecoveryConfig{Dir: work, Sizes: sizeList, SegmentBytes: int64(segment), Steps: byteProgress})
	if err != nil {
		return err
	}
	fmt.Printf("\n%10s %10s %14s %16s %12s\n", "log", "segments", "scanned", "torn tail cut", "recovery")
	for _, r := range results {
		fmt.Printf("%10s %10d %14s %16s %12s\n", formatBytes(r.Size), r.Recovery.Segments,
			formatBytes(r.Recovery.ScannedBytes), formatBytes(r.Recovery.TruncatedBytes), r.Recovery.Took.Round(time.Microsecond))
	}
	fmt.Println("\nThe files are in the page cache: this is the time to check and index the tail, not to read a cold disk.")
	return nil
}
