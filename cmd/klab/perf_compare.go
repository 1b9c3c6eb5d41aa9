package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// perfCompare measures every figure of perf.Figures in one run and prints
// one table: each figure, klab's value, the peer's, their ratio, the
// target and whether klab meets it.
func perfCompare(args []string) error {
	fs := flag.NewFlagSet("perf compare", flag.ContinueOnError)
	records := fs.Int64("num-records", 1_000_000, "records of each figure on --partitions partitions, on klab and on kfake each")
	onePartition := fs.Int64("one-partition-records", 1_000_000, "records of each one-partition figure")
	fresh := fs.Int64("fresh-topic-records", 100_000, "records into the fresh topic, and into the warm one")
	size := fs.Int("record-size", 100, "bytes of each record's value")
	partitions := fs.Int("partitions", 6, "partitions of the figures' topics (but the one-partition figures)")
	linger := fs.Int("linger-ms", 5, "linger.ms of the producers")
	rounds := fs.Int("rounds", 3, "how many times to measure each throughput figure; the table shows the round with the median ratio")
	latencyPace := fs.Int64("latency-throughput", 50_000, "records/s of the paced acks=all RF=3 run whose p99 latency is a figure (0: no such run)")
	clients := fs.Int("clients", 1, "franz-go producers sharing each produce step's records (each with its own connections)")
	trials := fs.Int("failover-trials", 5, "how many times the failover figure kills a leader")
	only := fs.String("only", "", "the figures to measure, comma-separated, among "+strings.Join(perf.FigureSets, ",")+" (default: all)")
	dir := fs.String("dir", "", "the brokers' data directory (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	cfg := perf.FiguresConfig{
		Records: *records, OnePartitionRecords: *onePartition, FreshTopicRecords: *fresh,
		RecordSize: *size, Partitions: int32(*partitions), Linger: time.Duration(*linger) * time.Millisecond, Clients: *clients,
		LatencyThroughput: *latencyPace, Rounds: *rounds,
		FailoverTrials: *trials, Dir: work, Klab: self,
		Progress: new(recordProgress).report,
		Step:     func(msg string) { fmt.Fprintln(os.Stderr, "  "+msg) },
	}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	fmt.Printf("klab perf compare: %d franz-go producer(s) per step, %d-byte records, %d partitions (%d records; %d on one partition; %d into a fresh topic), linger.ms=%d, median of %d rounds; "+
		"klab (one broker, or three for RF=3, in this process, data on disk in %s) against kfake (one broker, in memory); failover and memory on `klab broker` processes\n",
		max(cfg.Clients, 1), cfg.RecordSize, cfg.Partitions, cfg.Records, cfg.OnePartitionRecords, cfg.FreshTopicRecords, *linger, max(cfg.Rounds, 1), work)
	figures, err := perf.Figures(ctx, cfg)
	fmt.Println()
	printFigures(os.Stdout, figures)
	return err
}

// printFigures writes the figures as a table, then what each says beyond
// its columns.
func printFigures(w io.Writer, figures []perf.Figure) {
	rows := [][]string{{"figure", "klab", "peer", "ratio", "target", "met"}}
	for _, f := range figures {
		ratio := "-"
		if !math.IsNaN(f.Ratio) {
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		met := "met"
		if !f.Met {
			met = "NOT MET"
		}
		rows = append(rows, []string{f.Name, f.Klab, f.Peer, ratio, f.Target, met})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len([]rune(cell)))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, cell := range r {
			if i == 0 {
				fmt.Fprintf(&line, "%-*s", widths[i], cell)
			} else {
				fmt.Fprintf(&line, "  %*s", widths[i], cell)
			}
		}
		fmt.Fprintln(w, line.String())
	}
	fmt.Fprintln(w)
	for _, f := range figures {
		if f.Detail != "" {
			fmt.Fprintf(w, "%s: %s\n", strings.TrimSpace(f.Name), f.Detail)
		}
	}
}
