package main

import (
	"flag"
	"fmt"
	"time"

	"klab.dev/klab/cmd/klab/internal/perf"
)

// perfStreams measures what Kafka Streams' machinery costs
// (perf.WordCount): the DSL word count against the same count written by
// hand, on the same broker and input, in one run.
func perfStreams(args []string) error {
	fs := flag.NewFlagSet("perf streams", flag.ContinueOnError)
	lines := fs.Int64("num-records", 100_000, "lines of input")
	perLine := fs.Int("words-per-line", 5, "words in each line")
	partitions := fs.Int("partitions", 6, "partitions of the input and output topics")
	threads := fs.Int("threads", 1, "num.stream.threads of the streams application (the loop is one goroutine)")
	dir := fs.String("dir", "", "the broker's and the application's data directory (default: a temporary folder, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	work, cleanup, err := workDir(*dir)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, stop := signalContext()
	defer stop()
	fmt.Printf("klab perf streams: word count of %d lines of %d words, %d partitions, one klab broker with data in %s; the DSL word count (%d stream threads) against a hand-written consume-count-produce loop\n",
		*lines, *perLine, *partitions, work, *threads)
	words := *lines * int64(*perLine)
	res, err := perf.WordCount(ctx, perf.WordCountConfig{
		Lines: *lines, WordsPerLine: *perLine, Partitions: int32(*partitions), Threads: *threads, Dir: work,
		Progress: new(recordProgress).report,
		Counted: func(c perf.WordCountRun) {
			fmt.Printf("  %-8s %d lines in %v: %.0f lines/sec (%.0f words/sec)\n",
				c.Name, *lines, c.Took.Round(time.Millisecond), float64(*lines)/c.Took.Seconds(), float64(words)/c.Took.Seconds())
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("streams/loop = %.2f in lines/sec (mean of two runs each)\n", res.StreamsOverLoop())
	return nil
}
