package perf

import (
	"context"
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
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
	"klab.dev/klab/streams"
)

// The topics of the word count: lines in, a count per word out.
const (
	wordCountLinesTopic  = "perf-lines"
	wordCountCountsTopic = "perf-counts"
)

// WordCountConfig is one run of WordCount.
type WordCountConfig struct {
	Lines        int64 // lines of input
	WordsPerLine int
	Partitions   int32 // of the input and output topics
	Threads      int   // num.stream.threads of the streams application (the loop is one goroutine)
	Dir          string
	// Progress, if set, is told how far each step has got; Counted, if
	// set, is told each count's time as soon as it is done.
	Progress func(label string, p Progress)
	Counted  func(c WordCountRun)
}

// WordCountRun is one word count, timed.
type WordCountRun struct {
	Name string // "streams" or "loop"
	Took time.Duration
}

// WordCountResult is the four counts of a run, in the order they ran.
type WordCountResult struct{ Runs []WordCountRun }

// StreamsOverLoop is the streams application's mean lines per second over
// the loop's.
func (r WordCountResult) StreamsOverLoop() float64 {
	var streams, loop float64
	for _, c := range r.Runs {
		if c.Name == "streams" {
			streams += 1 / c.Took.Seconds()
		} else {
			loop += 1 / c.Took.Seconds()
		}
	}
	return streams / loop // each ran as often, on the same lines
}

// WordCount measures what Kafka Streams' machinery costs: the DSL word
// count (a repartition by word, a store and its changelog, at-least-once
// commits) against the same count written by hand as a consume, count in
// a map, produce loop (no repartition, no store, no changelog), on the
// same broker and input, in one run. Both write one count per word read.
// Each is timed from the moment it has its partitions (the group joined,
// the stores restored) until all its counts are in the output topic.
// They run loop, streams, streams, loop: whatever drifts during the run
// (the page cache, segments rolling) weighs on both alike.
func WordCount(ctx context.Context, cfg WordCountConfig) (WordCountResult, error) {
	addr, closeBroker, err := startWordCountBroker(filepath.Join(cfg.Dir, "broker"))
	if err != nil {
		return WordCountResult{}, err
	}
	defer closeBroker()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return WordCountResult{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopics(ctx, cfg.Partitions, 1, nil, wordCountLinesTopic, wordCountCountsTopic)
	if err == nil {
		err = created.Error()
	}
	if err != nil {
		return WordCountResult{}, err
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, Progress) {}
	}
	if err := produceWordLines(ctx, addr, cfg.Lines, cfg.WordsPerLine, progress); err != nil {
		return WordCountResult{}, err
	}
	words := cfg.Lines * int64(cfg.WordsPerLine)
	var res WordCountResult
	for i, name := range []string{"loop", "streams", "streams", "loop"} {
		run := wordCountLoop
		if name == "streams" {
			run = func(ctx context.Context, addr string, n int, started chan<- struct{}) (func() error, error) {
				return wordCountStreams(ctx, addr, filepath.Join(cfg.Dir, "state"), cfg.Threads, n, started)
			}
		}
		took, err := timeWordCount(ctx, adm, addr, i, words, name, run, progress)
		if err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
		c := WordCountRun{Name: name, Took: took}
		res.Runs = append(res.Runs, c)
		if cfg.Counted != nil {
			cfg.Counted(c)
		}
	}
	return res, nil
}

// startWordCountBroker starts one klab broker in dir, on a loopback port, with
// no initial rebalance delay: each run's group forms at once.
func startWordCountBroker(dir string) (string, func(), error) {
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
func produceWordLines(ctx context.Context, addr string, n int64, perLine int, progress func(label string, p Progress)) error {
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
		progress("produce lines", Progress{Done: done, Total: n, Elapsed: time.Since(began), Final: final})
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
		p.SendAsync(&producer.Record{Topic: wordCountLinesTopic, Value: []byte(b.String())}, func(_ producer.RecordMetadata, err error) {
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
// input from its start, into wordCountCountsTopic, closes started when it has
// its partitions, and returns how to stop it.
type wordCounter func(ctx context.Context, addr string, run int, started chan<- struct{}) (stop func() error, err error)

// stallTimeout is how long a word count may write nothing before the run
// calls it broken rather than slow.
const stallTimeout = 30 * time.Second

// timeWordCount runs count (run number run) and times it from when it has
// its partitions until wordCountCountsTopic has grown by words records.
func timeWordCount(ctx context.Context, adm *kadm.Client, addr string, run int, words int64, label string, count wordCounter, progress func(label string, p Progress)) (time.Duration, error) {
	endOfCounts := func() (int64, error) {
		ends, err := adm.ListEndOffsets(ctx, wordCountCountsTopic)
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
		progress(label, Progress{Done: done, Total: words, Elapsed: time.Since(began), Final: final})
		if final {
			return time.Since(began), stop()
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// wordCountStreams starts the DSL word count as application
// perf-streams-<run>, with its state under stateDir.
func wordCountStreams(ctx context.Context, addr, stateDir string, threads, run int, started chan<- struct{}) (func() error, error) {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, wordCountLinesTopic, streams.Consumed[string, string]{Key: streams.String, Value: streams.String})
	words := streams.FlatMapValues(lines, func(_ string, line string) []string { return strings.Fields(line) })
	counts := streams.GroupBy(words, func(_, w string) string { return w }, streams.Grouped[string, string]{Key: streams.String, Value: streams.String}).
		Count(streams.Materialized[string, int64]{Name: "counts"})
	counts.ToStream().To(wordCountCountsTopic, streams.Produced[string, int64]{})
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

// wordCountLoop is the word count written by hand: a consumer of
// group perf-loop-<run> reads the lines, a map counts the words, and a
// producer writes each word's new count, keyed by the word, as the
// streams application does. Offsets are auto-committed.
func wordCountLoop(ctx context.Context, addr string, run int, started chan<- struct{}) (func() error, error) {
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
	if err := c.Subscribe(wordCountLinesTopic); err != nil {
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
					value, _ := streams.Int64.Serialize(wordCountCountsTopic, counts[w])
					p.SendAsync(&producer.Record{Topic: wordCountCountsTopic, Key: []byte(w), Value: value}, func(_ producer.RecordMetadata, err error) {
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
