package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/broker"
	"klab.dev/klab/cmd/klab/internal/perf"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

// The topics of perf streams: lines in, a count per word out.
const (
	perfLinesTopic  = "perf-lines"
	perfCountsTopic = "perf-counts"
)

// perfStreams measures what Kafka Streams' machinery costs: the DSL word
// count (a repartition by word, a store and its changelog, at-least-once
// commits) against the same count written by hand as a consume, count in
// a map, produce loop (no repartition, no store, no changelog), on the
// same broker and input, in one run. Both write one count per word read.
// Each is timed from the moment it has its partitions (the group joined,
// the stores restored) until all its counts are in the output topic.
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
	addr, closeBroker, err := startPerfBroker(filepath.Join(work, "broker"))
	if err != nil {
		return err
	}
	defer closeBroker()
	fmt.Printf("klab perf streams: word count of %d lines of %d words, %d partitions, one klab broker with data in %s; the DSL word count (%d stream threads) against a hand-written consume-count-produce loop\n",
		*lines, *perLine, *partitions, work, *threads)

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, int32(*partitions), 1, nil, perfLinesTopic, perfCountsTopic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return err
	}
	progress := new(recordProgress)
	if err := produceWordLines(ctx, addr, *lines, *perLine, progress); err != nil {
		return err
	}
	words := *lines * int64(*perLine)
	// loop, streams, streams, loop: what drifts during the run (the page
	// cache, segments rolling) weighs on both alike.
	var rate [2]float64
	for i, name := range []string{"loop", "streams", "streams", "loop"} {
		run := perfWordCountLoop
		if name == "streams" {
			run = func(ctx context.Context, addr string, n int, started chan<- struct{}) (func() error, error) {
				return perfWordCountStreams(ctx, addr, filepath.Join(work, "state"), *threads, n, started)
			}
		}
		took, err := timeWordCount(ctx, adm, addr, i, words, name, run, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("  %-8s %d lines in %v: %.0f lines/sec (%.0f words/sec)\n",
			name, *lines, took.Round(time.Millisecond), float64(*lines)/took.Seconds(), float64(words)/took.Seconds())
		if name == "streams" {
			rate[1] += float64(*lines) / took.Seconds() / 2
		} else {
			rate[0] += float64(*lines) / took.Seconds() / 2
		}
	}
	fmt.Printf("streams/loop = %.2f in lines/sec (mean of two runs each)\n", rate[1]/rate[0])
	return nil
}

// startPerfBroker starts one klab broker in dir, on a loopback port, with
// no initial rebalance delay: each run's group forms at once.
func startPerfBroker(dir string) (string, func(), error) {
	cfg := broker.DefaultConfig()
	cfg.Listen, cfg.DataDir = "127.0.0.1:0", dir
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, s := range [][2]string{
		{"group.initial.rebalance.delay.ms", "0"},
		{"offsets.topic.num.partitions", "1"},
		{"offsets.topic.replication.factor", "1"},
	} {
		if err := cfg.Set(s[0], s[1]); err != nil {
			return "", nil, err
		}
	}
	b, err := broker.Start(cfg)
	if err != nil {
		return "", nil, err
	}
	return b.Addr(), func() { b.Close() }, nil
}

// produceWordLines writes n lines of perLine words each, drawn from a
// vocabulary of a thousand, spread over the partitions.
func produceWordLines(ctx context.Context, addr string, n int64, perLine int, progress *recordProgress) error {
	cfg := producer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	cfg.Linger = 5 * time.Millisecond
	p, err := producer.New(cfg)
	if err != nil {
		return err
	}
	defer p.Close()
	began := time.Now()
	report := func(done int64, final bool) {
		progress.report("produce lines", perf.Progress{Done: done, Total: n, Elapsed: time.Since(began), Final: final})
	}
	report(0, false)
	failed := make(chan error, 1)
	var b strings.Builder
	for i := range n {
		b.Reset()
		for j := range perLine {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString("w" + strconv.FormatInt((i*7+int64(j)*131)%1000, 10))
		}
		p.SendAsync(&producer.Record{Topic: perfLinesTopic, Value: []byte(b.String())}, func(_ producer.RecordMetadata, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
		if i%10_000 == 0 {
			report(i, false)
		}
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	report(n, true)
	select {
	case err := <-failed:
		return err
	default:
		return nil
	}
}

// wordCounter is one of the word counts measured: it starts counting the
// input from its start, into perfCountsTopic, closes started when it has
// its partitions, and returns how to stop it.
type wordCounter func(ctx context.Context, addr string, run int, started chan<- struct{}) (stop func() error, err error)

// stallTimeout is how long a word count may write nothing before the run
// calls it broken rather than slow.
const stallTimeout = 30 * time.Second

// timeWordCount runs count (run number run) and times it from when it has
// its partitions until perfCountsTopic has grown by words records.
func timeWordCount(ctx context.Context, adm *kadm.Client, addr string, run int, words int64, label string, count wordCounter, progress *recordProgress) (time.Duration, error) {
	endOfCounts := func() (int64, error) {
		ends, err := adm.ListEndOffsets(ctx, perfCountsTopic)
		if err != nil {
			return 0, err
		}
		var sum int64
		ends.Each(func(o kadm.ListedOffset) { sum += o.Offset })
		return sum, ends.Error()
	}
	before, err := endOfCounts()
	if err != nil {
		return 0, err
	}
	started := make(chan struct{})
	stop, err := count(ctx, addr, run, started)
	if err != nil {
		return 0, err
	}
	defer stop()
	select {
	case <-started:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("no partitions after a minute")
	}
	began := time.Now()
	var last int64
	lastMove := began
	for {
		end, err := endOfCounts()
		if err != nil {
			return 0, err
		}
		done := end - before
		if done > last {
			last, lastMove = done, time.Now()
		} else if time.Since(lastMove) > stallTimeout {
			return 0, fmt.Errorf("stalled at %d of %d counts for %v", done, words, stallTimeout)
		}
		final := done >= words
		progress.report(label, perf.Progress{Done: done, Total: words, Elapsed: time.Since(began), Final: final})
		if final {
			return time.Since(began), stop()
		}
		if err := sleepContext(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// sleepContext waits d, or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// perfWordCountStreams starts the DSL word count as application
// perf-streams-<run>, with its state under stateDir.
func perfWordCountStreams(ctx context.Context, addr, stateDir string, threads, run int, started chan<- struct{}) (func() error, error) {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, perfLinesTopic, streams.Consumed[string, string]{Key: streams.String, Value: streams.String})
	words := streams.FlatMapValues(lines, func(_ string, line string) []string { return strings.Fields(line) })
	counts := streams.GroupBy(words, func(_, w string) string { return w }, streams.Grouped[string, string]{Key: streams.String, Value: streams.String}).
		Count(streams.Materialized[string, int64]{Name: "counts"})
	counts.ToStream().To(perfCountsTopic, streams.Produced[string, int64]{})
	topo, err := b.Build()
	if err != nil {
		return nil, err
	}
	cfg := streams.DefaultConfig()
	cfg.ApplicationID = "perf-streams-" + strconv.Itoa(run)
	cfg.BootstrapServers = []string{addr}
	cfg.StateDir = stateDir
	cfg.NumStreamThreads = threads
	cfg.Logger = func(string, ...any) {}
	app, err := streams.New(topo, cfg)
	if err != nil {
		return nil, err
	}
	if err := app.Start(ctx); err != nil {
		app.Close()
		return nil, err
	}
	// The application has no state listener: look at its state until it
	// runs (an Error shows as a stall, with the application's log quiet).
	go func() {
		for app.State() == streams.Rebalancing && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		close(started)
	}()
	return app.Close, nil
}

// perfWordCountLoop is the word count written by hand: a consumer of
// group perf-loop-<run> reads the lines, a map counts the words, and a
// producer writes each word's new count, keyed by the word, as the
// streams application does. Offsets are auto-committed.
func perfWordCountLoop(ctx context.Context, addr string, run int, started chan<- struct{}) (func() error, error) {
	cc := consumer.DefaultConfig()
	cc.BootstrapServers = []string{addr}
	cc.GroupID = "perf-loop-" + strconv.Itoa(run)
	cc.AutoOffsetReset = "earliest"
	var assigned sync.Once
	cc.OnPartitionsAssigned = func([]consumer.TopicPartition) { assigned.Do(func() { close(started) }) }
	c, err := consumer.New(cc)
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(perfLinesTopic); err != nil {
		c.Close()
		return nil, err
	}
	pc := producer.DefaultConfig()
	pc.BootstrapServers = []string{addr}
	pc.Linger = 100 * time.Millisecond // as the streams application's producer
	p, err := producer.New(pc)
	if err != nil {
		c.Close()
		return nil, err
	}
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var mu sync.Mutex
	var sendErr error // the first failed send, from the producer's goroutines
	go func() {
		counts := map[string]int64{}
		for {
			records, err := c.Poll(loopCtx)
			if loopCtx.Err() != nil {
				mu.Lock()
				done <- sendErr
				mu.Unlock()
				return
			}
			if err != nil {
				done <- err
				return
			}
			for _, r := range records {
				for _, w := range strings.Fields(string(r.Value)) {
					counts[w]++
					value, _ := streams.Int64.Serialize(perfCountsTopic, counts[w])
					p.SendAsync(&producer.Record{Topic: perfCountsTopic, Key: []byte(w), Value: value}, func(_ producer.RecordMetadata, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil && sendErr == nil {
							sendErr = err
						}
					})
				}
			}
		}
	}()
	var once sync.Once
	var stopErr error
	return func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			p.Close()
			c.Close()
		})
		return stopErr
	}, nil
}
