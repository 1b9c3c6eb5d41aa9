package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
)

func signalContext() (context.Context, context.CancelFunc) {
	// SIGTERM too: `kill` stops a console consumer as Ctrl-C does, so that
	// it leaves its group at once instead of after its session timeout.
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func perfProduce(args []string) error {
	fs := flag.NewFlagSet("perf produce", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "a broker to start from")
	topic := fs.String("topic", "", "the topic (it must exist)")
	records := fs.Int64("num-records", 1_000_000, "how many records")
	size := fs.Int("record-size", 100, "bytes of each record's value")
	acks := fs.String("acks", "all", "acks: 0, 1 or all")
	linger := fs.Int("linger-ms", 5, "linger.ms")
	clients := fs.Int("clients", 1, "producers sharing the records, each a franz-go client with its own connections")
	throughput := fs.Int64("throughput", 0, "records/s to pace the run at, as kafka-producer-perf-test's --throughput (0: as fast as it can)")
	idempotent := fs.Bool("idempotent", true, "enable.idempotence (Kafka's default since 3.0); with true, the run produces\n--num-records four times, plain, idempotent, idempotent, plain, and prints the cost of idempotence as a ratio")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" {
		return fmt.Errorf("--topic is required")
	}
	if *idempotent && *acks != "all" && *acks != "-1" {
		return fmt.Errorf("--acks %s: an idempotent producer needs acks=all; add --idempotent=false to measure acks=%s", *acks, *acks)
	}
	ctx, stop := signalContext()
	defer stop()
	run := func(idempotent bool) (perf.Result, error) {
		label := "produce"
		if idempotent {
			label = "produce, idempotent"
		}
		r, err := perf.Produce(ctx, perf.ProduceConfig{
			Brokers: strings.Split(*bootstrap, ","), Topic: *topic, Records: *records, RecordSize: *size,
			Acks: *acks, Linger: time.Duration(*linger) * time.Millisecond, Idempotent: idempotent, Clients: *clients, Throughput: *throughput,
			Progress: new(recordProgress).labelled(label),
		})
		if err == nil {
			fmt.Printf("%s: %d records sent, %.0f records/sec (%.2f MB/sec), latency p50 %s, p95 %s, p99 %s, p99.9 %s, max %s\n",
				label, r.Records, r.RecordsPerSec(), r.MBPerSec(), r.Percentile(0.5), r.Percentile(0.95), r.Percentile(0.99), r.Percentile(0.999), r.Percentile(1))
		}
		return r, err
	}
	if !*idempotent {
		_, err := run(false)
		return err
	}
	// The baseline runs in the same process, on the same cluster and
	// topic, in the order plain, idempotent, idempotent, plain: whatever
	// drifts during the run (the page cache filling, segments rolling)
	// weighs on both alike, and the ratio does not depend on the machine.
	var rate, p50 [2]float64
	for _, idempotent := range []bool{false, true, true, false} {
		r, err := run(idempotent)
		if err != nil {
			return err
		}
		i := 0
		if idempotent {
			i = 1
		}
		rate[i] += r.RecordsPerSec() / 2
		p50[i] += float64(r.Percentile(0.5)) / 2
	}
	fmt.Printf("cost of idempotence (mean of two runs each): idempotent/plain = %.2f in records/sec, %.2f in p50 latency\n",
		rate[1]/rate[0], p50[1]/p50[0])
	return nil
}

func perfConsume(args []string) error {
	fs := flag.NewFlagSet("perf consume", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap-server", "127.0.0.1:9092", "a broker to start from")
	topic := fs.String("topic", "", "the topic")
	records := fs.Int64("messages", 1_000_000, "how many records to read, from the start of the topic")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *topic == "" {
		return fmt.Errorf("--topic is required")
	}
	ctx, stop := signalContext()
	defer stop()
	r, err := perf.Consume(ctx, perf.ConsumeConfig{
		Brokers: strings.Split(*bootstrap, ","), Topic: *topic, Records: *records,
		Progress: new(recordProgress).labelled("consume"),
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d records read in %s, %.0f records/sec (%.2f MB/sec)\n", r.Records, r.Elapsed.Round(time.Millisecond), r.RecordsPerSec(), r.MBPerSec())
	return nil
}

// compareRun reads the flags perf clients and perf replicated share, and
// returns the run's configuration and a cleanup for its data directory.
func compareRun(name string, args []string) (perf.CompareConfig, func(), error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	records := fs.Int64("num-records", 1_000_000, "records per test")
	size := fs.Int("record-size", 100, "bytes of each record's value")
	partitions := fs.Int("partitions", 6, "partitions of each topic")
	linger := fs.Int("linger-ms", 5, "linger.ms")
	dir := fs.String("dir", "", "klab's data directory (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return perf.CompareConfig{}, nil, err
	}
	work, cleanup, err := workDir(*dir)
	return perf.CompareConfig{
		Records: *records, RecordSize: *size, Partitions: int32(*partitions),
		Linger: time.Duration(*linger) * time.Millisecond, Dir: work, Progress: new(recordProgress).report,
	}, cleanup, err
}

func perfClients(args []string) error {
	return comparison("perf clients", args, func(cfg perf.CompareConfig) string {
		return fmt.Sprintf("%d records of %d bytes, %d partitions, acks=all, linger.ms=%d, one klab broker with data in %s",
			cfg.Records, cfg.RecordSize, cfg.Partitions, cfg.Linger.Milliseconds(), cfg.Dir)
	}, func(ctx context.Context, cfg perf.CompareConfig) (func(), error) {
		rows, err := perf.CompareClients(ctx, cfg)
		return func() { printClientRows(os.Stdout, rows) }, err
	})
}

func perfReplicated(args []string) error {
	return comparison("perf replicated", args, func(cfg perf.CompareConfig) string {
		return fmt.Sprintf("%d records of %d bytes, %d partitions, acks=all, linger.ms=%d; klab (3 brokers, replication factor 3, min.insync.replicas=2, data in %s) against kfake (one broker, in memory)",
			cfg.Records, cfg.RecordSize, cfg.Partitions, cfg.Linger.Milliseconds(), cfg.Dir)
	}, func(ctx context.Context, cfg perf.CompareConfig) (func(), error) {
		pair, err := perf.CompareReplicated(ctx, cfg)
		return func() { printPairs(os.Stdout, []perf.Pair{pair}) }, err
	})
}

// comparison runs one of the comparisons: its flags (compareRun), a line
// saying what it measures, the run, and its table.
func comparison(name string, args []string, says func(perf.CompareConfig) string, run func(context.Context, perf.CompareConfig) (show func(), err error)) error {
	cfg, cleanup, err := compareRun(name, args)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, stop := signalContext()
	defer stop()
	fmt.Printf("klab %s: %s\n", name, says(cfg))
	show, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Println()
	show()
	return nil
}

// printPairs writes klab against kfake as a table.
func printPairs(w io.Writer, pairs []perf.Pair) {
	fmt.Fprintf(w, "%-22s %14s %14s %10s %12s %12s %12s %12s\n", "", "klab rec/s", "kfake rec/s", "klab/kfake", "klab p50", "klab p99", "kfake p50", "kfake p99")
	for _, p := range pairs {
		fmt.Fprintf(w, "%-22s %14.0f %14.0f %10.2f", p.Test, p.Klab.RecordsPerSec(), p.Kfake.RecordsPerSec(), p.Ratio)
		if len(p.Klab.Latencies) > 0 {
			fmt.Fprintf(w, " %12s %12s %12s %12s", ms(p.Klab.Percentile(0.5)), ms(p.Klab.Percentile(0.99)), ms(p.Kfake.Percentile(0.5)), ms(p.Kfake.Percentile(0.99)))
		}
		fmt.Fprintln(w)
	}
}

// printClientRows writes the course's clients against franz-go's as a table.
func printClientRows(w io.Writer, rows []perf.ClientRow) {
	fmt.Fprintf(w, "%-18s %14s %14s %12s %12s %12s %12s %12s\n", "", "course rec/s", "franz rec/s", "course/franz", "course p50", "course p99", "franz p50", "franz p99")
	for _, r := range rows {
		fmt.Fprintf(w, "%-18s %14.0f %14.0f %12.2f", r.Test, r.Course.RecordsPerSec(), r.Franz.RecordsPerSec(), r.Ratio)
		if len(r.Course.Latencies) > 0 {
			fmt.Fprintf(w, " %12s %12s %12s %12s", ms(r.Course.Percentile(0.5)), ms(r.Course.Percentile(0.99)), ms(r.Franz.Percentile(0.5)), ms(r.Franz.Percentile(0.99)))
		}
		fmt.Fprintln(w)
	}
}

// ms writes a latency in milliseconds, to a tenth.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
